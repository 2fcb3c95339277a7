"""What a CD system would read for a deploy release: the version a channel's pointer names, its YAML, and whether
every image the YAML pins exists in the registry (one HEAD each). From the deploy store, or from the channel's
deploy_registry, where the same YAML is a Flux OCI artifact (flux_artifact.py)."""

import json

from releasekit.core.errors import UsageError
from releasekit.publishing.registry import RegistryClient
from releasekit.publishing.registry_credentials import registry_credentials


def deployed(label, channel, version, context, source="store"):
    """(lines to show, whether everything a CD system needs is there). context: the command's RunContext; source:
    store (the deploy store) or registry (the channel's deploy_registry)."""
    package, _, name = label.lstrip("/").partition(":")
    for suffix in (".ci", ".dev"):
        name = name[:-len(suffix)] if name.endswith(suffix) else name
    if not name:
        raise UsageError("'{}' is not a deploy_release label (//package:name).".format(label))
    base = "/".join(part for part in (package, name) if part)
    if source == "registry":
        return _from_registry(label, channel, base, version, context)
    store = context.open_store(context.destination(channel, "deploy"))
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
    return _images(lines, complete, sorted(summary.get("images", {}).items()), channel, context)


def _images(lines, complete, images, channel, context):
    registry = context.destination(channel, "registry")
    client = RegistryClient(registry, registry_credentials(registry, context.environ), context.policy)
    for placeholder, reference in images:
        host_and_repository, _, digest = reference.partition("@")
        host, _, repository = host_and_repository.partition("/")
        there = host == registry.host and client.manifest_exists(repository, digest,
                                                                 "repository:{}:pull".format(repository))
        complete &= there
        lines.append("image {} = {}: {}".format(placeholder, reference, "present" if there else "MISSING"))
    return lines, complete


def _from_registry(label, channel, base, version, context):
    """The Flux artifact of the version (or latest): its annotations, each YAML file, and every image it pins."""
    import io
    import tarfile

    from releasekit.publishing.flux_artifact import REVISION, repository_of
    from releasekit.publishing.verify import PINNED, read_blob

    destination = context.destination(channel, "deploy_registry")
    repository = repository_of(destination, base)
    client = RegistryClient(destination, registry_credentials(destination, context.environ), context.policy)
    reference = "{}/{}:{}".format(destination.host, repository, version or "latest")
    manifest = client.read_manifest(repository, version or "latest")
    if manifest is None:
        return ["{}: nothing is published at {}.".format(label, reference)], False
    layer = (manifest.get("layers") or [{}])[0]
    blob = read_blob(client, repository, layer.get("digest", ""))
    if blob is None:
        return ["{}: {}: its content {} is MISSING.".format(label, reference, layer.get("digest"))], False
    revision = (manifest.get("annotations") or {}).get(REVISION)
    lines = ["{} {} {} (revision {})".format(label, channel, reference, revision)]
    texts = []
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as archive:
        for member in archive.getmembers():
            if member.isfile():
                texts.append(archive.extractfile(member).read().decode("utf-8", "replace"))
                lines += ["--- " + member.name, texts[-1].rstrip("\n")]
    pinned = sorted({m for text in texts for m in PINNED.findall(text)})
    return _images(lines, True, [("pinned", reference) for reference in pinned], channel, context)
