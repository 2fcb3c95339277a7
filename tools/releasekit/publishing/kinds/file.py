"""Files: one file or tarball with its checksum, then release.json, then its signed provenance (`<file>.intoto.jsonl`),
then the `latest` pointer, to the channel's `files` store, by versioned_files.py's algorithm. The checksum is the
commit point of a version: written after the file, and what says the file is there (a CI version is immutable). A CI
release's path must be its own (ownership.py)."""

import os

from releasekit.core.errors import UsageError
from releasekit.publishing import ownership, provenance
from releasekit.publishing.kinds import ArtifactKind, dry_run_note, human_bytes
from releasekit.publishing.oci import BlobLocation
from releasekit.publishing.versioned_files import VersionedFile, publish_version, summary_json


class FileKind(ArtifactKind):
    name = "file"

    def publish(self, release):
        fields, manifest = release.fields, release.manifest
        destination = release.destination("files")
        path, name = release.runfile(fields["file"]), fields["file_name"]
        if not os.path.isfile(path):
            raise UsageError("{}: {} does not exist; rebuild the release target.".format(manifest.release, path))
        size = os.path.getsize(path)
        digest = BlobLocation(path, 0, size).digest().split(":", 1)[1]
        version, base = release.version(), ownership.store_path(fields)
        checksum = name + ".sha256"
        files = [
            VersionedFile(name, local_path=path, covered_by=checksum, label="file"),
            VersionedFile(checksum, "{}  {}\n".format(digest, name).encode("utf-8"), label="checksum"),
            VersionedFile("release.json", summary_json({
                "release": manifest.release, "version": version, "commit": release.source_version.commit,
                "file": name, "sha256": digest, "size": size}), immutable=False, label="metadata"),
        ]
        store = release.open_store(destination)
        claim = release.guard_store(destination, store)
        owner = ownership.claim_store(store, base, manifest.release, "files path", release.dry_run) \
            if manifest.channel == "ci" else None
        record = {}

        def before_pointer(written):  # the signed provenance: once a version has one, a re-run keeps it
            if not provenance.enabled(release):
                return 0
            signed = "{}/{}/{}{}".format(base, version, name, provenance.SUFFIX)
            made = provenance.make(release, [provenance.subject(name, digest)], destination.text)
            record["provenance"] = made.record(store.describe(signed))
            if not (written or store.get(signed)[0] is None):
                return 0
            if not release.dry_run:
                store.put(signed, made.data)
            return len(made.data)

        published = publish_version(store, base, version, files, release, before_pointer=before_pointer,
                                    before_pointer_label="provenance")
        record.update({
            "version": version, "file": name, "sha256": digest, "size": size, "store": destination.text,
            "location": store.describe("{}/{}".format(base, version)), "status": published.status,
            "bytes_uploaded": published.bytes_written, "pointers": [published.pointer.as_record(release.dry_run)]})
        if claim or owner:
            record["checks"] = [c for c in (claim, owner) if c]
        return record

    def summary(self, record):
        return "{} {} {} {} ({}, sha256 {}) to {} ({} uploaded) in {:.2f}s{}".format(
            record["release"], record["status"], record["file"], record["version"], human_bytes(record["size"]),
            record["sha256"][:12], record["location"], human_bytes(record["bytes_uploaded"]),
            record["duration_seconds"],
            dry_run_note(record))
