"""Deploy YAML as an OCI artifact in Flux's format, for CD systems that read manifests from a registry (Flux's
OCIRepository, Argo CD's oci:// sources); opt-in per channel with a `deploy_registry` destination.

The artifact is what `flux push artifact` writes: an OCI image manifest whose config has the media type
`application/vnd.cncf.flux.config.v1+json` and whose one layer, `application/vnd.cncf.flux.content.v1.tar+gzip`, is a
gzipped tarball of the YAML files at its root (owner 0, no user names, no times); the manifest carries the annotations
`org.opencontainers.image.source` (the repository), `org.opencontainers.image.revision` (`<branch>@sha1:<commit>`, as
Flux writes it) and `org.opencontainers.image.created`. It goes to `<deploy_registry>/<package>/<name>`: blobs, the
manifest by digest, the version tag, its signed provenance as a referrer, then `latest`, which a CI release moves only
forward (pointers.py, with the pointer record of the image tags). A CI version is immutable: a version tag whose
content (the layer) differs refuses the release; the same content is kept.
"""

import gzip
import io
import tarfile
import time

from releasekit.core.errors import ImmutableVersionError
from releasekit.publishing import channel_marker, ownership, pointers, provenance, tag_moves
from releasekit.publishing.oci import OCI_MANIFEST, InlineLocation, canonical_json, check_repository, sha256_digest

CONFIG_MEDIA_TYPE = "application/vnd.cncf.flux.config.v1+json"
CONTENT_MEDIA_TYPE = "application/vnd.cncf.flux.content.v1.tar+gzip"
SOURCE, REVISION, CREATED = ("org.opencontainers.image.source", "org.opencontainers.image.revision",
                             "org.opencontainers.image.created")


def tarball(files):
    """(gzipped tarball, sha256 of the tar) of [(name, bytes)], the same bytes for the same files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid, info.gid, info.uname, info.gname = 0, 0, "", ""
            archive.addfile(info, io.BytesIO(data))
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0) as stream:
        stream.write(raw.getvalue())
    return compressed.getvalue(), sha256_digest(raw.getvalue())


class ArtifactPlan:
    """The artifact as an image plan's root, for the pointer code that moves image tags."""

    def __init__(self, files, source, revision, created):
        self.layer, diff_id = tarball(files)
        self.config = canonical_json({"architecture": "", "os": "", "created": created, "config": {},
                                      "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
        self.layer_descriptor = {"mediaType": CONTENT_MEDIA_TYPE, "digest": sha256_digest(self.layer),
                                 "size": len(self.layer)}
        self.config_descriptor = {"mediaType": CONFIG_MEDIA_TYPE, "digest": sha256_digest(self.config),
                                  "size": len(self.config)}
        self.content = canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": self.config_descriptor,
                                       "layers": [self.layer_descriptor],
                                       "annotations": {SOURCE: source, REVISION: revision, CREATED: created}})
        self.root = {"digest": sha256_digest(self.content), "mediaType": OCI_MANIFEST, "size": len(self.content)}
        self.manifests = [self.root]

    def manifest_bytes(self, manifest):
        return self.content


def repository_of(destination, base):
    """`<namespace>/<package>/<name>` of a deploy release, as an OCI repository name."""
    return check_repository("/".join(p for p in (destination.path, base.lower()) if p), "deploy_registry repository")


def publish(release, client, destination, base, files, version):
    """Push the YAML files of version as a Flux artifact; returns the record's `oci` entry (its pointers apart)."""
    manifest = release.manifest
    repository = repository_of(destination, base)
    source, branch = provenance.source_of(release.environ, release.workspace)
    commit = release.source_version.commit
    plan = ArtifactPlan(files, source or "", "{}@sha1:{}".format(branch or "HEAD", commit),
                        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    name = "{}/{}".format(destination.host, repository)
    entry = {"repository": name, "tag": version, "status": "dry run"}
    channel_marker.guard_registry(manifest.channel, destination, client, dry_run=release.dry_run)
    if manifest.channel == "ci":
        ownership.claim_registry(client, destination, repository, manifest.release, dry_run=release.dry_run)
    there = client.read_manifest(repository, version)
    if there is not None:
        layers = there.get("layers") if isinstance(there, dict) else None
        if layers and layers[0].get("digest") == plan.layer_descriptor["digest"]:
            content = canonical_json(there)  # the artifact published first, kept
            plan.content, plan.root = content, dict(plan.root, digest=sha256_digest(content), size=len(content))
        elif manifest.channel == "ci":
            raise ImmutableVersionError(
                "{}: {}:{} is already published with other YAML; a CI deploy version is immutable, so nothing was "
                "written there. Publish a new version.".format(manifest.release, name, version))
        else:
            there = None
    entry["digest"] = plan.root["digest"]
    if release.dry_run:
        entry["status"] = "would publish" if there is None else "already published"
        return entry, plan, repository
    if there is None:
        client.push_blob(repository, plan.config_descriptor, InlineLocation(plan.config))
        client.push_blob(repository, plan.layer_descriptor, InlineLocation(plan.layer))
        client.put_manifest(repository, plan.root["digest"], OCI_MANIFEST, plan.content)
        client.put_manifest(repository, version, OCI_MANIFEST, plan.content)
    if provenance.enabled(release):
        entry["provenance"] = provenance.attach_image(release, client, repository, plan.root, name)
    entry["status"] = "published" if there is None else "already published"
    return entry, plan, repository


def move_latest(release, client, destination, repository, plan):
    """Move `latest` to the artifact: forward only for CI (pointers.py); a dev release moves it."""
    if release.channel == "ci":
        return tag_moves.move_image_tags(client, destination, repository, plan, ["latest"], release,
                                         dry_run=release.dry_run)
    if not release.dry_run:
        client.put_manifest(repository, "latest", OCI_MANIFEST, plan.content)
    return [pointers.PointerOutcome("latest", pointers.MOVED, release.source_version.commit)]
