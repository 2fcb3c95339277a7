"""Credentials: what a destination is told about who is asking, read from the environment once per run.

Each destination kind has its variables (environment.py): a bearer token, or a username and password given together.
Every secret found is registered for redaction before it is used. A registry may also take the Docker config's
credentials (publishing/registry_credentials.py reads them); a store takes these only (S3: AWS's own chain).
"""

import dataclasses

from releasekit.core import environment
from releasekit.core.errors import AuthError
from releasekit.core.redact import register_secret


@dataclasses.dataclass(frozen=True)
class Credentials:
    """source: where they came from, for messages (a variable's name, "environment", "docker config")."""

    username: str = None
    password: str = dataclasses.field(default=None, repr=False)
    token: str = dataclasses.field(default=None, repr=False)
    source: str = "anonymous"
    variables: tuple = None  # (username, password) variables a message suggests: a mirror's own; None: the kind's

    @property
    def has_basic(self):
        return bool(self.username and self.password is not None)


ANONYMOUS = Credentials()


def from_variables(user, password, token, environ, pair_source=None):
    """The token when it is set, else the username and password (both or neither), else ANONYMOUS. pair_source: how
    messages name a pair (default: the user variable)."""
    token_value = token.get(environ)
    user_value, password_value = user.get(environ), password.get(environ)
    for secret in (token_value, password_value):
        register_secret(secret)
    if bool(user_value) != bool(password_value):
        raise AuthError("Only one of {} and {} is set; set both or neither.".format(user, password))
    if token_value:
        return Credentials(token=token_value, source=token.name)
    if user_value:
        return Credentials(username=user_value, password=password_value, source=pair_source or user.name)
    return ANONYMOUS


def store_credentials(kind, environ):
    """The credentials of a store of this kind (maven, deploy, files, history, target_graphs)."""
    return from_variables(*environment.STORE_CREDENTIALS[kind], environ)


def host_entry_credentials(destination, environ):
    """The credentials releasekit.yaml's `credentials` entry of the destination's host names (host_credentials.py),
    else ANONYMOUS: what a destination uses when its own variables are unset."""
    entry = getattr(destination, "credentials", None)
    if entry is None:
        return ANONYMOUS
    username, password, token = entry.values(environ)
    if token:
        return Credentials(token=token, source=entry.describe())
    if username:
        return Credentials(username=username, password=password, source=entry.describe())
    return ANONYMOUS


def store_variables_hint(kind):
    """How a message says which variables give a store of this kind its credentials."""
    return "{} and {} (or {})".format(*environment.STORE_CREDENTIALS[kind])
