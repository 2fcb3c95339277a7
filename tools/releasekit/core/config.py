"""releasekit.yaml: the destinations of each channel.

    channels:
      ci:  {registry: "registry.example.com/prod", maven: "https://repo.example.com/releases"}
      dev: {registry: "registry.example.com/dev",  maven: "https://repo.example.com/snapshots"}

    history: "s3://ci-history/main"            # optional: where CI runs append their reports
    credentials: {repo.example.com: {username: REPO_USER, password: REPO_PASSWORD}}   # optional: host_credentials.py
    target_graphs: "s3://ci-cache/graphs"      # optional: where collect records target graphs (selection/target_graphs.py)
    auto_quarantine: {flakes: 2, window: 30, clean_runs: 5, broken_after: 2}   # optional: --quarantine auto's
    gate: all                                  # optional: all (the default) or deps; see run_policy.py

An entry is a string or a mapping {url, insecure, ca_bundle}; a channel may set
`insecure: true` for all its entries. Which file wins: --config, then
the config variable (environment.CONFIG), then releasekit.yaml at the workspace root.

`releasekit dispatch` reads the file once and hands every release of its run the
destinations it read, as JSON in environment.RESOLVED_CONFIG (a file changed mid-run
does not split the run; releases need not parse YAML). Only --config overrides it.
"""

import dataclasses
import functools
import ipaddress
import json
import os
import re
import socket

from releasekit.core.errors import ConfigError
from releasekit.core import environment, host_credentials
from releasekit.core.run_policy import AutoQuarantine, parse_auto_quarantine, parse_gate

RESOLVED_CONFIG_VARIABLE = environment.RESOLVED_CONFIG.name

CHANNELS = ("ci", "dev")
DESTINATION_KINDS = ("registry", "maven", "deploy", "files")
CONFIG_FILE_NAME = "releasekit.yaml"
_STORE_SCHEMES = ("http", "https", "s3", "file")
_HOST_RE = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]{1,5})?$")
_PATH_SEGMENT_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*$")
# Every name Docker Hub answers to: docker.io/library/x and index.docker.io/library/x are one repository.
_DOCKER_HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclasses.dataclass(frozen=True)
class Destination:
    """One place a channel publishes to."""

    kind: str
    channel: str
    text: str
    scheme: str
    host: str
    path: str
    insecure: bool = False
    ca_bundle: str = None
    credentials: object = None  # the host_credentials.HostCredentials of its host, or None

    @property
    def is_plain_http(self):
        return self.scheme == "http"

    def describe(self):
        return "channels.{}.{} ({})".format(self.channel, self.kind, self.text)

    def address(self):
        """host:port as connected to, the scheme's default port written out (registry.example.com:443)."""
        host, port = split_host_port(self.host)
        shown = "[{}]".format(host) if ":" in host else host
        return "{}:{}".format(shown, port or _DEFAULT_PORTS.get(self.scheme, ""))

    def overlaps(self, other):
        """True when one destination contains the other: the same place by identity, not by text.

        Hosts are compared by what they reach (case, default ports, loopback aliases, Docker Hub's names,
        names that resolve to the same addresses), file stores by their real paths, S3 by bucket.
        """
        if self.location_family() != other.location_family():
            return False
        (my_host, my_port, mine), (their_host, their_port, theirs) = self.identity(), other.identity()
        if my_port != their_port or not _same_host(my_host, their_host):
            return False
        shorter = min(len(mine), len(theirs))
        return mine[:shorter] == theirs[:shorter]

    def identity(self):
        """(host, port, path segments) as the place they name: what overlaps() compares."""
        if self.scheme == "file":
            return "", None, tuple(s for s in os.path.realpath(self.path).split("/") if s)
        segments = tuple(s for s in self.path.split("/") if s)
        if self.scheme == "s3":
            return self.host.lower(), None, segments
        host, port = split_host_port(self.host)
        host = host.lower().rstrip(".")
        if host in _DOCKER_HUB_NAMES:
            host = "docker.io"
            if self.kind == "registry" and len(segments) == 1:
                segments = ("library",) + segments  # docker.io/x is docker.io/library/x
        # http and https of one store share their data; an explicit port names another server.
        default = _DEFAULT_PORTS.get(self.scheme)
        return host, None if port in (None, default) else port, segments

    def location_family(self):
        # http and https of one host are the same store; s3 and file are their own.
        if self.kind == "registry":
            return "registry"
        return "http" if self.scheme in ("http", "https") else self.scheme


def split_host_port(host):
    """('host', port or None) of 'host[:port]' or '[v6]:port'."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") else None
    name, _, port = host.partition(":")
    return name, int(port) if port else None


def _same_host(a, b):
    if a == b:
        return True
    mine, theirs = _addresses(a), _addresses(b)
    if _all_loopback(mine) and _all_loopback(theirs):
        return True
    return bool(mine & theirs)


def _all_loopback(addresses):
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


@functools.lru_cache(maxsize=64)
def _addresses(host):
    """The addresses a host name reaches; empty when it does not resolve here."""
    if host == "localhost":
        return frozenset({"127.0.0.1", "::1"})
    try:
        return frozenset({str(ipaddress.ip_address(host))})
    except ValueError:
        pass
    try:
        return frozenset(str(ipaddress.ip_address(info[4][0].split("%")[0])) for info in socket.getaddrinfo(host, None))
    except (OSError, UnicodeError, ValueError):
        return frozenset()


@dataclasses.dataclass(frozen=True)
class Config:
    """The parsed releasekit.yaml."""

    source: str
    channels: dict
    history: Destination = None  # where CI runs append their reports (insight/history.py)
    target_graphs: Destination = None  # where collect reads and records target graphs (selection/target_graphs.py)
    auto_quarantine: AutoQuarantine = AutoQuarantine()
    gate: str = None  # the release gate the file chooses (run_policy.py), or None
    credentials: tuple = ()  # host_credentials.HostCredentials: one credential pair for every destination on a host

    def destination(self, channel, kind):
        entry = self.channels.get(channel, {}).get(kind)
        if entry is None:
            raise ConfigError("{}: channel '{}' has no '{}' destination. Add one under channels.{}.{}.".format(
                self.source, channel, kind, channel, kind))
        return entry

    def to_json(self):
        """The destinations as config_from_data() reads them, with the file they came from."""
        channels = {
            channel: {kind: {"url": d.text, "insecure": d.insecure, "ca_bundle": d.ca_bundle} for kind, d in entries.items()}
            for channel, entries in self.channels.items()
        }
        return json.dumps({"source": self.source, "channels": channels,
                           "credentials": host_credentials.to_data(self.credentials)}, sort_keys=True)


def is_loopback(host):
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1 : host.index("]")]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_registry(text, channel="?", insecure=False, ca_bundle=None, source="releasekit.yaml"):
    """Parse `[http://|https://]host[:port][/namespace]`."""
    where = "{}: channels.{}.registry".format(source, channel)
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
    destination = Destination("registry", channel, text, scheme, host.lower(), path, insecure, ca_bundle)
    _check_transport(destination, where)
    return destination


def parse_store(text, kind, channel="?", insecure=False, ca_bundle=None, source="releasekit.yaml", where=None):
    """Parse an artifact store URL: https://..., http://... (loopback), s3://bucket/prefix, file:///dir."""
    where = where or "{}: channels.{}.{}".format(source, channel, kind)
    match = re.match(r"^([a-z0-9]+)://([^/]*)(/.*)?$", text.strip()) if isinstance(text, str) else None
    if not match or match.group(1) not in _STORE_SCHEMES:
        raise ConfigError(
            "{} '{}' is not a store URL; use https://host/path, s3://bucket/prefix or "
            "file:///absolute/path.".format(where, text)
        )
    scheme, host, path = match.group(1), match.group(2).lower(), (match.group(3) or "").rstrip("/")
    if ".." in path.split("/"):
        raise ConfigError("{} '{}' contains '..'; give the store's real path.".format(where, text))
    if scheme == "file" and (host or not path):
        raise ConfigError("{} '{}' must be file:///absolute/path (three slashes).".format(where, text))
    if scheme in ("http", "https", "s3") and not host:
        raise ConfigError("{} '{}' has no host or bucket.".format(where, text))
    destination = Destination(kind, channel, text, scheme, host, path, insecure, ca_bundle)
    _check_transport(destination, where)
    return destination


def _check_transport(destination, where):
    if destination.is_plain_http and not destination.insecure and not is_loopback(destination.host):
        raise ConfigError(
            "{} '{}' is plain HTTP to a host that is not loopback; use https://, or set "
            "'insecure: true' on that entry if you accept unencrypted traffic.".format(where, destination.text)
        )


def find_config_path(explicit=None, environ=None):
    """Return (path, how it was chosen)."""
    environ = os.environ if environ is None else environ
    if explicit:
        return explicit, "--config"
    if environment.CONFIG.get(environ):
        return environment.CONFIG.get(environ), environment.CONFIG.name
    root = environ.get("BUILD_WORKSPACE_DIRECTORY") or os.getcwd()
    return os.path.join(root, CONFIG_FILE_NAME), "workspace root"


def load_config(explicit=None, environ=None):
    environ = os.environ if environ is None else environ
    if not explicit and environ.get(RESOLVED_CONFIG_VARIABLE):
        return _resolved_config(environ[RESOLVED_CONFIG_VARIABLE])
    path, chosen_by = find_config_path(explicit, environ)
    return parse_config(_config_text(path, chosen_by), path)


def load_config_if_present(explicit=None, environ=None):
    """load_config, or None when no file is named and none is at the workspace root: a run that only tests needs
    no destinations."""
    path, _ = find_config_path(explicit, os.environ if environ is None else environ)
    return load_config(explicit, environ) if explicit or os.path.exists(path) else None


def _config_text(path, chosen_by):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ConfigError(
            "No releasekit config at {} (chosen by {}). Create {} at the workspace root, or point "
            "{} at one.".format(path, chosen_by, CONFIG_FILE_NAME, environment.CONFIG)
        ) from None
    except OSError as error:
        raise ConfigError("Cannot read releasekit config {}: {}.".format(path, error.strerror)) from None


def _resolved_config(text):
    try:
        resolved = json.loads(text)
        source = resolved["source"]
    except (ValueError, TypeError, KeyError):
        raise ConfigError(
            "{} is not the configuration releasekit dispatch hands its releases. Unset it, and the release "
            "reads releasekit.yaml itself.".format(RESOLVED_CONFIG_VARIABLE)
        ) from None
    return config_from_data(resolved, source)


def parse_config(text, source):
    return config_from_data(_yaml_data(text, source), source)


def _yaml_data(text, source):
    import yaml  # here, not at the top: releases started by dispatch never parse YAML

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = " line {}".format(mark.line + 1) if mark else ""
        raise ConfigError("{}{}: not valid YAML ({}).".format(source, line, getattr(error, "problem", error))) from None


def config_from_data(data, source):
    """Check and parse the configuration's content (a mapping with 'channels'); source names it in errors."""
    if not isinstance(data, dict) or not isinstance(data.get("channels"), dict):
        raise ConfigError("{}: expected a top-level 'channels:' mapping with 'ci' and 'dev' entries.".format(source))
    channels, table = {}, host_credentials.parse(data.get("credentials"), source)
    for channel, entries in data["channels"].items():
        if channel not in CHANNELS:
            raise ConfigError("{}: unknown channel '{}'; the channels are ci and dev.".format(source, channel))
        if not isinstance(entries, dict):
            raise ConfigError("{}: channels.{} must be a mapping of destinations.".format(source, channel))
        channel_insecure = bool(entries.get("insecure", False))
        parsed = {}
        for kind, value in entries.items():
            if kind == "insecure":
                continue
            if kind not in DESTINATION_KINDS:
                raise ConfigError(
                    "{}: channels.{}.{} is not a destination; use {}.".format(
                        source, channel, kind, ", ".join(DESTINATION_KINDS)
                    )
                )
            url, insecure, ca_bundle = value, channel_insecure, None
            if isinstance(value, dict):
                url = value.get("url")
                insecure = bool(value.get("insecure", channel_insecure))
                ca_bundle = value.get("ca_bundle")
            parsed[kind] = with_credentials(parse_registry(url, channel, insecure, ca_bundle, source) if kind == "registry"
                                            else parse_store(url, kind, channel, insecure, ca_bundle, source), table)
        channels[channel] = parsed
    history, graphs = data.get("history"), data.get("target_graphs")
    config = Config(source=source, channels=channels, credentials=table,
                    history=None if history is None else parse_history(history, source, table),
                    target_graphs=None if graphs is None else parse_target_graphs(graphs, source, table),
                    auto_quarantine=parse_auto_quarantine(data.get("auto_quarantine"), source),
                    gate=None if data.get("gate") is None else parse_gate(data["gate"], "{}: gate".format(source)))
    check_channels_apart(config)
    return config


def parse_history(value, source, credentials=()):
    """The run history's store: a URL or {url, insecure, ca_bundle}, with its host's entry of credentials."""
    return _parse_top_level_store(value, "history", source, credentials)


def parse_target_graphs(value, source, credentials=()):
    """The store of recorded target graphs: a URL or {url, insecure, ca_bundle}, as a destination entry."""
    return _parse_top_level_store(value, "target_graphs", source, credentials)


def _parse_top_level_store(value, kind, source, credentials):
    url, insecure, ca_bundle = value, False, None
    if isinstance(value, dict):  # {url, insecure, ca_bundle}
        url, insecure, ca_bundle = value.get("url"), bool(value.get("insecure", False)), value.get("ca_bundle")
    return with_credentials(parse_store(url, kind, "-", insecure, ca_bundle, source, where="{}: {}".format(source, kind)),
                            credentials)


def with_credentials(destination, credentials):
    """The destination with its host's entry of releasekit.yaml's `credentials` (host_credentials.py), if any."""
    entry = host_credentials.for_destination(credentials, destination.scheme, destination.host)
    return dataclasses.replace(destination, credentials=entry) if entry else destination


def target_graphs_of(path, chosen_by, explicit_url=None):
    """The `target_graphs` store --target-graphs (explicit_url) or a releasekit.yaml names, or None, with the file's
    credentials entries; the rest of the file is not checked here (a selection needs only these entries; the runs
    that publish check the whole file)."""
    data = _yaml_data(_config_text(path, chosen_by), path)
    data = data if isinstance(data, dict) else {}
    table = host_credentials.parse(data.get("credentials"), path)
    value = explicit_url or data.get("target_graphs")
    return None if value is None else parse_target_graphs(value, "--target-graphs" if explicit_url else path, table)


def check_channels_apart(config):
    """Refuse a dev destination that equals or nests with a CI one: dev must never write to production."""
    for dev in config.channels.get("dev", {}).values():
        for ci in config.channels.get("ci", {}).values():
            if dev.overlaps(ci):
                raise ConfigError(
                    "{}: {} overlaps {}; a dev release could overwrite production artifacts. "
                    "Give the dev channel its own namespace or path (e.g. '.../dev').".format(
                        config.source, dev.describe(), ci.describe()
                    )
                )
