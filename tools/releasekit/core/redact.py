"""Keeps secrets out of everything releasekit prints or writes."""

import threading

from releasekit.core.environment import SECRETS, is_secret

_lock = threading.Lock()
_secrets = set()
HIDDEN = "<hidden>"

# Environment variables that carry credentials to releases. Bazel records its whole client environment in the
# build event file, so dispatch runs Bazel without them: builds and tests never need a publisher's credentials.
SECRET_VARIABLES = tuple(SECRETS) + ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


_secret_variables = set()  # more variables that carry credentials: those releasekit.yaml's `credentials` names


def without_secrets(environ):
    """A copy of environ without the variables that carry credentials."""
    with _lock:
        named = set(_secret_variables)
    return {key: value for key, value in environ.items()
            if key not in SECRET_VARIABLES and key not in named and not is_secret(key)}


def register_secret_variable(name):
    """Remember a variable that carries a secret, so that without_secrets() leaves it out."""
    with _lock:
        _secret_variables.add(name)


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
