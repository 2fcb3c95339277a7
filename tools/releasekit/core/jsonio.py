"""JSON files other programs read: written atomically (temp file, then rename)."""

import json
import os
import tempfile

from releasekit.core.redact import redact


def write_json_atomic(path, data, compact=False):
    """compact: one line, for large machine-read reports (the C encoder, several times faster)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    encoded = json.dumps(data, separators=(",", ":")) if compact else json.dumps(data, indent=2, sort_keys=True)
    text = redact(encoded) + "\n"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
