"""Compiles Python sources into hash-checked bytecode: compile_bytecode.py OUT_DIR SOURCE...

Standard library only: it runs as a build action with whatever python3 is on PATH.
"""

import importlib.util
import os
import py_compile
import sys


def main(argv):
    out_dir, sources = argv[0], argv[1:]
    os.makedirs(out_dir, exist_ok=True)
    if sys.implementation.cache_tag is None:
        return 0  # this interpreter does not cache bytecode: an empty directory is the right answer
    for source in sources:
        name = os.path.basename(importlib.util.cache_from_source(source))
        py_compile.compile(source, cfile=os.path.join(out_dir, name), doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
