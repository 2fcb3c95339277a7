"""Deploy YAML: every image first, then the YAML pinned by digest (deploy_yaml.py), published with the pointer to the
version by versioned_files.py's algorithm. A CI release's path must be its own (ownership.py), checked before any
image; the record's `pointers` include those of its images."""

import concurrent.futures
import hashlib
import os

from releasekit.core.errors import DeployError, ReleasekitError
from releasekit.publishing import deploy_yaml, ownership
from releasekit.publishing.kinds import ArtifactKind, dry_run_note
from releasekit.publishing.kinds.container import ContainerKind
from releasekit.publishing.versioned_files import VersionedFile, publish_version, summary_json


class DeployKind(ArtifactKind):
    name = "deploy"

    def publish(self, release):
        fields, manifest = release.fields, release.manifest
        destination = release.destination("deploy")  # before any image: a missing one fails early
        base = ownership.store_path(fields)
        store = release.open_store(destination)
        # A path another release owns refuses the release before any image (read only; the claim is written later).
        unclaimed = ownership.claim_store(store, base, manifest.release, "deploy path", dry_run=True) \
            if manifest.channel == "ci" else None
        records = self._publish_images(fields, release)
        references = {placeholder: record["reference"] for placeholder, record in records.items()}
        files = [VersionedFile(name, content) for name, content in self._pinned_files(fields, references, release)]
        version = release.version()
        # What the YAML says, whatever the version it is published as: one digest of the pinned files.
        content = hashlib.sha256(b"".join(f.name.encode() + b"\0" + f.content + b"\0" for f in files)).hexdigest()
        files.append(VersionedFile("release.json", summary_json({
            "release": manifest.release, "version": version, "commit": release.source_version.commit,
            "images": references, "files": [f.name for f in files]})))
        claim = release.guard_store(destination, store)
        owner = unclaimed if release.dry_run or not unclaimed else ownership.claim_store(
            store, base, manifest.release, "deploy path")
        published = publish_version(store, base, version, files, release, noun="deploy version")
        pointers = [dict(entry, pointer="{}:{}".format(image["repository"], entry["pointer"]))
                    for image in records.values() for entry in image.get("pointers", [])]
        record = {"version": version, "images": references, "files": [f.name for f in files], "sha256": content,
                  "store": destination.text, "status": published.status, "bytes_uploaded": published.bytes_written,
                  "location": store.describe("{}/{}".format(base, version)),
                  "pointers": pointers + [published.pointer.as_record(release.dry_run)]}
        if claim or owner:
            record["checks"] = [c for c in (claim, owner) if c]
        return record

    @staticmethod
    def _publish_images(fields, release):
        """Every image the YAML references, at once; {placeholder: image record}. One that fails fails them all."""
        images, manifest = ContainerKind(), release.manifest

        def publish_image(image_release):
            return images.publish(release.with_manifest(manifest.dependency(image_release,
                                                                            release.options.runfiles_dir)))

        records, failures = {}, []
        items = sorted(fields["images"].items())
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(4, len(items)))) as pool:
            for (placeholder, image_release), future in [(item, pool.submit(publish_image, item[1])) for item in items]:
                try:
                    records[placeholder] = future.result()
                except ReleasekitError as error:
                    failures.append("image {} ('{}'): {}: {}".format(image_release, placeholder, type(error).__name__,
                                                                     error))
        if failures:
            raise DeployError("{}: no deploy YAML was published, because {}".format(
                manifest.release, "; and ".join(failures)))
        return records

    @staticmethod
    def _pinned_files(fields, references, release):
        """[(file name, the reviewed text with its images pinned by digest)], nothing else changed."""
        files = []
        for rlocation in fields["files"]:
            path = release.runfile(rlocation)
            with open(path, encoding="utf-8", newline="") as handle:  # the reviewed text, line endings and all
                text = handle.read()
            try:
                pinned = deploy_yaml.pin_images(text, references, fields.get("image_fields", []),
                                                os.path.basename(path))
            except DeployError as error:
                raise DeployError("{}: {}".format(release.manifest.release, error)) from None
            files.append((os.path.basename(path), pinned.encode("utf-8")))
        return files

    def summary(self, record):
        return "{} {} deploy version {} to {} with {} in {:.2f}s{}".format(
            record["release"], record["status"], record["version"], record["location"],
            ", ".join("{}={}".format(k, v) for k, v in sorted(record["images"].items())) or "no images",
            record["duration_seconds"], dry_run_note(record))
