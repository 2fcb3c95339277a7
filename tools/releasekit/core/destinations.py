"""Destinations: the places releasekit.yaml names (a registry, or a store by its URL), parsed once into typed
objects that carry what was said beside the URL (insecure, ca_bundle), and compared by what they reach.

The dev/CI overlap check compares destinations by identity, not by text: host names in any case, default ports,
loopback aliases, names that resolve to the same addresses, Docker Hub's names, S3 buckets and the real paths of file
stores. A registry's identity is here; a store's comes from its scheme (stores/schemes.py), so that a new store
backend brings its own.
"""

import dataclasses
import re

from releasekit.core.errors import ConfigError
from releasekit.core.hosts import DEFAULT_PORTS, is_loopback, network_location, same_host, split_host_port
from releasekit.core.stores import schemes

_HOST_RE = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]{1,5})?$")
_PATH_SEGMENT_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*$")
# Every name Docker Hub answers to: docker.io/library/x and index.docker.io/library/x are one repository.
_DOCKER_HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
REGISTRY = "registry"
DEPLOY_REGISTRY = "deploy_registry"  # deploy YAML as OCI artifacts (opt-in per channel)
REGISTRY_KINDS = (REGISTRY, DEPLOY_REGISTRY)


@dataclasses.dataclass(frozen=True)
class Destination:
    """One place a channel publishes to, or a store a run reads and writes (history, target graphs)."""

    kind: str
    channel: str
    text: str
    scheme: str
    host: str
    path: str
    insecure: bool = False
    ca_bundle: str = None
    name: str = None  # a mirror registry's name: its credentials' variables
    where: str = None  # where releasekit.yaml names it, when not channels.<channel>.<kind>
    credentials: object = None  # the host_credentials.HostCredentials of its host, or None

    @property
    def is_plain_http(self):
        return self.scheme == "http"

    def describe(self):
        return "{} ({})".format(self.where or "channels.{}.{}".format(self.channel, self.kind), self.text)

    def address(self):
        """host:port as connected to, the scheme's default port written out (registry.example.com:443)."""
        host, port = split_host_port(self.host)
        shown = "[{}]".format(host) if ":" in host else host
        return "{}:{}".format(shown, port or DEFAULT_PORTS.get(self.scheme, ""))

    def overlaps(self, other):
        """True when one destination contains the other: the same place by identity, not by text."""
        if self.location_family() != other.location_family():
            return False
        (my_host, my_port, mine), (their_host, their_port, theirs) = self.identity(), other.identity()
        if my_port != their_port or not same_host(my_host, their_host):
            return False
        shorter = min(len(mine), len(theirs))
        return mine[:shorter] == theirs[:shorter]

    def identity(self):
        """(host, port, path segments) as the place they name: what overlaps() compares."""
        if self.kind not in REGISTRY_KINDS:
            return schemes.scheme_of(self).identity(self)
        segments = tuple(s for s in self.path.split("/") if s)
        host, port = network_location(self.scheme, self.host)
        if host in _DOCKER_HUB_NAMES:
            host = "docker.io"
            if len(segments) == 1:
                segments = ("library",) + segments  # docker.io/x is docker.io/library/x
        return host, port, segments

    def location_family(self):
        """Destinations of one family may reach the same data: registries; http and https stores; S3; files."""
        return REGISTRY if self.kind in REGISTRY_KINDS else schemes.scheme_of(self).family


def parse_registry(text, channel="?", insecure=False, ca_bundle=None, source="releasekit.yaml", kind=REGISTRY):
    """Parse `[http://|https://]host[:port][/namespace]`."""
    where = "{}: channels.{}.{}".format(source, channel, kind)
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("{} must be a string like 'registry.example.com/team'.".format(where))
    scheme = "https"
    rest = text.strip()
    match = re.match(r"^([a-z0-9+]+)://(.*)$", rest)
    if match:
        scheme, rest = match.group(1), match.group(2)
        if scheme not in ("http", "https"):
            raise ConfigError(
                "{} '{}' uses the scheme '{}'; a registry is 'host[:port][/namespace]', "
                "optionally with http:// or https://.".format(where, text, scheme)
            )
    host, _, path = rest.partition("/")
    path = path.strip("/")
    if not _HOST_RE.match(host):
        raise ConfigError("{} '{}': '{}' is not a valid host[:port].".format(where, text, host))
    for segment in path.split("/") if path else []:
        if not _PATH_SEGMENT_RE.match(segment):
            raise ConfigError(
                "{} '{}': namespace part '{}' is not allowed; use lowercase letters, digits "
                "and single separators (. _ -), no '..' or empty parts.".format(where, text, segment)
            )
    destination = Destination(kind, channel, text, scheme, host.lower(), path, insecure, ca_bundle)
    _check_transport(destination, where)
    return destination


def parse_store(text, kind, channel="?", insecure=False, ca_bundle=None, source="releasekit.yaml", where=None):
    """Parse a store URL of a scheme the store registry knows (stores/schemes.py): https://..., http://...
    (loopback), s3://bucket/prefix, file:///dir."""
    where = where or "{}: channels.{}.{}".format(source, channel, kind)
    match = re.match(r"^([a-z0-9]+)://([^/]*)(/.*)?$", text.strip()) if isinstance(text, str) else None
    if not match or match.group(1) not in schemes.SCHEMES:
        raise ConfigError("{} '{}' is not a store URL; use {}.".format(where, text, schemes.examples()))
    scheme, host, path = match.group(1), match.group(2).lower(), (match.group(3) or "").rstrip("/")
    if ".." in path.split("/"):
        raise ConfigError("{} '{}' contains '..'; give the store's real path.".format(where, text))
    schemes.SCHEMES[scheme].check(host, path, where, text)
    destination = Destination(kind, channel, text, scheme, host, path, insecure, ca_bundle)
    _check_transport(destination, where)
    return destination


def parse_entry(value, kind, channel, source, channel_insecure=False, where=None):
    """A releasekit.yaml entry: a URL, or a mapping {url, insecure, ca_bundle}."""
    url, insecure, ca_bundle = value, channel_insecure, None
    if isinstance(value, dict):
        url, ca_bundle = value.get("url"), value.get("ca_bundle")
        insecure = bool(value.get("insecure", channel_insecure))
    if kind in REGISTRY_KINDS:
        return parse_registry(url, channel, insecure, ca_bundle, source, kind)
    return parse_store(url, kind, channel, insecure, ca_bundle, source, where)


def _check_transport(destination, where):
    if destination.is_plain_http and not destination.insecure and not is_loopback(destination.host):
        raise ConfigError(
            "{} '{}' is plain HTTP to a host that is not loopback; use https://, or set "
            "'insecure: true' on that entry if you accept unencrypted traffic.".format(where, destination.text)
        )


def to_entry(destination):
    """The mapping parse_entry reads back into the same destination."""
    entry = {"url": destination.text, "insecure": destination.insecure, "ca_bundle": destination.ca_bundle}
    return dict(entry, name=destination.name) if destination.name else entry
