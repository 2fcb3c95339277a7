"""Runs one release target: reads its release manifest, checks the channel, publishes, records.

A release manifest is written by the release rules at build time (what to publish, from
which files). Destinations are not in it: they come from releasekit.yaml when the
release runs, so one build serves any channel configuration.
"""

import dataclasses
import json
import logging
import os
import time

from releasekit.publishing import channel_marker
from releasekit.core import config as config_module
from releasekit.publishing.credentials import registry_credentials
from releasekit.core.errors import RefusedError, UsageError
from releasekit.core.http import RetryPolicy
from releasekit.publishing.image import ImagePlan
from releasekit.publishing.registry import BlobLocator, RegistryClient, check_repository
from releasekit.core.jsonio import write_json_atomic
from releasekit.core.versioning import image_tags, read_source_version, release_version_setting

log = logging.getLogger(__name__)
MANIFEST_SCHEMA_VERSION = 1
RECORD_SCHEMA_VERSION = 1


@dataclasses.dataclass
class PublishOptions:
    runfiles_dir: str
    config_path: str = None
    dry_run: bool = False
    workers: int = 4
    environ: dict = None


def load_release_manifest(path):
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as error:
        raise UsageError("Cannot read release manifest {}: {}. Rebuild the release target.".format(path, error)) from None
    if manifest.get("schema_version") != MANIFEST_SCHEMA_VERSION:
        raise UsageError(
            "{} has release manifest version {}, this releasekit reads version {}. Rebuild the target with "
            "matching rules_release and releasekit versions.".format(
                path, manifest.get("schema_version"), MANIFEST_SCHEMA_VERSION
            )
        )
    return manifest


def runfile(runfiles_dir, rlocation):
    return os.path.join(runfiles_dir, rlocation)


def check_channel_allowed(manifest, environ):
    if manifest["channel"] == "ci" and environ.get("CI", "").lower() != "true":
        raise RefusedError(
            "{} publishes to the production (ci) channel and only runs in CI (CI=true is not set). To "
            "publish from your machine, run the dev variant instead: bazel run {}.dev".format(
                manifest["target"], manifest["release"]
            )
        )


def check_clean_for_ci(manifest, version, environ):
    """A CI release is tagged with the commit SHA; uncommitted changes would make that tag lie."""
    if manifest["channel"] == "ci" and version.dirty and environ.get("RELEASEKIT_ALLOW_DIRTY", "").lower() != "true":
        raise RefusedError(
            "{}: the working tree has uncommitted changes to tracked files, so the release would not be "
            "what commit {} holds. Commit or stash them (or set RELEASEKIT_ALLOW_DIRTY=true if the CI job "
            "changes files on purpose).".format(manifest["target"], version.short_commit)
        )


def publish(manifest_path, options):
    """Publish what the release manifest describes. Returns the release record (a dict)."""
    environ = os.environ if options.environ is None else options.environ
    started = time.time()
    manifest = load_release_manifest(manifest_path)
    check_channel_allowed(manifest, environ)
    config = config_module.load_config(options.config_path, environ)
    version = read_source_version(environ)
    check_clean_for_ci(manifest, version, environ)
    policy = RetryPolicy.from_environment(environ)
    kind = manifest["kind"]
    if kind == "container":
        record = _publish_container(manifest, config, version, policy, options, environ)
    elif kind == "jar":
        record = _publish_jar(manifest, config, version, policy, options, environ)
    elif kind == "deploy":
        record = _publish_deploy(manifest, config, version, policy, options, environ)
    else:
        raise UsageError("{}: unknown release kind '{}'.".format(manifest_path, kind))
    record.update(
        schema_version=RECORD_SCHEMA_VERSION,
        target=manifest["target"],
        release=manifest["release"],
        channel=manifest["channel"],
        kind=kind,
        commit=version.commit,
        dry_run=options.dry_run,
        duration_seconds=round(time.time() - started, 3),
    )
    if environ.get("RELEASEKIT_REPORT"):
        write_json_atomic(environ["RELEASEKIT_REPORT"], record)
    return record


def _publish_container(manifest, config, version, policy, options, environ):
    container = manifest["container"]
    destination = config.destination(manifest["channel"], "registry")
    repository_path = check_repository(container["repository"], "{} repository".format(manifest["release"]))
    repository = "/".join(p for p in (destination.path, repository_path) if p)
    tags = image_tags(manifest["channel"], version, container.get("tags", []))
    plan = ImagePlan.load(
        runfile(options.runfiles_dir, container["plan"]), runfile(options.runfiles_dir, container["image"]),
        runfile(options.runfiles_dir, container["layers"]) if container.get("layers") else None,
    )
    plan.check_unchanged(manifest["target"])
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
    client = RegistryClient(
        destination, registry_credentials(destination.host, environ), policy, workers=options.workers,
        locator=BlobLocator.default(),
    )
    if options.dry_run:
        # Read-only: the registry answers, accepts the credentials for reading, and has what of the image.
        claim = channel_marker.guard_registry(manifest["channel"], destination, client, dry_run=True)
        present, missing, missing_bytes, root_there = client.check_push(repository, plan)
        record.update(blobs_skipped=present, would_upload_blobs=missing, would_upload_bytes=missing_bytes,
                      checks=[c for c in (claim, "image {} there already".format(plan.root["digest"][:19]) if root_there
                                          else None) if c])
        return record
    channel_marker.guard_registry(manifest["channel"], destination, client)
    result = client.push(repository, plan, tags)
    record.update(
        bytes_uploaded=result.bytes_uploaded,
        blobs_uploaded=result.blobs_uploaded,
        blobs_skipped=result.blobs_skipped,
        blobs_mounted=result.blobs_mounted,
    )
    return record


def release_version(manifest, coordinates, environ):
    """The version a jar is published as: from its coordinates, else RELEASEKIT_VERSION; dev adds -SNAPSHOT."""
    version = coordinates.version or release_version_setting(environ)
    if manifest["channel"] == "ci":
        if not version:
            raise UsageError(
                "{} has no version: give coordinates as group:artifact:version, or set RELEASEKIT_VERSION for the "
                "release.".format(manifest["release"])
            )
        return version
    version = version or "0.0.0"
    return version if version.endswith("-SNAPSHOT") else version + "-SNAPSHOT"


def _publish_jar(manifest, config, source_version, policy, options, environ):
    from releasekit.publishing import maven
    from releasekit.publishing.stores import open_store

    jar = manifest["jar"]
    coordinates = maven.Coordinates.parse(jar["coordinates"], "{} coordinates".format(manifest["release"]))
    version = release_version(manifest, coordinates, environ)
    destination = config.destination(manifest["channel"], "maven")
    template = None
    if jar.get("pom_template"):
        with open(runfile(options.runfiles_dir, jar["pom_template"]), encoding="utf-8") as handle:
            template = handle.read()
    dependencies = [maven.Coordinates.parse(d, "a dependency of " + manifest["release"]) for d in jar.get("deps", [])]
    pom = maven.render_pom(coordinates, version, dependencies, template)
    files = [maven.MavenFile("pom", content=pom), maven.MavenFile("jar", path=runfile(options.runfiles_dir, jar["jar"]))]
    if jar.get("sources_jar"):
        files.append(maven.MavenFile("jar", "sources", path=runfile(options.runfiles_dir, jar["sources_jar"])))
    for classifier, path in sorted(jar.get("classifier_jars", {}).items()):
        files.append(maven.MavenFile("jar", classifier, path=runfile(options.runfiles_dir, path)))
    for file in files:
        if file.path and not os.path.isfile(file.path):
            raise UsageError("{}: {} does not exist; rebuild the release target.".format(manifest["release"], file.path))
    record = {"coordinates": "{}:{}".format(coordinates.group, coordinates.artifact), "version": version,
              "store": destination.text, "files": [], "status": "dry run", "bytes_uploaded": 0}
    store = open_store(destination, policy, environ)
    claim = channel_marker.guard_store(manifest["channel"], destination, store, lambda d: open_store(d, policy, environ),
                                       dry_run=options.dry_run)
    publisher = maven.publish_release if manifest["channel"] == "ci" else maven.publish_snapshot
    result = publisher(store, coordinates, version, files, dry_run=options.dry_run)
    if claim:
        record["checks"] = [claim]
    record.update(version=result.version, files=result.files, status=result.status,
                  bytes_uploaded=result.bytes_uploaded, location=result.store)
    return record


def _publish_deploy(manifest, config, source_version, policy, options, environ):
    """Every image first; then the YAML, pinned by digest; the pointer to the version last."""
    import concurrent.futures

    from releasekit.publishing import deploy
    from releasekit.core.errors import ReleasekitError
    from releasekit.publishing.stores import open_store

    fields = manifest["deploy"]
    destination = config.destination(manifest["channel"], "deploy")  # before any image: a missing one fails early
    image_manifests = manifest.get("depends_on_manifests", {})

    def publish_image(item):
        placeholder, release = item
        if release not in image_manifests:
            raise UsageError("{}: image {} has no release manifest; rebuild the target.".format(manifest["release"], release))
        image_manifest = load_release_manifest(runfile(options.runfiles_dir, image_manifests[release]))
        return _publish_container(image_manifest, config, source_version, policy, options, environ)

    records, failures = {}, []
    items = sorted(fields["images"].items())
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(4, len(items)))) as pool:
        for (placeholder, release), future in [(item, pool.submit(publish_image, item)) for item in items]:
            try:
                records[placeholder] = future.result()
            except ReleasekitError as error:
                failures.append("image {} ('{}'): {}: {}".format(release, placeholder, type(error).__name__, error))
    if failures:
        raise deploy.DeployError("{}: no deploy YAML was published, because {}".format(
            manifest["release"], "; and ".join(failures)))
    references = {placeholder: record["reference"] for placeholder, record in records.items()}
    files = []
    for rlocation in fields["files"]:
        path = runfile(options.runfiles_dir, rlocation)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        try:
            pinned = deploy.pin_images(text, references, fields.get("image_fields", []), os.path.basename(path))
        except deploy.DeployError as error:
            raise deploy.DeployError("{}: {}".format(manifest["release"], error)) from None
        files.append((os.path.basename(path), pinned.encode("utf-8")))
    if manifest["channel"] == "ci":
        version = release_version_setting(environ) or source_version.commit
    else:
        version = image_tags("dev", source_version, [])[0]
    summary = {"release": manifest["release"], "version": version, "commit": source_version.commit, "images": references}
    files.append(("release.json", deploy.release_summary(summary)))
    base = "/".join(p for p in (fields["package"], fields["name"]) if p)
    record = {"version": version, "images": references, "files": [name for name, _ in files], "status": "dry run",
              "bytes_uploaded": 0, "store": destination.text, "location": "{}/{}".format(destination.text.rstrip("/"), base)}
    store = open_store(destination, policy, environ)
    claim = channel_marker.guard_store(manifest["channel"], destination, store, lambda d: open_store(d, policy, environ),
                                       dry_run=options.dry_run)
    status, written = deploy.publish_files(store, "{}/{}".format(base, version), files, base + "/latest", version,
                                           immutable=manifest["channel"] == "ci", dry_run=options.dry_run)
    if claim:
        record["checks"] = [claim]
    record.update(status=status, bytes_uploaded=written, location=store.describe("{}/{}".format(base, version)))
    return record


def summary_line(record):
    checks = "; dry run, nothing written: {}".format("; ".join(record["checks"])) if record.get("checks") else (
        "; dry run, nothing written" if record["dry_run"] else "")
    if record["kind"] == "container" and record["dry_run"]:
        return "{} would publish {} to {} tags {} ({} to upload in {} blobs, {} blobs there already){}".format(
            record["release"], record["digest"][:19], record["repository"], ",".join(record["tags"]),
            _human_bytes(record["would_upload_bytes"]), record["would_upload_blobs"], record["blobs_skipped"], checks)
    if record["kind"] == "container":
        return "{} published {} to {} tags {} ({} uploaded, {} blobs skipped, {} mounted) in {:.2f}s".format(
            record["release"], record["digest"][:19], record["repository"], ",".join(record["tags"]),
            _human_bytes(record["bytes_uploaded"]), record["blobs_skipped"], record["blobs_mounted"],
            record["duration_seconds"],
        )
    if record["kind"] == "jar":
        return "{} {} {}:{} to {} ({} uploaded) in {:.2f}s{}".format(
            record["release"], record["status"], record["coordinates"], record["version"], record.get("location", record["store"]),
            _human_bytes(record["bytes_uploaded"]), record["duration_seconds"], checks,
        )
    if record["kind"] == "deploy":
        return "{} {} deploy version {} to {} with {} in {:.2f}s{}".format(
            record["release"], record["status"], record["version"], record["location"],
            ", ".join("{}={}".format(k, v) for k, v in sorted(record["images"].items())) or "no images",
            record["duration_seconds"], checks,
        )
    return "{} published".format(record["release"])


def _human_bytes(count):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return "{:.0f} {}".format(count, unit) if unit == "B" else "{:.1f} {}".format(count, unit)
        count /= 1024.0
