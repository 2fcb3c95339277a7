"""releasekit.yaml: the destinations of each channel.

    channels:
      ci:  {registry: "registry.example.com/prod", maven: "https://repo.example.com/releases"}
      dev: {registry: "registry.example.com/dev",  maven: "https://repo.example.com/snapshots"}
    # a channel may add deploy_registry: deploy YAML also pushed there as Flux OCI artifacts (flux_artifact.py)

    history: "s3://ci-history/main"            # optional: where CI runs append their reports
    target_graphs: "s3://ci-cache/graphs"      # optional: where collect records target graphs (target_graphs.py)
    credentials: {repo.example.com: {username: REPO_USER, password: REPO_PASSWORD}}   # optional: host_credentials.py
    auto_quarantine: {flakes: 2, window: 30, clean_runs: 5, broken_after: 2}   # optional: --quarantine auto's
    gate: all                                  # optional: all (the default) or deps; see run_policy.py
    signing: required                          # optional: a CI release without the signing key is refused

An entry is a string or a mapping {url, insecure, ca_bundle} (destinations.py parses it); a channel may set
`insecure: true` for all its entries, and list `mirrors`: more registries for its images (core/mirrors.py). Which
file wins: --config, then
the config variable (environment.CONFIG), then releasekit.yaml at the workspace root.

A command reads the file once, as strictly as it needs (run_context.py): SELECTING reads `target_graphs` alone,
RUNNING the whole file but the dev/CI overlap check (a run that publishes nothing), PUBLISHING everything.

`releasekit dispatch` reads the file once and hands every release of its run the
destinations it read, as JSON in environment.RESOLVED_CONFIG (a file changed mid-run
does not split the run; releases need not parse YAML, nor look up host names again for
the overlap check dispatch made). Only --config overrides it.
"""

import dataclasses
import json
import os

from releasekit.core import environment, host_credentials
from releasekit.core.destinations import DEPLOY_REGISTRY, REGISTRY, parse_entry, to_entry
from releasekit.core.errors import ConfigError
from releasekit.core.run_policy import AutoQuarantine, parse_auto_quarantine, parse_gate

RESOLVED_CONFIG_VARIABLE = environment.RESOLVED_CONFIG.name

CHANNELS = ("ci", "dev")
DESTINATION_KINDS = (REGISTRY, "maven", "deploy", "files", DEPLOY_REGISTRY)
CONFIG_FILE_NAME = "releasekit.yaml"

# How much of the file a command reads and checks.
SELECTING = "selecting"  # target_graphs alone; the rest is not read
RUNNING = "running"  # every entry, but not the dev/CI overlap check: the run publishes nothing
PUBLISHING = "publishing"  # every entry and the overlap check
STRICTNESS = (SELECTING, RUNNING, PUBLISHING)


@dataclasses.dataclass(frozen=True)
class Config:
    """The parsed releasekit.yaml. checked: how strictly it was read (SELECTING, RUNNING or PUBLISHING)."""

    source: str
    channels: dict
    history: object = None  # Destination: where CI runs append their reports (insight/history.py)
    target_graphs: object = None  # Destination: where collect reads and records target graphs
    auto_quarantine: AutoQuarantine = AutoQuarantine()
    gate: str = None  # the release gate the file chooses (run_policy.py), or None
    signing_required: bool = False  # `signing: required`: a CI release without the signing key publishes nothing
    mirrors: dict = dataclasses.field(default_factory=dict)  # channel -> (Destination, ...) beside the primary registry
    checked: str = PUBLISHING
    credentials: tuple = ()  # host_credentials.HostCredentials: one credential pair for every destination on a host

    def destination(self, channel, kind):
        entry = self.channels.get(channel, {}).get(kind)
        if entry is None:
            raise ConfigError(
                "{}: channel '{}' has no '{}' destination. Add one under channels.{}.{}.".format(
                    self.source, channel, kind, channel, kind
                )
            )
        return entry

    def to_json(self):
        """The destinations as a release reads them back (environment.RESOLVED_CONFIG), with the file they came
        from, and whether the channels were checked apart."""
        channels = {channel: {kind: to_entry(d) for kind, d in entries.items()}
                    for channel, entries in self.channels.items()}
        for channel, mirrors in self.mirrors.items():
            channels.setdefault(channel, {})["mirrors"] = [to_entry(d) for d in mirrors]
        return json.dumps({"source": self.source, "channels": channels, "channels_apart": self.checked == PUBLISHING,
                           "signing": SIGNING_REQUIRED if self.signing_required else SIGNING_OPTIONAL,
                           "credentials": host_credentials.to_data(self.credentials)}, sort_keys=True)


def find_config_path(explicit=None, environ=None):
    """Return (path, how it was chosen)."""
    environ = os.environ if environ is None else environ
    if explicit:
        return explicit, "--config"
    if environment.CONFIG.get(environ):
        return environment.CONFIG.get(environ), environment.CONFIG.name
    root = environ.get("BUILD_WORKSPACE_DIRECTORY") or os.getcwd()
    return os.path.join(root, CONFIG_FILE_NAME), "workspace root"


def load_config(explicit=None, environ=None, strictness=PUBLISHING):
    """The configuration: the one dispatch resolved for its releases (unless --config names another), else the
    file, read as strictly as asked."""
    environ = os.environ if environ is None else environ
    if not explicit and environ.get(RESOLVED_CONFIG_VARIABLE):
        return _resolved_config(environ[RESOLVED_CONFIG_VARIABLE])
    path, chosen_by = find_config_path(explicit, environ)
    return parse_config(_config_text(path, chosen_by), path, strictness)


def load_config_if_present(explicit=None, environ=None, strictness=PUBLISHING):
    """load_config, or None when no file is named and none is at the workspace root: a run that only tests needs
    no destinations."""
    path, _ = find_config_path(explicit, os.environ if environ is None else environ)
    return load_config(explicit, environ, strictness) if explicit or os.path.exists(path) else None


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
    # Dispatch checked the channels apart, host names looked up and all: each release does not do it again.
    config = config_from_data(resolved, source, RUNNING if resolved.get("channels_apart") else PUBLISHING)
    return dataclasses.replace(config, checked=PUBLISHING)


def parse_config(text, source, strictness=PUBLISHING):
    return config_from_data(_yaml_data(text, source), source, strictness)


def _yaml_data(text, source):
    import yaml  # here, not at the top: releases started by dispatch never parse YAML

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = " line {}".format(mark.line + 1) if mark else ""
        raise ConfigError("{}{}: not valid YAML ({}).".format(source, line, getattr(error, "problem", error))) from None


def config_from_data(data, source, strictness=PUBLISHING):
    """Check and parse the configuration's content (a mapping with 'channels'), as strictly as asked; source names
    it in errors."""
    table = host_credentials.parse(data.get("credentials") if isinstance(data, dict) else None, source)
    if strictness == SELECTING:
        value = data.get("target_graphs") if isinstance(data, dict) else None
        return Config(source=source, channels={}, checked=SELECTING, credentials=table,
                      target_graphs=None if value is None else parse_target_graphs(value, source, table))
    if not isinstance(data, dict) or not isinstance(data.get("channels"), dict):
        raise ConfigError("{}: expected a top-level 'channels:' mapping with 'ci' and 'dev' entries.".format(source))
    from releasekit.core.mirrors import check_mirrors

    channels, mirrors = _channels(data["channels"], source, table)
    history, graphs = data.get("history"), data.get("target_graphs")
    config = Config(source=source, channels=channels, mirrors=mirrors, checked=strictness, credentials=table,
                    history=None if history is None else parse_history(history, source, table),
                    target_graphs=None if graphs is None else parse_target_graphs(graphs, source, table),
                    auto_quarantine=parse_auto_quarantine(data.get("auto_quarantine"), source),
                    gate=None if data.get("gate") is None else parse_gate(data["gate"], "{}: gate".format(source)),
                    signing_required=_signing_required(data.get("signing"), source))
    check_mirrors(config)
    if strictness == PUBLISHING:
        check_channels_apart(config)
    return config


def _channels(entries_by_channel, source, table):
    """({channel: {kind: Destination}}, {channel: (mirror Destination, ...)}), each with its host's credentials entry
    (table)."""
    from releasekit.core.mirrors import mirror_registries

    channels, mirrors = {}, {}
    for channel, entries in entries_by_channel.items():
        if channel not in CHANNELS:
            raise ConfigError("{}: unknown channel '{}'; the channels are ci and dev.".format(source, channel))
        if not isinstance(entries, dict):
            raise ConfigError("{}: channels.{} must be a mapping of destinations.".format(source, channel))
        channel_insecure = bool(entries.get("insecure", False))
        parsed = {}
        mirrors[channel] = tuple(with_credentials(mirror, table) for mirror in mirror_registries(
            entries.get("mirrors") or [], channel, channel_insecure, source))
        for kind, value in entries.items():
            if kind in ("insecure", "mirrors"):
                continue
            if kind not in DESTINATION_KINDS:
                raise ConfigError(
                    "{}: channels.{}.{} is not a destination; use {}.".format(
                        source, channel, kind, ", ".join(DESTINATION_KINDS)
                    )
                )
            parsed[kind] = with_credentials(parse_entry(value, kind, channel, source, channel_insecure), table)
        channels[channel] = parsed
    return channels, mirrors


SIGNING_OPTIONAL, SIGNING_REQUIRED = "optional", "required"


def _signing_required(value, source):
    """`signing:`: optional (the default: a CI release without the key publishes unsigned provenance, and says so) or
    required (it publishes nothing)."""
    if value in (None, SIGNING_OPTIONAL):
        return False
    if value == SIGNING_REQUIRED:
        return True
    raise ConfigError("{}: signing is '{}'; use required (a CI release without the signing key publishes nothing) or "
                      "optional (the default: it publishes unsigned provenance).".format(source, value))


def parse_history(value, source, credentials=()):
    """The run history's store: a URL or {url, insecure, ca_bundle}, with its host's entry of credentials."""
    return with_credentials(parse_entry(value, "history", "-", source, where="{}: history".format(source)),
                            credentials)


def parse_target_graphs(value, source, credentials=()):
    """The store of recorded target graphs: a URL or {url, insecure, ca_bundle}, with its host's entry of
    credentials."""
    return with_credentials(parse_entry(value, "target_graphs", "-", source, where="{}: target_graphs".format(source)),
                            credentials)


def with_credentials(destination, credentials):
    """The destination with its host's entry of releasekit.yaml's `credentials` (host_credentials.py), if any."""
    entry = host_credentials.for_destination(credentials, destination.scheme, destination.host)
    return dataclasses.replace(destination, credentials=entry) if entry else destination


def check_channels_apart(config):
    """Refuse a dev destination (mirrors too) that equals or nests with a CI one: dev must never write to production."""
    for dev in list(config.channels.get("dev", {}).values()) + list(config.mirrors.get("dev", ())):
        for ci in list(config.channels.get("ci", {}).values()) + list(config.mirrors.get("ci", ())):
            if dev.overlaps(ci):
                raise ConfigError(
                    "{}: {} overlaps {}; a dev release could overwrite production artifacts. "
                    "Give the dev channel its own namespace or path (e.g. '.../dev').".format(
                        config.source, dev.describe(), ci.describe()))
