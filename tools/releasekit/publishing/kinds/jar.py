"""Jars: a pom, the jar and its classified jars, in Maven layout, to the channel's Maven store, then their signed
provenance (`<artifact>-<version>.intoto.jsonl`, with checksums) before the metadata. A CI release's group:artifact must
be its own (ownership.py), and the versions its pom names published (jar_dependencies.py)."""

import os

from releasekit.core.errors import UsageError
from releasekit.core.versioning import release_version_setting
from releasekit.publishing import jar_dependencies, maven, ownership, provenance
from releasekit.publishing.kinds import ArtifactKind, dry_run_note, human_bytes


class JarKind(ArtifactKind):
    name = "jar"

    def publish(self, release):
        jar, manifest = release.fields, release.manifest
        coordinates = maven.Coordinates.parse(jar["coordinates"], "{} coordinates".format(manifest.release))
        version = release_version(manifest, coordinates, release.environ)
        destination = release.destination("maven")
        template = None
        if jar.get("pom_template"):
            with open(release.runfile(jar["pom_template"]), encoding="utf-8") as handle:
                template = handle.read()
        dependencies = [maven.Coordinates.parse(d, "a dependency of " + manifest.release) for d in jar.get("deps", [])]
        pom = maven.render_pom(coordinates, version, dependencies, template)
        files = [maven.MavenFile("pom", content=pom), maven.MavenFile("jar", path=release.runfile(jar["jar"]))]
        if jar.get("sources_jar"):
            files.append(maven.MavenFile("jar", "sources", path=release.runfile(jar["sources_jar"])))
        for classifier, path in sorted(jar.get("classifier_jars", {}).items()):
            files.append(maven.MavenFile("jar", classifier, path=release.runfile(path)))
        for file in files:
            if file.path and not os.path.isfile(file.path):
                raise UsageError("{}: {} does not exist; rebuild the release target.".format(manifest.release,
                                                                                             file.path))
        record = {"coordinates": "{}:{}".format(coordinates.group, coordinates.artifact), "version": version,
                  "store": destination.text, "files": [], "status": "dry run", "bytes_uploaded": 0}
        store = release.open_store(destination)
        # Before anything is written: a pom names only versions the store holds.
        unpublished = jar_dependencies.check(store, manifest, dependencies, version, release.dry_run)
        claim = release.guard_store(destination, store)
        owner = ownership.claim_store(store, coordinates.directory, manifest.release, "Maven artifact",
                                      release.dry_run) if manifest.channel == "ci" else None
        publisher = maven.publish_release if manifest.channel == "ci" else maven.publish_snapshot

        def signed(named):  # [(file name, sha256)]: the provenance written beside them, before the metadata
            made = provenance.make(release, [provenance.subject(name, digest) for name, digest in named],
                                   destination.text)
            record["provenance"] = made.record(store.describe("{}/{}".format(coordinates.directory, version)))
            return made.data

        result = publisher(store, coordinates, version, files, dry_run=release.dry_run,
                           provenance=signed if provenance.enabled(release) else None)
        if claim or owner or unpublished:
            record["checks"] = [c for c in (claim, owner, unpublished) if c]
        record.update(version=result.version, files=result.files, status=result.status,
                      bytes_uploaded=result.bytes_uploaded, location=result.store, sha256=files[1].digests()["sha256"])
        return record

    def summary(self, record):
        return "{} {} {}:{} to {} ({} uploaded) in {:.2f}s{}".format(
            record["release"], record["status"], record["coordinates"], record["version"],
            record.get("location", record["store"]), human_bytes(record["bytes_uploaded"]), record["duration_seconds"],
            dry_run_note(record))


def release_version(manifest, coordinates, environ):
    """The version a jar is published as: from its coordinates, else the release version setting; dev adds
    -SNAPSHOT."""
    version = coordinates.version or release_version_setting(environ)
    if manifest.channel == "ci":
        if not version:
            from releasekit.core.environment import VERSION

            raise UsageError(
                "{} has no version: give coordinates as group:artifact:version, or set {} for the release.".format(
                    manifest.release, VERSION))
        return version
    version = version or "0.0.0"
    return version if version.endswith("-SNAPSHOT") else version + "-SNAPSHOT"
