"""Container images: an image plan's blobs, then its manifest by digest, then its tags, to the channel's registry.

A CI release first makes sure the repository is its own (ownership.py); it tags the commit, attaches the image's signed
provenance as an OCI 1.1 referrer (provenance.py), then moves each remote tag that may move (pointers.py)."""

from releasekit.core.errors import ImmutableVersionError
from releasekit.publishing import channel_marker, ownership, provenance, tag_moves
from releasekit.core.versioning import image_tags
from releasekit.publishing.credentials import registry_credentials
from releasekit.publishing.image_plan import ImagePlan
from releasekit.publishing.kinds import ArtifactKind, dry_run_note, human_bytes
from releasekit.publishing.blob_locator import BlobLocator
from releasekit.publishing.oci import check_tag
from releasekit.publishing.registry import RegistryClient, check_repository


class ContainerKind(ArtifactKind):
    name = "container"

    def publish(self, release):
        container, manifest = release.fields, release.manifest
        destination = release.destination("registry")
        repository_path = check_repository(container["repository"], "{} repository".format(manifest.release))
        repository = "/".join(p for p in (destination.path, repository_path) if p)
        tags = image_tags(manifest.channel, release.source_version, container.get("tags", []))
        for tag in tags:
            check_tag(tag)
        # CI: the commit tag is immutable and always written; remote tags are pointers, which only move forward.
        fixed, movable = (tags[:1], tags[1:]) if manifest.channel == "ci" else (tags, [])
        plan = ImagePlan.load(release.runfile(container["plan"]), release.runfile(container["image"]),
                              release.runfile(container["layers"]) if container.get("layers") else None)
        plan.check_unchanged(manifest.target)
        record = {
            "registry": destination.host,
            "repository": "{}/{}".format(destination.host, repository),
            "digest": plan.root["digest"],
            "reference": "{}/{}@{}".format(destination.host, repository, plan.root["digest"]),
            "tags": tags,
            "bytes_uploaded": 0,
            "blobs_uploaded": 0,
            "blobs_skipped": 0,
            "blobs_mounted": 0,
        }
        if plan.data.get("compressed_layers"):
            record["compressed_layers"] = plan.data["compressed_layers"]
        client = RegistryClient(destination, registry_credentials(destination.host, release.environ), release.policy,
                                workers=release.options.workers, locator=BlobLocator.default())
        if release.dry_run:
            # Read-only: the registry answers, accepts the credentials for reading, and has what of the image.
            claim = channel_marker.guard_registry(manifest.channel, destination, client, dry_run=True)
            owner = ownership.claim_registry(client, destination, repository, manifest.release, dry_run=True) \
                if manifest.channel == "ci" else None
            present, missing, missing_bytes, root_there = client.check_push(repository, plan)
            there = "image {} there already".format(plan.root["digest"][:19]) if root_there else None
            if manifest.channel == "ci":
                _check_commit_tag(client, repository, fixed, plan, record, manifest)
            moved = tag_moves.move_image_tags(client, destination, repository, plan, movable, release, dry_run=True)
            if provenance.enabled(release):
                record["provenance"] = {"status": "would attach", "location": record["reference"]}
            record.update(blobs_skipped=present, would_upload_blobs=missing, would_upload_bytes=missing_bytes,
                          checks=[c for c in (claim, owner, there) if c], pointers=[p.as_record(True) for p in moved])
            return record
        channel_marker.guard_registry(manifest.channel, destination, client)
        if manifest.channel == "ci":
            ownership.claim_registry(client, destination, repository, manifest.release)
            _check_commit_tag(client, repository, fixed, plan, record, manifest)
        last_check = (lambda: _check_commit_tag(client, repository, fixed, plan, record, manifest)) \
            if manifest.channel == "ci" else None
        result = client.push(repository, plan, fixed, before_tags=last_check)
        if provenance.enabled(release):  # after the image it describes, before any pointer moves to it
            record["provenance"] = provenance.attach_image(release, client, repository, plan.root, record["repository"])
        moved = tag_moves.move_image_tags(client, destination, repository, plan, movable, release)
        record.update(bytes_uploaded=result.bytes_uploaded, blobs_uploaded=result.blobs_uploaded,
                      blobs_skipped=result.blobs_skipped, blobs_mounted=result.blobs_mounted,
                      tags=fixed + [p.pointer for p in moved if p.moves], pointers=[p.as_record() for p in moved])
        return record

    def summary(self, record):
        if record["dry_run"]:
            return "{} would publish {} to {} tags {} ({} to upload in {} blobs, {} blobs there already){}".format(
                record["release"], record["digest"][:19], record["repository"], ",".join(record["tags"]),
                human_bytes(record["would_upload_bytes"]), record["would_upload_blobs"], record["blobs_skipped"],
                dry_run_note(record))
        return "{} published {} to {} tags {} ({} uploaded, {} blobs skipped, {} mounted) in {:.2f}s".format(
            record["release"], record["digest"][:19], record["repository"], ",".join(record["tags"]),
            human_bytes(record["bytes_uploaded"]), record["blobs_skipped"], record["blobs_mounted"],
            record["duration_seconds"])


def _check_commit_tag(client, repository, fixed, plan, record, manifest):
    """A CI image's commit tag is immutable, as a jar's or a file's version is: a commit tag that names another image
    (a build that is not reproducible, released again from another checkout) refuses the release before anything of
    it is pushed, and again right before the tag is written; its pointers are left where they are."""
    for tag in fixed:
        there = client.tag_digest(repository, tag)
        if there is not None and there != plan.root["digest"]:
            raise ImmutableVersionError(
                "{}: {}:{} already names another image ({}, not {}); a CI commit tag is immutable, so nothing was "
                "pushed and no tag moved. Make the image reproducible (the same commit must build the same digest), "
                "or release a new commit.".format(manifest.release, record["repository"], tag, there[:19],
                                                  plan.root["digest"][:19]))
