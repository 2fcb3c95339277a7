"""Registry credentials: environment variables first, then releasekit.yaml's entry for the host, then the Docker config.

  environment.REGISTRY_USERNAME / REGISTRY_PASSWORD   basic credentials
  environment.REGISTRY_TOKEN                           a bearer token sent as is
  credentials: {host: {...}} in releasekit.yaml       the variables it names (core/host_credentials.py)
  ~/.docker/config.json (or $DOCKER_CONFIG/config.json)         auths, credHelpers, credsStore

Every secret found is registered for redaction before it is used.
"""

import dataclasses
import logging
import os

from releasekit.core.errors import AuthError
from releasekit.core.redact import register_secret
from releasekit.core import environment

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Credentials:
    username: str = None
    password: str = dataclasses.field(default=None, repr=False)
    token: str = dataclasses.field(default=None, repr=False)
    source: str = "anonymous"

    @property
    def has_basic(self):
        return bool(self.username and self.password is not None)


ANONYMOUS = Credentials()


def registry_credentials(destination, environ=None):
    """The credentials for the registry destination (config.Destination), by the order above."""
    environ = os.environ if environ is None else environ
    host = destination.host
    username = environment.REGISTRY_USERNAME.get(environ)
    password = environment.REGISTRY_PASSWORD.get(environ)
    token = environment.REGISTRY_TOKEN.get(environ)
    if token:
        register_secret(token)
        return Credentials(token=token, source=environment.REGISTRY_TOKEN.name)
    if username or password:
        if not (username and password):
            raise AuthError("Only one of {} and {} is set; set both or neither.".format(
                environment.REGISTRY_USERNAME, environment.REGISTRY_PASSWORD))
        register_secret(password)
        return Credentials(username=username, password=password, source="environment")
    if destination.credentials is not None:
        username, password, token = destination.credentials.values(environ)
        if token:
            return Credentials(token=token, source=destination.credentials.describe())
        if username:
            return Credentials(username=username, password=password, source=destination.credentials.describe())
    return _docker_config_credentials(host, environ)


def _docker_config_path(environ):
    if environ.get("DOCKER_CONFIG"):
        return os.path.join(environ["DOCKER_CONFIG"], "config.json")
    return os.path.join(os.path.expanduser("~"), ".docker", "config.json")


def _docker_config_credentials(host, environ):
    config_path = _docker_config_path(environ)
    if not os.path.exists(config_path):
        return ANONYMOUS
    try:
        import docker.auth
        import docker.errors
    except ImportError:  # the docker package is only needed for config files
        return ANONYMOUS
    try:
        config = docker.auth.load_config(config_path=config_path)
        entry = docker.auth.resolve_authconfig(config, registry=host)
    except (docker.errors.DockerException, OSError, ValueError) as error:
        raise AuthError(
            "Cannot read registry credentials for {} from the Docker config ({}). Check "
            "~/.docker/config.json and its credential helper.".format(host, type(error).__name__)
        ) from None
    if not entry:
        return ANONYMOUS
    # Config entries use lower-case keys, credential helpers capitalised ones.
    identity_token = entry.get("IdentityToken") or entry.get("identitytoken")
    username = entry.get("Username") or entry.get("username")
    password = entry.get("Password") if "Password" in entry else entry.get("password")
    for secret in (identity_token, password):
        register_secret(secret)
    if identity_token:
        # An identity token is a refresh token for the bearer realm.
        return Credentials(username=username or "<token>", password=identity_token, source="docker config")
    if username and password is not None:
        return Credentials(username=username, password=password, source="docker config")
    return ANONYMOUS
