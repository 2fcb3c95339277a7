"""Registry credentials: environment variables first (core/credentials.py), then releasekit.yaml's entry for the
host, then the Docker config.

  environment.REGISTRY_USERNAME / REGISTRY_PASSWORD   basic credentials
  environment.REGISTRY_TOKEN                           a bearer token sent as is
  credentials: {host: {...}} in releasekit.yaml       the variables it names (core/host_credentials.py)
  ~/.docker/config.json (or $DOCKER_CONFIG/config.json)         auths, credHelpers, credsStore

A mirror registry (core/mirrors.py) has credentials of its own: its token variable, or its username with password
variable (environment.registry_credential_variables), then releasekit.yaml's entry and the Docker config's for its
host; never the primary's variables, which are not sent to another host.
Every secret found is registered for redaction before it is used.
"""

import dataclasses
import os

from releasekit.core import environment
from releasekit.core.credentials import ANONYMOUS, Credentials, from_variables, host_entry_credentials
from releasekit.core.errors import AuthError
from releasekit.core.redact import register_secret


def registry_credentials(destination, environ=None):
    """The credentials for a registry destination (core/destinations.py): the primary's, or a mirror's (its `name`)
    by the order above; else ANONYMOUS."""
    environ = os.environ if environ is None else environ
    if destination.name is None:
        variables = (environment.REGISTRY_USERNAME, environment.REGISTRY_PASSWORD, environment.REGISTRY_TOKEN)
        found = from_variables(*variables, environ, pair_source="environment")
    else:
        variables = tuple(environment.Variable(variable, "")
                          for variable in environment.registry_credential_variables(destination.name))
        found = from_variables(*variables, environ, pair_source="{} and {}".format(variables[0], variables[1]))
    if found is ANONYMOUS:
        found = host_entry_credentials(destination, environ)
    if found is ANONYMOUS:
        found = _docker_config_credentials(destination.host, environ)
    if destination.name is None:
        return found
    # A mirror's messages suggest its own variables.
    return dataclasses.replace(found, variables=tuple(variable.name for variable in variables[:2]))


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
