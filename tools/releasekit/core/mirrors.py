"""A channel's mirror registries (channels.<channel>.mirrors): every image of the channel goes to its primary registry
(`registry`) and to each of them. An entry is a string or {url, insecure, ca_bundle, name}; `name` (by default the
host) names the mirror's own credentials (environment.registry_credential_variables)."""

import dataclasses
import re

from releasekit.core import environment
from releasekit.core.destinations import parse_registry
from releasekit.core.errors import ConfigError


def mirror_registries(value, channel, channel_insecure, source):
    """The registries of channels.<channel>.mirrors: a list of entries, each a string or {url, insecure,
    ca_bundle, name}."""
    if not isinstance(value, list):
        raise ConfigError("{}: channels.{}.mirrors must be a list of registries.".format(source, channel))
    mirrors, names = [], {}
    for index, entry in enumerate(value):
        where = "channels.{}.mirrors[{}]".format(channel, index)
        url, insecure, ca_bundle, name = entry, channel_insecure, None, None
        if isinstance(entry, dict):
            url, insecure = entry.get("url"), bool(entry.get("insecure", channel_insecure))
            ca_bundle, name = entry.get("ca_bundle"), entry.get("name")
        destination = parse_registry(url, channel, insecure, ca_bundle, source)
        name = name or destination.host
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9._:-]+$", name):
            raise ConfigError("{}: {}: name '{}' must be letters, digits, '.', '_', ':' or '-'.".format(
                source, where, name))
        variables = environment.registry_credential_variables(name)
        if variables in names:
            raise ConfigError("{}: {} and {} both take their credentials from {}: give one a `name` of its own."
                              .format(source, names[variables], where, variables[0]))
        names[variables] = where
        mirrors.append(dataclasses.replace(destination, name=name, where=where))
    return tuple(mirrors)


def registries(config, channel):
    """Every registry a channel's images go to: the primary (`registry`) first, then its mirrors."""
    return [config.destination(channel, "registry")] + list(getattr(config, "mirrors", {}).get(channel, ()))


def check_mirrors(config):
    """Mirrors need a primary registry, and a channel's registries are distinct places."""
    for channel in [channel for channel, mirrors in config.mirrors.items() if mirrors]:
        if "registry" not in config.channels.get(channel, {}):
            raise ConfigError("{}: channels.{}.mirrors needs a primary registry: add channels.{}.registry.".format(
                config.source, channel, channel))
        check_registries_apart(registries(config, channel), config.source)


def check_registries_apart(registries, source):
    """One channel's registries are distinct places: an image pushed twice to one place is a mistake."""
    for index, one in enumerate(registries):
        for other in registries[index + 1:]:
            if one.overlaps(other):
                raise ConfigError("{}: {} and {} are one registry; list each registry once.".format(
                    source, one.describe(), other.describe()))
