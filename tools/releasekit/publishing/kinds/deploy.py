"""Deploy YAML: every image first, then the YAML pinned by digest, then the pointer to the version. A CI release's
path must be its own (ownership.py), checked before any image, and `latest` moves only forward (pointers.py); the
record's `pointers` include those of its images."""

import concurrent.futures
import hashlib
import os

from releasekit.core.errors import ReleasekitError
from releasekit.publishing import deploy as deploy_yaml, ownership, pointers
from releasekit.publishing.kinds import ArtifactKind, dry_run_note
from releasekit.publishing.kinds.container import ContainerKind


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
        images = ContainerKind()

        def publish_image(item):
            placeholder, image_release = item
            image_manifest = manifest.dependency(image_release, release.options.runfiles_dir)
            return images.publish(release.with_manifest(image_manifest))

        records, failures = {}, []
        items = sorted(fields["images"].items())
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(4, len(items)))) as pool:
            for (placeholder, image_release), future in [(item, pool.submit(publish_image, item)) for item in items]:
                try:
                    records[placeholder] = future.result()
                except ReleasekitError as error:
                    failures.append("image {} ('{}'): {}: {}".format(image_release, placeholder, type(error).__name__, error))
        if failures:
            raise deploy_yaml.DeployError("{}: no deploy YAML was published, because {}".format(
                manifest.release, "; and ".join(failures)))
        references = {placeholder: record["reference"] for placeholder, record in records.items()}
        files = []
        for rlocation in fields["files"]:
            path = release.runfile(rlocation)
            with open(path, encoding="utf-8", newline="") as handle:  # the reviewed text, line endings and all
                text = handle.read()
            try:
                pinned = deploy_yaml.pin_images(text, references, fields.get("image_fields", []), os.path.basename(path))
            except deploy_yaml.DeployError as error:
                raise deploy_yaml.DeployError("{}: {}".format(manifest.release, error)) from None
            files.append((os.path.basename(path), pinned.encode("utf-8")))
        version = release.version()
        summary = {"release": manifest.release, "version": version, "commit": release.source_version.commit,
                   "images": references, "files": [name for name, _ in files]}
        # What the YAML says, whatever the version it is published as: one digest of the pinned files.
        content = hashlib.sha256(b"".join(name.encode() + b"\0" + data + b"\0" for name, data in files)).hexdigest()
        files.append(("release.json", deploy_yaml.release_summary(summary)))
        record = {"version": version, "images": references, "files": [name for name, _ in files], "status": "dry run",
                  "sha256": content,
                  "bytes_uploaded": 0, "store": destination.text,
                  "location": "{}/{}".format(destination.text.rstrip("/"), base)}
        claim = release.guard_store(destination, store)
        owner = unclaimed if release.dry_run or not unclaimed else ownership.claim_store(
            store, base, manifest.release, "deploy path")
        decided = [dict(entry, pointer="{}:{}".format(image["repository"], entry["pointer"]))
                   for image in records.values() for entry in image.get("pointers", [])]

        def move_pointer(current):
            outcome = pointers.store_pointer(store, base, version, current, release)
            decided.append(outcome.as_record(release.dry_run))
            return outcome.moves

        if release.dry_run:
            move_pointer(store.get(base + "/latest")[0])
        status, written = deploy_yaml.publish_files(store, "{}/{}".format(base, version), files, base + "/latest",
                                                    version, immutable=manifest.channel == "ci", dry_run=release.dry_run,
                                                    move_pointer=move_pointer)
        if claim or owner:
            record["checks"] = [c for c in (claim, owner) if c]
        record.update(status=status, bytes_uploaded=written, location=store.describe("{}/{}".format(base, version)),
                      pointers=decided)
        return record

    def summary(self, record):
        return "{} {} deploy version {} to {} with {} in {:.2f}s{}".format(
            record["release"], record["status"], record["version"], record["location"],
            ", ".join("{}={}".format(k, v) for k, v in sorted(record["images"].items())) or "no images",
            record["duration_seconds"], dry_run_note(record))
