"""What a CD system would read for a deploy release: the version a channel's pointer names, its YAML, and whether
every image the YAML pins exists in the registry (one HEAD each)."""

import json

from releasekit.core.errors import UsageError
from releasekit.publishing.credentials import registry_credentials
from releasekit.publishing.registry import RegistryClient
from releasekit.publishing.stores import open_store


def deployed(label, channel, version, config, policy, environ):
    """(lines to show, whether everything a CD system needs is there)."""
    package, _, name = label.lstrip("/").partition(":")
    for suffix in (".ci", ".dev"):
        name = name[:-len(suffix)] if name.endswith(suffix) else name
    if not name:
        raise UsageError("'{}' is not a deploy_release label (//package:name).".format(label))
    destination = config.destination(channel, "deploy")
    store = open_store(destination, policy, environ)
    base = "/".join(part for part in (package, name) if part)
    if version in (None, "latest"):
        pointer = store.get(base + "/latest")[0]
        if pointer is None:
            return ["{}: nothing is published at {} (no latest pointer).".format(label, store.describe(base))], False
        version = pointer.decode("utf-8").strip()
    summary = store.get("{}/{}/release.json".format(base, version))[0]
    if summary is None:
        return ["{}: version {} is not published at {}.".format(label, version, store.describe(base))], False
    summary = json.loads(summary)
    lines = ["{} {} version {} (commit {}) at {}".format(label, channel, version, summary.get("commit", "?"),
                                                       store.describe("{}/{}".format(base, version)))]
    complete = True
    for file_name in summary.get("files", []):
        content = store.get("{}/{}/{}".format(base, version, file_name))[0]
        complete &= content is not None
        lines.append("--- {}{}".format(file_name, "" if content is not None else ": MISSING"))
        if content is not None and file_name != "release.json":
            lines.append(content.decode("utf-8", "replace").rstrip("\n"))
    registry = config.destination(channel, "registry")
    client = RegistryClient(registry, registry_credentials(registry, environ), policy)
    for placeholder, reference in sorted(summary.get("images", {}).items()):
        host_and_repository, _, digest = reference.partition("@")
        host, _, repository = host_and_repository.partition("/")
        there = host == registry.host and client.manifest_exists(repository, digest, "repository:{}:pull".format(repository))
        complete &= there
        lines.append("image {} = {}: {}".format(placeholder, reference, "present" if there else "MISSING"))
    return lines, complete
