"""Files other programs read, written atomically: whole or not at all (a temporary file beside the target, then a
rename). The one place that stages files: JSON records and reports, JUnit XML, caches, store files, layers."""

import contextlib
import json
import os
import tempfile

from releasekit.core.redact import redact


@contextlib.contextmanager
def staged(directory, prefix=".releasekit-"):
    """(binary handle, temporary path) of a new file in directory. The caller moves it into place (os.replace,
    or os.link for create-only) before the block ends; whatever is left there afterwards is removed."""
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, tmp
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path, data, mode=None):
    """Write bytes, text, or an iterable of bytes to path, replacing it whole. mode: the file's permission bits
    (the staged file is the owner's alone until then, 0600)."""
    with staged(os.path.dirname(os.path.abspath(path)), "." + os.path.basename(path) + ".") as (handle, tmp):
        if isinstance(data, str):
            data = data.encode("utf-8")
        for chunk in [data] if isinstance(data, bytes) else data:
            handle.write(chunk)
        handle.close()
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)


def write_json_atomic(path, data, compact=False, mode=None):
    """compact: one line, for large machine-read reports (the C encoder, several times faster). Secrets are
    redacted from what is written."""
    encoded = json.dumps(data, separators=(",", ":")) if compact else json.dumps(data, indent=2, sort_keys=True)
    write_atomic(path, redact(encoded) + "\n", mode)
