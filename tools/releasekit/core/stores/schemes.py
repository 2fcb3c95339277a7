"""The one registry of store schemes: for each URL scheme, how its URL is checked, what place it reaches (the identity
the dev/CI overlap check compares: safety-critical), whether RELEASEKIT_<KIND>_* credentials apply, and the class that
opens it. Adding a backend is one entry here and one module beside this one (see docs/extending.md)."""

import dataclasses
import importlib
import os

from releasekit.core.errors import ConfigError
from releasekit.core.hosts import network_location


@dataclasses.dataclass(frozen=True)
class Scheme:
    """One URL scheme of a store."""

    name: str
    example: str  # how the docs and errors show a URL of it
    family: str  # schemes of one family reach the same data (http and https of a host)
    opener: str  # "module:Class" of the store, imported when one is opened
    check: object  # check(host, path, where, text): raises ConfigError on a URL the scheme cannot open
    identity: object  # identity(destination) -> (host, port or None, path segments): the place it reaches
    takes_store_credentials: bool = False  # RELEASEKIT_<KIND>_USERNAME / _PASSWORD / _TOKEN

    def open(self, destination, policy, credentials, environ):
        module, name = self.opener.split(":")
        return getattr(importlib.import_module(module), name)(destination, policy, credentials, environ)


def _segments(path):
    return tuple(s for s in path.split("/") if s)


def _needs_host(host, path, where, text):
    if not host:
        raise ConfigError("{} '{}' has no host or bucket.".format(where, text))


def _needs_absolute_path(host, path, where, text):
    if host or not path:
        raise ConfigError("{} '{}' must be file:///absolute/path (three slashes).".format(where, text))


def _http_identity(destination):
    host, port = network_location(destination.scheme, destination.host)
    return host, port, _segments(destination.path)


def _bucket_identity(destination):
    return destination.host.lower(), None, _segments(destination.path)


def _real_path_identity(destination):
    return "", None, _segments(os.path.realpath(destination.path))


_HTTP = dict(family="http", opener="releasekit.core.stores.http:HttpStore", check=_needs_host, identity=_http_identity,
             takes_store_credentials=True)
SCHEMES = {scheme.name: scheme for scheme in (
    Scheme("https", "https://host/path", **_HTTP),
    Scheme("http", "http://127.0.0.1:8080/path", **_HTTP),
    Scheme("s3", "s3://bucket/prefix", "s3", "releasekit.core.stores.s3:S3Store", _needs_host, _bucket_identity),
    Scheme("file", "file:///absolute/path", "file", "releasekit.core.stores.directory:DirectoryStore",
           _needs_absolute_path, _real_path_identity),
)}


def scheme_of(destination):
    return SCHEMES[destination.scheme]


def examples():
    """How an error lists the URLs a store may have (plain http is for loopback, and not shown)."""
    shown = [s.example for s in SCHEMES.values() if s.name != "http"]
    return ", ".join(shown[:-1]) + " or " + shown[-1]
