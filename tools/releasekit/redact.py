"""Keeps secrets out of everything releasekit prints or writes."""

import threading

_lock = threading.Lock()
_secrets = set()
HIDDEN = "<hidden>"


def register_secret(value):
    """Remember a secret so that redact() hides it wherever it shows up."""
    if value and len(value) >= 3:
        with _lock:
            _secrets.add(value)


def redact(text):
    """Return text with every registered secret replaced by <hidden>."""
    if not isinstance(text, str):
        text = str(text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, HIDDEN)
    return text
