"""Files: one file or tarball with its checksum, then release.json, then its signed provenance (`<file>.intoto.jsonl`),
then the `latest` pointer, to the channel's `files` store. The checksum is the commit point of a version: written after the file, and read first to decide
whether the version is there already (a CI version is immutable). A CI release's path must be its own
(ownership.py), and `latest` moves only forward (pointers.py)."""

import os

from releasekit.core.errors import ImmutableVersionError, UsageError
from releasekit.publishing import ownership, pointers, provenance
from releasekit.publishing.deploy import release_summary
from releasekit.publishing.kinds import ArtifactKind, dry_run_note, human_bytes
from releasekit.publishing.oci import BlobLocation


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
        version = release.version()
        base = ownership.store_path(fields)
        directory = "{}/{}".format(base, version)
        checksum = "{}  {}\n".format(digest, name).encode("utf-8")
        summary = release_summary({"release": manifest.release, "version": version, "commit": release.source_version.commit,
                                   "file": name, "sha256": digest, "size": size})
        store = release.open_store(destination)
        claim = release.guard_store(destination, store)
        owner = ownership.claim_store(store, base, manifest.release, "files path", release.dry_run) \
            if manifest.channel == "ci" else None
        record = {"version": version, "file": name, "sha256": digest, "size": size, "store": destination.text,
                  "location": store.describe(directory), "bytes_uploaded": 0}
        if claim or owner:
            record["checks"] = [c for c in (claim, owner) if c]
        published = store.get("{}/{}.sha256".format(directory, name))[0]
        if published is not None and published != checksum and manifest.channel == "ci":
            raise ImmutableVersionError(
                "{}: {} is already published with another checksum ({}); a CI version is immutable, so nothing was "
                "written. Publish a new version.".format(manifest.release, store.describe("{}/{}".format(directory, name)),
                                                         published.decode("utf-8", "replace").split()[0][:19]))
        pointer = (version + "\n").encode("utf-8")
        writes = []
        if published != checksum:
            writes += [("file", "{}/{}".format(directory, name), None), ("checksum", "{}/{}.sha256".format(directory, name), checksum)]
        if store.get(directory + "/release.json")[0] != summary:
            writes.append(("metadata", directory + "/release.json", summary))
        if provenance.enabled(release):  # after the file and its checksum, before the pointer
            signed = "{}/{}{}".format(directory, name, provenance.SUFFIX)
            made = provenance.make(release, [provenance.subject(name, digest)], destination.text)
            record["provenance"] = made.record(store.describe(signed))
            if writes or store.get(signed)[0] is None:  # a re-run keeps it: it describes the same digest
                writes.append(("provenance", signed, made.data))
        if release.dry_run:
            current = store.get(base + "/latest")[0]
            moved = pointers.store_pointer(store, base, version, current, release)
            record["pointers"] = [moved.as_record(True)]
            if current != pointer and moved.moves:
                writes.append(("pointer", base + "/latest", pointer))
            record["status"] = "would write " + ", ".join(w[0] for w in writes) if writes else "already published"
            return record
        for what, target, content in writes:
            if what == "file":
                store.put_file(target, path)
                record["bytes_uploaded"] += size
            else:
                store.put(target, content)
                record["bytes_uploaded"] += len(content)
        moved, written = pointers.move_store_pointer(store, base, version, release)  # last, and only forward
        record["pointers"] = [moved.as_record()]
        record["bytes_uploaded"] += written
        if not writes and not written:
            record["status"] = "already published"
        else:
            record["status"] = "completed" if published == checksum else "published"
        return record

    def summary(self, record):
        return "{} {} {} {} ({}, sha256 {}) to {} ({} uploaded) in {:.2f}s{}".format(
            record["release"], record["status"], record["file"], record["version"], human_bytes(record["size"]),
            record["sha256"][:12], record["location"], human_bytes(record["bytes_uploaded"]), record["duration_seconds"],
            dry_run_note(record))
