"""Publishing jars to Maven-layout stores, the way a Maven client expects to find them.

Order keeps a store from showing half a release: the pom, then each jar, each file
followed by its .md5/.sha1/.sha256/.sha512; metadata last, merged with what the store
holds. A release version is immutable: identical content is skipped, different content
refused before anything is written. Dev releases are SNAPSHOTs with timestamped names and
a build number that increments per upload.
"""

import dataclasses
import datetime
import hashlib
import logging
import os
import random
import re
import time
import xml.etree.ElementTree as ElementTree
from xml.sax.saxutils import escape

from releasekit.core.errors import ImmutableVersionError, MavenError, UsageError
from releasekit.core.errors import ConflictError

log = logging.getLogger(__name__)
CHECKSUMS = ("md5", "sha1", "sha256", "sha512")
_PART_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
MERGE_ATTEMPTS = 8


@dataclasses.dataclass(frozen=True)
class Coordinates:
    group: str
    artifact: str
    version: str = None

    @classmethod
    def parse(cls, text, where="coordinates"):
        parts = text.split(":") if isinstance(text, str) else []
        if len(parts) not in (2, 3) or not all(_PART_RE.match(p) for p in parts[:2]) or ".." in text:
            raise UsageError(
                "{} '{}' must be group:artifact or group:artifact:version (letters, digits, '.', '_', '-'; "
                "no '..').".format(where, text)
            )
        version = parts[2] if len(parts) == 3 else None
        if version is not None and not _VERSION_RE.match(version):
            raise UsageError("{} '{}': '{}' is not a valid version.".format(where, text, version))
        return cls(parts[0], parts[1], version)

    @property
    def directory(self):
        return "{}/{}".format(self.group.replace(".", "/"), self.artifact)


def file_digests(path=None, data=None):
    hashers = {name: hashlib.new(name) for name in CHECKSUMS}
    if data is not None:
        for hasher in hashers.values():
            hasher.update(data)
    else:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                for hasher in hashers.values():
                    hasher.update(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


# -- versions and metadata ----------------------------------------------------------------

def _version_key(version):
    """Maven-like ordering: numbers numerically, qualifiers before the release, SNAPSHOT lowest."""
    key = []
    for token in re.split(r"[.-]", version):
        if token.isdigit():
            key.append((2, int(token), ""))
        elif token.upper() == "SNAPSHOT":
            key.append((0, 0, ""))
        else:
            key.append((1, 0, token.lower()))
    key.append((1.5, 0, ""))  # 1.0 sorts after 1.0-rc1
    return key


def sort_versions(versions):
    return sorted(set(versions), key=_version_key)


def _text(element, path):
    found = element.find(path)
    return found.text.strip() if found is not None and found.text else None


def parse_metadata(content, where):
    if not content:
        return None
    try:
        return ElementTree.fromstring(content)
    except ElementTree.ParseError:
        raise MavenError("{} is not valid XML; repair or delete it before publishing.".format(where)) from None


def artifact_metadata(coordinates, existing_xml, new_versions, where):
    """The artifact-level maven-metadata.xml listing every version the store had plus ours."""
    versions = list(new_versions)
    root = parse_metadata(existing_xml, where)
    if root is not None:
        versions += [v.text.strip() for v in root.findall("./versioning/versions/version") if v.text]
    versions = sort_versions(versions)
    releases = [v for v in versions if not v.endswith("-SNAPSHOT")]
    parts = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "<metadata>",
             "  <groupId>{}</groupId>".format(escape(coordinates.group)),
             "  <artifactId>{}</artifactId>".format(escape(coordinates.artifact)),
             "  <versioning>", "    <latest>{}</latest>".format(escape(versions[-1]))]
    if releases:
        parts.append("    <release>{}</release>".format(escape(releases[-1])))
    parts.append("    <versions>")
    parts += ["      <version>{}</version>".format(escape(v)) for v in versions]
    parts += ["    </versions>", "    <lastUpdated>{}</lastUpdated>".format(_now().strftime("%Y%m%d%H%M%S")),
              "  </versioning>", "</metadata>", ""]
    return "\n".join(parts).encode("utf-8")


def snapshot_metadata(coordinates, version, existing_xml, timestamp, build_number, files, where):
    """The version-level maven-metadata.xml of a SNAPSHOT, with our files' snapshotVersions."""
    entries = {}
    root = parse_metadata(existing_xml, where)
    if root is not None:
        for entry in root.findall("./versioning/snapshotVersions/snapshotVersion"):
            key = (_text(entry, "classifier") or "", _text(entry, "extension") or "jar")
            entries[key] = (_text(entry, "value"), _text(entry, "updated"))
    updated = timestamp.replace(".", "")
    value = "{}-{}-{}".format(version[: -len("-SNAPSHOT")], timestamp, build_number)
    for classifier, extension in files:
        entries[(classifier, extension)] = (value, updated)
    parts = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "<metadata modelVersion=\"1.1.0\">",
             "  <groupId>{}</groupId>".format(escape(coordinates.group)),
             "  <artifactId>{}</artifactId>".format(escape(coordinates.artifact)),
             "  <version>{}</version>".format(escape(version)), "  <versioning>", "    <snapshot>",
             "      <timestamp>{}</timestamp>".format(timestamp),
             "      <buildNumber>{}</buildNumber>".format(build_number), "    </snapshot>",
             "    <lastUpdated>{}</lastUpdated>".format(updated), "    <snapshotVersions>"]
    for (classifier, extension), (entry_value, entry_updated) in sorted(entries.items()):
        parts.append("      <snapshotVersion>")
        if classifier:
            parts.append("        <classifier>{}</classifier>".format(escape(classifier)))
        parts += ["        <extension>{}</extension>".format(escape(extension)),
                  "        <value>{}</value>".format(escape(entry_value)),
                  "        <updated>{}</updated>".format(entry_updated), "      </snapshotVersion>"]
    parts += ["    </snapshotVersions>", "  </versioning>", "</metadata>", ""]
    return "\n".join(parts).encode("utf-8")


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


# -- the pom ------------------------------------------------------------------------------

DEFAULT_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>{groupId}</groupId>
  <artifactId>{artifactId}</artifactId>
  <version>{version}</version>
  <packaging>{type}</packaging>
{dependencies}</project>
"""


def render_pom(coordinates, version, dependencies, template=None):
    """dependencies: Coordinates of other jar_release targets; unversioned ones share this version."""
    lines = []
    if dependencies:
        lines.append("  <dependencies>")
        for dep in dependencies:
            lines += ["    <dependency>", "      <groupId>{}</groupId>".format(escape(dep.group)),
                      "      <artifactId>{}</artifactId>".format(escape(dep.artifact)),
                      "      <version>{}</version>".format(escape(dep.version or version)), "    </dependency>"]
        lines.append("  </dependencies>")
    block = "\n".join(lines) + ("\n" if lines else "")
    text = template if template is not None else DEFAULT_POM
    for key, value in (("{groupId}", coordinates.group), ("{artifactId}", coordinates.artifact),
                       ("{version}", version), ("{type}", "jar"), ("{dependencies}", block)):
        text = text.replace(key, escape(value) if key != "{dependencies}" else value)
    try:
        ElementTree.fromstring(text.encode("utf-8"))
    except ElementTree.ParseError as error:
        raise UsageError("The pom for {}:{} is not valid XML ({}); check pom_template.".format(
            coordinates.group, coordinates.artifact, error)) from None
    return text.encode("utf-8")


# -- publishing ---------------------------------------------------------------------------

@dataclasses.dataclass
class MavenFile:
    """One file of a release: the pom (content) or a jar (path), with its classifier."""

    extension: str
    classifier: str = ""
    path: str = None
    content: bytes = None
    _digests: dict = dataclasses.field(default=None, repr=False, compare=False)

    def digests(self):
        """Its checksums, read once: the release record names the jar's too."""
        if self._digests is None:
            self._digests = file_digests(self.path, self.content)
        return self._digests

    @property
    def size(self):
        return len(self.content) if self.content is not None else os.path.getsize(self.path)


@dataclasses.dataclass
class MavenResult:
    coordinates: str
    version: str
    store: str
    files: list
    status: str  # published, already published, completed
    bytes_uploaded: int = 0


def _file_name(coordinates, version_in_name, file):
    suffix = "-" + file.classifier if file.classifier else ""
    return "{}-{}{}.{}".format(coordinates.artifact, version_in_name, suffix, file.extension)


def _put_with_checksums(store, path, file, digests):
    if file.content is not None:
        store.put(path, file.content)
    else:
        store.put_file(path, file.path)
    for name in CHECKSUMS:
        store.put("{}.{}".format(path, name), digests[name].encode("ascii"))
    return file.size


def _put_provenance(store, path, files, names, provenance, keep_existing):
    """The release's provenance beside its files, with checksums, after them and before any metadata. provenance:
    [(file name, sha256)] -> bytes, or None. A CI version keeps the provenance it has (it names the same digests)."""
    if provenance is None or (keep_existing and store.get(path + ".sha512")[0] is not None):
        return 0
    data = provenance([(name, file.digests()["sha256"]) for name, file in zip(names, files)])
    return _put_with_checksums(store, path, MavenFile("intoto.jsonl", content=data), file_digests(data=data))


def publish_release(store, coordinates, version, files, dry_run=False, provenance=None):
    """A release version: immutable. Returns a MavenResult. A dry run checks as a run would and writes nothing."""
    if version.endswith("-SNAPSHOT"):
        raise MavenError(
            "{}:{}:{} is a SNAPSHOT; the ci channel publishes release versions. Publish SNAPSHOTs with the dev "
            "variant.".format(coordinates.group, coordinates.artifact, version)
        )
    directory = "{}/{}".format(coordinates.directory, version)
    plan, differing, present = [], [], 0
    for file in files:
        path = "{}/{}".format(directory, _file_name(coordinates, version, file))
        digests = file.digests()
        remote = _remote_sha1(store, path)
        if remote is None:
            plan.append((path, file, digests))
        elif remote == digests["sha1"]:
            present += 1
            if store.get(path + ".sha512")[0] is None:
                plan.append((path, file, digests))  # its checksum files were cut short: write them again
        else:
            differing.append(path)
    if differing:
        raise ImmutableVersionError(
            "{}:{}:{} is already published with different content ({}); release versions are immutable, so "
            "nothing was written. Publish a new version.".format(
                coordinates.group, coordinates.artifact, version, ", ".join(store.describe(p) for p in differing))
        )
    if dry_run:
        status = "would publish" if plan else "already published"
        return MavenResult("{}:{}".format(coordinates.group, coordinates.artifact), version, store.describe(directory),
                           [p for p, _, _ in plan], status, 0)
    uploaded = 0
    for path, file, digests in plan:
        uploaded += _put_with_checksums(store, path, file, digests)
    attestation = "{}/{}-{}.intoto.jsonl".format(directory, coordinates.artifact, version)
    written = _put_provenance(store, attestation, files, [_file_name(coordinates, version, f) for f in files],
                              provenance, keep_existing=True)
    plan += [(attestation, None, None)] if written else []
    uploaded += written
    merge_metadata(store, coordinates.directory + "/maven-metadata.xml",
                   lambda existing: artifact_metadata(coordinates, existing, [version],
                                                      store.describe(coordinates.directory)),
                   lambda content: version in listed_versions(content, "maven-metadata.xml"))
    status = "published" if not present else ("already published" if not plan else "completed")
    return MavenResult("{}:{}".format(coordinates.group, coordinates.artifact), version, store.describe(directory),
                       [p for p, _, _ in plan], status, uploaded)


def publish_snapshot(store, coordinates, version, files, dry_run=False, provenance=None):
    """A SNAPSHOT: timestamped names and the next build number, under the version directory's lock."""
    if not version.endswith("-SNAPSHOT"):
        version += "-SNAPSHOT"
    directory = "{}/{}".format(coordinates.directory, version)
    metadata_path = directory + "/maven-metadata.xml"
    if dry_run:  # reads what a run would read first: the store answers, and its metadata parses
        existing, _ = store.get(metadata_path)
        parse_metadata(existing, store.describe(metadata_path))
        return MavenResult("{}:{}".format(coordinates.group, coordinates.artifact), version, store.describe(directory),
                           [], "would publish", 0)
    uploaded, written = 0, []
    with store.lock(directory):
        existing, _ = store.get(metadata_path)
        root = parse_metadata(existing, store.describe(metadata_path))
        build_number = int(_text(root, "./versioning/snapshot/buildNumber") or 0) + 1 if root is not None else 1
        timestamp = _now().strftime("%Y%m%d.%H%M%S")
        name_version = "{}-{}-{}".format(version[: -len("-SNAPSHOT")], timestamp, build_number)
        for file in files:
            path = "{}/{}".format(directory, _file_name(coordinates, name_version, file))
            uploaded += _put_with_checksums(store, path, file, file.digests())
            written.append(path)
        signed = "{}/{}-{}.intoto.jsonl".format(directory, coordinates.artifact, name_version)
        uploaded += _put_provenance(store, signed, files, [_file_name(coordinates, name_version, f) for f in files],
                                    provenance, False)
        content = snapshot_metadata(coordinates, version, existing, timestamp, build_number,
                                    [(f.classifier, f.extension) for f in files], store.describe(metadata_path))
        _put_with_checksums(store, metadata_path, MavenFile("xml", content=content), file_digests(data=content))
    merge_metadata(store, coordinates.directory + "/maven-metadata.xml",
                   lambda existing: artifact_metadata(coordinates, existing, [version],
                                                      store.describe(coordinates.directory)),
                   lambda content: version in listed_versions(content, "maven-metadata.xml"))
    return MavenResult("{}:{}".format(coordinates.group, coordinates.artifact), name_version,
                       store.describe(directory), written, "published", uploaded)


def merge_metadata(store, path, merge, contains_ours):
    """Read-merge-write that never loses another job's version.

    Conditional writes where the store honours them, under the directory's lock where it has one, and a
    read-back check in every case: if another writer's merge replaced ours, merge again.
    """
    directory = path.rsplit("/", 1)[0]
    for attempt in range(MERGE_ATTEMPTS):
        with store.lock(directory):
            existing, version_tag = store.get(path)
            content = merge(existing)
            try:
                _put_with_checksums_conditional(store, path, content, version_tag, existing is None)
            except ConflictError:
                log.info("maven-metadata.xml changed under us; merging again")
                time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
                continue
        time.sleep(random.uniform(0.0, 0.05))
        after, _ = store.get(path)
        if after is not None and contains_ours(after):
            return
        time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
    raise MavenError("Could not merge {} after {} attempts: other releases keep rewriting it.".format(
        store.describe(path), MERGE_ATTEMPTS))


def _put_with_checksums_conditional(store, path, content, version_tag, create):
    store.put(path, content, if_match=None if create else version_tag, if_none_match=create)
    digests = file_digests(data=content)
    for name in CHECKSUMS:
        store.put("{}.{}".format(path, name), digests[name].encode("ascii"))


def listed_versions(content, where):
    """The versions an artifact's maven-metadata.xml lists (none when there is none)."""
    root = parse_metadata(content, where)
    return set() if root is None else {v.text.strip() for v in root.findall("./versioning/versions/version") if v.text}


def _remote_sha1(store, path):
    """The sha1 of a file in the store, from its .sha1 or, when that is missing, from the file itself."""
    checksum, _ = store.get(path + ".sha1")
    if checksum:
        return checksum.decode("ascii", "replace").split()[0].strip().lower()
    content, _ = store.get(path)
    return hashlib.sha1(content).hexdigest() if content is not None else None


def check_jars(paths, label, out):
    """The jar-check build action: every jar is a readable zip; writes what it checked."""
    import zipfile

    from releasekit.core.jsonio import write_json_atomic

    checked = []
    for path in paths:
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as error:
            raise UsageError("{}: {} is not a readable jar ({}). Rebuild it.".format(
                label, os.path.basename(path), error)) from None
        checked.append({"jar": os.path.basename(path), "entries": len(names)})
    write_json_atomic(out, {"label": label, "jars": checked})
