"""Deploy YAML: every image first, then the YAML pinned by digest, its signed provenance, with a `deploy_registry` the
same YAML as a Flux OCI artifact with its own (flux_artifact.py), then the pointers to the version. A CI release's path
must be its own (ownership.py), checked before any image, and `latest` moves only forward (pointers.py); the record's
`pointers` include those of its images."""

import concurrent.futures
import hashlib
import os

from releasekit.core.errors import RefusedError, ReleasekitError
from releasekit.publishing import deploy as deploy_yaml, flux_artifact, ownership, pointers, provenance
from releasekit.publishing.credentials import registry_credentials
from releasekit.publishing.kinds import ArtifactKind, dry_run_note
from releasekit.publishing.kinds.container import ContainerKind
from releasekit.publishing.registry import RegistryClient


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
        images = ContainerKind()

        def publish_image(image_release):
            image_manifest = manifest.dependency(image_release, release.options.runfiles_dir)
            return images.publish(release.with_manifest(image_manifest))

        # Each image once, however many placeholders stand for it: two pushes of one image at once would race.
        placeholders = {}
        for placeholder, image_release in sorted(fields["images"].items()):
            placeholders.setdefault(image_release, []).append(placeholder)
        records, failures, refusals = {}, [], []
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(4, len(placeholders)))) as pool:
            for image_release, future in [(label, pool.submit(publish_image, label)) for label in placeholders]:
                try:
                    records.update({placeholder: future.result() for placeholder in placeholders[image_release]})
                except ReleasekitError as error:
                    if isinstance(error, RefusedError):
                        refusals.append(error)
                    failures.append("image {} ('{}'): {}: {}".format(image_release, "', '".join(
                        placeholders[image_release]), type(error).__name__, error))
        if failures:
            # An image refused (owned by another label, a commit tag naming another image) refuses the deploy
            # release too, with the image's own error: refused, not failed, as in a run that sees it beforehand.
            raise (type(refusals[0]) if refusals else deploy_yaml.DeployError)(
                "{}: no deploy YAML was published, because {}".format(manifest.release, "; and ".join(failures)))
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
                   for image in {id(r): r for r in records.values()}.values() for entry in image.get("pointers", [])]

        def move_pointer():
            outcome, written = pointers.move_store_pointer(store, base, version, release)
            decided.append(outcome.as_record())
            return written

        artifact = {}

        def before_pointer():  # the store's provenance, then the OCI artifact with its own: after the YAML
            written = 0
            if provenance.enabled(release):
                made = provenance.make(release, [provenance.subject(name, hashlib.sha256(data).hexdigest())
                                                 for name, data in files], destination.text)
                path = "{}/{}/{}".format(base, version, provenance.STORE_FILE)
                record["provenance"], written = provenance.store_entry(store, path, made, manifest.channel == "ci",
                                                                      release.dry_run)
            if oci_destination is not None:
                client = RegistryClient(oci_destination, registry_credentials(oci_destination.host, release.environ),
                                        release.policy)
                record["oci"], plan, repository = flux_artifact.publish(release, client, oci_destination, base,
                                                                        files[:-1], version)
                artifact.update(client=client, plan=plan, repository=repository)
            return written

        if release.dry_run:
            decided.append(pointers.store_pointer(store, base, version, store.get(base + "/latest")[0],
                                                  release).as_record(True))
            before_pointer()
        status, written = deploy_yaml.publish_files(store, "{}/{}".format(base, version), files, base + "/latest",
                                                    version, immutable=manifest.channel == "ci", dry_run=release.dry_run,
                                                    move_pointer=move_pointer, before_pointer=before_pointer)
        if artifact:  # the registry's latest, last
            decided += [dict(outcome.as_record(release.dry_run), pointer=record["oci"]["repository"] + ":latest")
                        for outcome in flux_artifact.move_latest(release, artifact["client"], oci_destination,
                                                                 artifact["repository"], artifact["plan"])]
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
