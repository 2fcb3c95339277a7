"""One credential pair for a server: releasekit.yaml's `credentials`, keyed by host, naming environment variables.

    credentials:
      repo.example.com: {username: REPO_USER, password: REPO_PASSWORD}   # every store and registry on that host
      ghcr.io: {token: GHCR_TOKEN}                                        # a bearer token
      127.0.0.1:8081: {username: NEXUS_USER, password: NEXUS_PASSWORD}    # with a port: that port only

The file names variables, never the secrets: it is reviewed and committed, and the secrets stay in the CI engine's
secret store. A destination on the host (a registry, an http(s) store) uses the entry when its own variables
(environment.STORE_CREDENTIALS, environment.REGISTRY_*) are unset: those still win. An entry keyed `host:port` is
chosen over one keyed `host`. s3:// stores take the AWS credential chain and file:// stores none, so no entry
applies to them. The variables an entry names are removed from Bazel's environment, as the RELEASEKIT_* ones are
(redact.without_secrets), and their values are registered for redaction when they are read.
"""

import dataclasses
import re

from releasekit.core.errors import AuthError, ConfigError
from releasekit.core.redact import register_secret, register_secret_variable

_VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FIELDS = ("username", "password", "token")


@dataclasses.dataclass(frozen=True)
class HostCredentials:
    """(str) the host or host:port, and the names of the variables that hold its credentials."""

    host: str
    username: str = None
    password: str = None
    token: str = None

    def describe(self):
        """Where the credentials come from, by name only: credentials.HOST (VARIABLE, ...)."""
        return "credentials.{} ({})".format(self.host, ", ".join(self.variables()))

    def variables(self):
        return [name for name in (self.username, self.password, self.token) if name]

    def values(self, environ):
        """(username, password, token) from the environment; every secret registered for redaction."""
        username, password, token = (environ.get(name) or None if name else None
                                     for name in (self.username, self.password, self.token))
        for secret in (password, token):
            register_secret(secret)
        if bool(username) != bool(password):
            raise AuthError("{}: only one of {} and {} is set; set both or neither.".format(
                self.describe(), self.username, self.password))
        return username, password, token

    def to_data(self):
        return {field: getattr(self, field) for field in _FIELDS if getattr(self, field)}


def parse(value, source):
    """The `credentials` mapping of releasekit.yaml: a tuple of HostCredentials (empty when there is none)."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ConfigError("{}: credentials must map hosts to the variables of their credentials, e.g. "
                          "`repo.example.com: {{username: REPO_USER, password: REPO_PASSWORD}}`.".format(source))
    entries = []
    for host, names in value.items():
        where = "{}: credentials.{}".format(source, host)
        if not isinstance(host, str) or not re.match(r"^[A-Za-z0-9.\-\[\]:]+$", host):
            raise ConfigError("{}: credentials has the key {!r}, which is not a host or host:port.".format(
                source, host))
        if not isinstance(names, dict) or set(names) - set(_FIELDS) or not names:
            raise ConfigError("{} must name the variables that hold the credentials: username and password, or "
                              "token (e.g. {{username: REPO_USER, password: REPO_PASSWORD}}).".format(where))
        for field, name in names.items():
            # The value is never shown: a secret written here by mistake must not reach a log.
            if not isinstance(name, str) or not _VARIABLE_RE.match(name):
                raise ConfigError("{}.{} must be the name of an environment variable (letters, digits and _), not "
                                  "the secret itself: keep secrets out of releasekit.yaml.".format(where, field))
        if bool(names.get("username")) != bool(names.get("password")):
            raise ConfigError("{} names only one of username and password; name both, or a token.".format(where))
        entry = HostCredentials(host.lower(), names.get("username"), names.get("password"), names.get("token"))
        for name in (entry.password, entry.token):
            if name:
                register_secret_variable(name)
        entries.append(entry)
    return tuple(entries)


def for_destination(table, scheme, host):
    """The entry of a destination at scheme://host (host[:port]): host:port first, then the host alone; None when
    there is none, or for s3 and file stores."""
    if scheme not in ("http", "https") or not table:
        return None
    host = host.lower()
    bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    by_host = {entry.host: entry for entry in table}
    return by_host.get(host) or by_host.get(bare)


def to_data(table):
    """The mapping parse() reads, to hand a run's releases what releasekit.yaml said."""
    return {entry.host: entry.to_data() for entry in table}
