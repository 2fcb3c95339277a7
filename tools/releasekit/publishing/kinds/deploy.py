"""Deploy YAML: every image first, then the YAML pinned by digest (deploy_yaml.py), its signed provenance, with a
`deploy_registry` the same YAML as a Flux OCI artifact with its own (flux_artifact.py), then the pointers to the
version, by versioned_files.py's algorithm. A CI release's path must be its own (ownership.py), checked before any
image; the record's `pointers` include those of its images."""

import concurrent.futures
import hashlib
import os

from releasekit.core.errors import BlobNotInCacheError, DeployError, RefusedError, ReleasekitError
from releasekit.publishing import deploy_yaml, flux_artifact, ownership, provenance
from releasekit.publishing.kinds import ArtifactKind, dry_run_note
from releasekit.publishing.kinds.container import ContainerKind
from releasekit.publishing.registry import RegistryClient
from releasekit.publishing.registry_credentials import registry_credentials
from releasekit.publishing.versioned_files import VersionedFile, publish_version, summary_json


class DeployKind(ArtifactKind):
    name = "deploy"

    def publish(self, release):
        fields, manifest = release.fields, release.manifest
        destination = release.destination("deploy")  # before any image: a missing one fails early
        oci_destination = release.config.channels.get(manifest.channel, {}).get("deploy_registry")  # opt-in
        base = ownership.store_path(fields)
        store = release.open_store(destination)
        # A path another release owns refuses the release before any image (read only; the claim is written later).
        unclaimed = ownership.claim_store(store, base, manifest.release, "deploy path", dry_run=True) \
            if manifest.channel == "ci" else None
        records = self._publish_images(fields, release)
        references = {placeholder: record["reference"] for placeholder, record in records.items()}
        yaml_files = [VersionedFile(name, content) for name, content in self._pinned_files(fields, references, release)]
        version = release.version()
        # What the YAML says, whatever the version it is published as: one digest of the pinned files.
        content = hashlib.sha256(b"".join(f.name.encode() + b"\0" + f.content + b"\0" for f in yaml_files)).hexdigest()
        files = yaml_files + [VersionedFile("release.json", summary_json({
            "release": manifest.release, "version": version, "commit": release.source_version.commit,
            "images": references, "files": [f.name for f in yaml_files]}))]
        claim = release.guard_store(destination, store)
        owner = unclaimed if release.dry_run or not unclaimed else ownership.claim_store(
            store, base, manifest.release, "deploy path")
        record = {"version": version, "images": references, "files": [f.name for f in files], "sha256": content,
                  "store": destination.text}
        artifact = {}

        def before_pointer(_written):  # the store's provenance, then the OCI artifact with its own: after the YAML
            written = 0
            if provenance.enabled(release):
                made = provenance.make(release, [provenance.subject(f.name, hashlib.sha256(f.content).hexdigest())
                                                 for f in files], destination.text)
                path = "{}/{}/{}".format(base, version, provenance.STORE_FILE)
                record["provenance"], written = provenance.store_entry(store, path, made, manifest.channel == "ci",
                                                                      release.dry_run)
            if oci_destination is not None:
                client = RegistryClient(oci_destination, registry_credentials(oci_destination, release.environ),
                                        release.policy)
                record["oci"], plan, repository = flux_artifact.publish(
                    release, client, oci_destination, base, [(f.name, f.content) for f in yaml_files], version)
                artifact.update(client=client, plan=plan, repository=repository)
            return written

        published = publish_version(store, base, version, files, release, noun="deploy version",
                                    before_pointer=before_pointer)
        decided = [dict(entry, pointer="{}:{}".format(image["repository"], entry["pointer"]))
                   for image in {id(r): r for r in records.values()}.values() for entry in image.get("pointers", [])]
        decided.append(published.pointer.as_record(release.dry_run))
        if artifact:  # the registry's latest, last
            decided += [dict(outcome.as_record(release.dry_run), pointer=record["oci"]["repository"] + ":latest")
                        for outcome in flux_artifact.move_latest(release, artifact["client"], oci_destination,
                                                                 artifact["repository"], artifact["plan"])]
        record.update(status=published.status, bytes_uploaded=published.bytes_written, pointers=decided,
                      location=store.describe("{}/{}".format(base, version)))
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

        # Each image once, however many placeholders stand for it: two pushes of one image at once would race.
        placeholders = {}
        for placeholder, image_release in sorted(fields["images"].items()):
            placeholders.setdefault(image_release, []).append(placeholder)
        records, failures, misses, refusals = {}, [], [], []
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(4, len(placeholders)))) as pool:
            for image_release, future in [(label, pool.submit(publish_image, label)) for label in placeholders]:
                try:
                    records.update({placeholder: future.result() for placeholder in placeholders[image_release]})
                except ReleasekitError as error:
                    misses += getattr(error, "digests", [])
                    if isinstance(error, RefusedError):
                        refusals.append(error)
                    failures.append("image {} ('{}'): {}: {}".format(image_release, "', '".join(
                        placeholders[image_release]), type(error).__name__, error))
        if failures:
            text = "{}: no deploy YAML was published, because {}".format(manifest.release, "; and ".join(failures))
            if refusals:  # an image refused (owned by another label, a commit tag naming another image) refuses it too
                raise type(refusals[0])(text)
            if misses:  # the images' blobs the remote cache lost: building the release here brings them
                raise BlobNotInCacheError(text, misses)
            raise DeployError(text)
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
