"""Image inputs: OCI image layouts and docker-save tarballs, read without a Docker engine.

Both are turned into one *image plan* (JSON) at build time: the blobs to upload with
where their bytes live (file and offset), and the manifests to put after them,
children first, the root last. The publisher needs nothing else. Standard library
only: build actions run this with a bare python3.
"""

import gzip
import hashlib
import json
import os
import re
import tarfile
import tempfile

from releasekit.core.errors import ImageError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
PLAN_SCHEMA_VERSION = 2
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_READ_SIZE = 1 << 20


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest, where):
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise ImageError("{}: '{}' is not a sha256 digest (sha256:<64 hex>).".format(where, digest))
    return digest


class BlobLocation:
    """Bytes of one blob inside a file: the whole file, or a slice of a tarball."""

    def __init__(self, path, offset, size):
        self.path, self.offset, self.size = path, offset, size

    def chunks(self, start=0, end=None, read_size=_READ_SIZE):
        end = self.size if end is None else end
        with open(self.path, "rb") as handle:
            handle.seek(self.offset + start)
            remaining = end - start
            while remaining > 0:
                chunk = handle.read(min(read_size, remaining))
                if not chunk:
                    raise ImageError("{}: file ended {} bytes early.".format(self.path, remaining))
                remaining -= len(chunk)
                yield chunk

    def digest(self):
        hasher = hashlib.sha256()
        for chunk in self.chunks():
            hasher.update(chunk)
        return "sha256:" + hasher.hexdigest()


def _verify(location, descriptor, where):
    if location.size != descriptor.get("size"):
        raise ImageError(
            "{}: blob {} has {} bytes but its descriptor says {}; the image is corrupt or "
            "truncated. Rebuild it.".format(where, descriptor["digest"], location.size, descriptor.get("size"))
        )
    actual = location.digest()
    if actual != descriptor["digest"]:
        raise ImageError(
            "{}: blob {} does not match its digest (its content hashes to {}); the image is "
            "corrupt. Rebuild it.".format(where, descriptor["digest"], actual)
        )


class _Reader:
    """Common plan building over a source of named files."""

    format = None

    def __init__(self, path, display):
        self.path = path
        self.display = display
        self.blobs = {}
        self.manifests = []
        self.generated = {}

    def read_json(self, data, what):
        try:
            return json.loads(data)
        except ValueError as error:
            raise ImageError("{}: {} is not valid JSON ({}).".format(self.display, what, error)) from None

    def blob_location(self, digest):
        raise NotImplementedError

    def add_manifest(self, descriptor, verify):
        digest = check_digest(descriptor.get("digest"), self.display)
        location = self.blob_location(digest)
        if location is None:
            raise ImageError("{}: manifest {} is missing from the image.".format(self.display, digest))
        if verify:
            _verify(location, descriptor, self.display)
        content = b"".join(location.chunks())
        manifest = self.read_json(content, "manifest " + digest)
        media_type = descriptor.get("mediaType") or manifest.get("mediaType")
        if media_type in INDEX_TYPES:
            for child in manifest.get("manifests", []):
                self.add_manifest(child, verify)
        elif media_type in MANIFEST_TYPES or "config" in manifest:
            for blob in [manifest.get("config")] + list(manifest.get("layers", [])):
                self.add_blob(blob, verify)
            media_type = media_type or OCI_MANIFEST
        else:
            raise ImageError("{}: manifest {} has unknown media type '{}'.".format(self.display, digest, media_type))
        self.manifests.append(
            {"digest": digest, "mediaType": media_type, "size": len(content), "location": self.describe(location)}
        )

    def add_blob(self, descriptor, verify):
        if not isinstance(descriptor, dict):
            raise ImageError("{}: a manifest has a malformed blob descriptor.".format(self.display))
        digest = check_digest(descriptor.get("digest"), self.display)
        if not isinstance(descriptor.get("size"), int) or descriptor["size"] < 0:
            raise ImageError("{}: blob {} has no valid size in its descriptor.".format(self.display, digest))
        if digest in self.blobs:
            return
        location = self.blob_location(digest)
        if location is None:
            raise ImageError(
                "{}: blob {} is referenced by a manifest but missing from the image.".format(self.display, digest)
            )
        if verify:
            _verify(location, descriptor, self.display)
        self.blobs[digest] = {
            "digest": digest,
            "size": descriptor["size"],
            "mediaType": descriptor.get("mediaType", ""),
            "location": self.describe(location),
        }

    def add_root(self, index, verify):
        """The image an index.json names: one manifest (however many tags name it), or its platforms as one index."""
        entries = []
        for entry in index.get("manifests") or []:
            if not isinstance(entry, dict):
                raise ImageError("{}: index.json has a malformed entry.".format(self.display))
            if entry.get("digest") not in [e.get("digest") for e in entries]:
                entries.append(entry)
        if len(entries) == 1:
            self.add_manifest(entries[0], verify)
            return
        if not entries:
            raise ImageError("{}: index.json lists no image; rebuild the image.".format(self.display))
        if all(isinstance(e.get("platform"), dict) and e.get("mediaType") in MANIFEST_TYPES for e in entries):
            # A flat multi-platform layout (skopeo copy --all, buildah manifest push): published as one image index.
            for entry in entries:
                self.add_manifest(entry, verify)
            children = [{k: e[k] for k in ("mediaType", "digest", "size", "platform") if k in e} for e in entries]
            content = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})
            digest = sha256_digest(content)
            self.generated[digest] = InlineLocation(content)
            self.add_manifest({"digest": digest, "mediaType": OCI_INDEX, "size": len(content)}, verify=False)
            return
        names = [(e.get("annotations") or {}).get("org.opencontainers.image.ref.name") or e.get("digest", "?")[:19]
                 for e in entries]
        raise ImageError(
            "{}: index.json lists {} different images ({}); a release publishes one image. Keep one of them "
            "(skopeo copy oci:LAYOUT:TAG oci:NEW_LAYOUT), or give each a platform so they form one multi-platform "
            "image.".format(self.display, len(entries), ", ".join(names))
        )

    def describe(self, location):
        if isinstance(location, InlineLocation):
            return {"content": location.content.decode("utf-8")}
        return {"offset": location.offset, "file": os.path.relpath(location.path, self.path) if self.format == "oci-layout" else ""}

    def plan(self, root, source_path):
        return {
            "schema_version": PLAN_SCHEMA_VERSION,
            "format": self.format,
            "source": source_path,
            "source_fingerprint": self.source_fingerprint(),
            "root": root,
            "blobs": sorted(self.blobs.values(), key=lambda b: b["digest"]),
            "manifests": self.manifests,
        }


class _LayoutReader(_Reader):
    format = "oci-layout"

    def blob_location(self, digest):
        if digest in self.generated:
            return self.generated[digest]
        path = os.path.join(self.path, "blobs", "sha256", digest.split(":", 1)[1])
        if not os.path.isfile(path):
            return None
        return BlobLocation(path, 0, os.path.getsize(path))

    def build(self, source_path, verify):
        if not os.path.isfile(os.path.join(self.path, "oci-layout")):
            raise ImageError(
                "{} is not an OCI image layout (no oci-layout file). Give a directory made by oci_image "
                "or image_layout, or a docker-save .tar.".format(self.display)
            )
        try:
            with open(os.path.join(self.path, "index.json"), "rb") as handle:
                index = self.read_json(handle.read(), "index.json")
        except FileNotFoundError:
            raise ImageError("{}: the OCI layout has no index.json; rebuild the image.".format(self.display)) from None
        self.add_root(index, verify)
        root = self.manifests[-1]
        return self.plan({k: root[k] for k in ("digest", "mediaType", "size")}, source_path)

    def source_fingerprint(self):
        """Digest of index.json: what names the image, checked again when the release runs."""
        try:
            with open(os.path.join(self.path, "index.json"), "rb") as handle:
                return sha256_digest(handle.read())
        except OSError:
            return None


class _ArchiveReader(_Reader):
    """docker save / oci_load tarballs: a manifest.json over config and layer files."""

    format = "docker-archive"

    def __init__(self, path, display, layers_dir=None):
        super().__init__(path, display)
        self.layers_dir = layers_dir  # where uncompressed layers are written compressed; None: pushed as they are
        self.compressed_layers = []
        try:
            self.tar = tarfile.open(path, "r:")
        except (tarfile.TarError, OSError) as error:
            raise ImageError(
                "{} is not a docker-save tarball ({}). Give an uncompressed .tar from docker save, "
                "oci_load or container_image.".format(display, error)
            ) from None
        self.members = {}
        for member in self.tar.getmembers():
            self.members[os.path.normpath(member.name)] = member

    def member(self, name):
        member = self.members.get(os.path.normpath(name))
        seen = 0
        while member is not None and (member.issym() or member.islnk()) and seen < 8:
            target = member.linkname if member.islnk() else os.path.join(os.path.dirname(member.name), member.linkname)
            member = self.members.get(os.path.normpath(target))
            seen += 1
        return member if member is not None and member.isfile() else None

    def member_location(self, name):
        member = self.member(name)
        return None if member is None else BlobLocation(self.path, member.offset_data, member.size)

    def blob_location(self, digest):
        if digest in self.generated:
            return self.generated[digest]
        return self.member_location("blobs/sha256/" + digest.split(":", 1)[1])

    def describe(self, location):
        if isinstance(location, InlineLocation):
            return {"content": location.content.decode("utf-8")}
        if location.path != self.path:
            return {"offset": 0, "layers_file": os.path.basename(location.path)}
        return {"offset": location.offset, "file": ""}

    def plan(self, root, source_path):
        plan = super().plan(root, source_path)
        if self.compressed_layers:
            plan["compressed_layers"] = self.compressed_layers
        return plan

    def _compress(self, location):
        """The layer gzip-compressed into layers_dir, deterministically (no name, mtime 0), as docker push does."""
        os.makedirs(self.layers_dir, exist_ok=True)
        uncompressed = hashlib.sha256()
        with tempfile.NamedTemporaryFile(dir=self.layers_dir, delete=False) as raw:
            with gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=raw, mtime=0) as compressor:
                for chunk in location.chunks():
                    uncompressed.update(chunk)
                    compressor.write(chunk)
        compressed = BlobLocation(raw.name, 0, os.path.getsize(raw.name))
        digest = compressed.digest()
        final = os.path.join(self.layers_dir, digest.split(":", 1)[1])
        os.replace(raw.name, final)
        self.compressed_layers.append({"uncompressed": "sha256:" + uncompressed.hexdigest(), "compressed": digest})
        return BlobLocation(final, 0, compressed.size), OCI_LAYER + "+gzip"

    def source_fingerprint(self):
        """Digest of what names the image in the archive (index.json or manifest.json), checked again at run time."""
        for name in ("index.json", "manifest.json"):
            location = self.member_location(name)
            if location is not None:
                return sha256_digest(b"".join(location.chunks()))
        return None

    def build(self, source_path, verify):
        if self.member("index.json") is not None and self.member("oci-layout") is not None:
            index = self.read_json(b"".join(self.member_location("index.json").chunks()), "index.json")
            self.add_root(index, verify)
        else:
            self._build_from_docker_manifest(verify)
        root = self.manifests[-1]
        return self.plan({k: root[k] for k in ("digest", "mediaType", "size")}, source_path)

    def _build_from_docker_manifest(self, verify):
        location = self.member_location("manifest.json")
        if location is None:
            raise ImageError(
                "{} has no manifest.json, so it is not a docker-save tarball. Give the .tar that docker "
                "save, oci_load or container_image writes.".format(self.display)
            )
        entries = self.read_json(b"".join(location.chunks()), "manifest.json")
        if not isinstance(entries, list) or len(entries) != 1:
            raise ImageError(
                "{}: manifest.json must describe exactly one image, found {}.".format(
                    self.display, len(entries) if isinstance(entries, list) else "none"
                )
            )
        entry = entries[0]
        config_location = self.member_location(entry.get("Config", ""))
        if config_location is None:
            raise ImageError("{}: the config file '{}' is missing.".format(self.display, entry.get("Config")))
        layers = []
        for name in entry.get("Layers") or []:
            layer_location = self.member_location(name)
            if layer_location is None:
                raise ImageError("{}: the layer file '{}' is missing.".format(self.display, name))
            media_type = _layer_media_type(layer_location)
            if media_type == OCI_LAYER and self.layers_dir:
                layer_location, media_type = self._compress(layer_location)
            layers.append((layer_location, media_type))
        config = {"mediaType": OCI_CONFIG, "digest": config_location.digest(), "size": config_location.size}
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": [
                {"mediaType": media_type, "digest": loc.digest(), "size": loc.size} for loc, media_type in layers
            ],
        }
        self._register(config["digest"], config_location)
        for (loc, _), descriptor in zip(layers, manifest["layers"]):
            self._register(descriptor["digest"], loc)
        content = canonical_json(manifest)
        digest = sha256_digest(content)
        self.generated[digest] = InlineLocation(content)
        # Digests were just computed from the bytes, so there is nothing left to verify.
        self.add_manifest({"digest": digest, "mediaType": OCI_MANIFEST, "size": len(content)}, verify=False)

    def _register(self, digest, location):
        self.generated.setdefault(digest, location)


class InlineLocation(BlobLocation):
    def __init__(self, content):
        super().__init__(None, 0, len(content))
        self.content = content

    def chunks(self, start=0, end=None, read_size=_READ_SIZE):
        yield self.content[start:end]


def _layer_media_type(location):
    head = next(location.chunks(0, min(4, location.size)), b"")
    if head[:2] == b"\x1f\x8b":
        return OCI_LAYER + "+gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return OCI_LAYER + "+zstd"
    return OCI_LAYER


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")


def build_plan(image_path, source_path=None, display=None, verify=True, layers_dir=None):
    """Inspect an image input and return its plan. source_path is how the publisher will find it.

    layers_dir: where a docker-save tarball's uncompressed layers are written gzip-compressed (the plan then
    names them there, and lists both digests of each under compressed_layers).
    """
    display = display or image_path
    source_path = source_path or image_path
    if os.path.isdir(image_path):
        return _LayoutReader(image_path, display).build(source_path, verify)
    if os.path.isfile(image_path):
        return _ArchiveReader(image_path, display, layers_dir).build(source_path, verify)
    raise ImageError("{} does not exist.".format(display))


class ImagePlan:
    """A plan loaded by the publisher, with the image input found at its run-time path."""

    def __init__(self, data, image_path, layers_path=None):
        self.data = data
        self.image_path = image_path
        self.layers_path = layers_path
        self.root = data["root"]

    @classmethod
    def load(cls, plan_path, image_path, layers_path=None):
        try:
            with open(plan_path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            raise ImageError(
                "{}: the image plan is missing at run time; run the release with `bazel run` or from its runfiles "
                "tree (--runfiles), after `bazel build`.".format(plan_path)) from None
        except ValueError:
            raise ImageError("{}: the image plan is not valid JSON; rebuild the release target.".format(plan_path)) from None
        if data.get("schema_version") != PLAN_SCHEMA_VERSION:
            raise ImageError("{}: unsupported image plan version; rebuild the release target.".format(plan_path))
        if not os.path.exists(image_path):
            raise ImageError(
                "{}: the image input is missing at run time; run the release with `bazel run` or from its "
                "runfiles tree.".format(image_path)
            )
        return cls(data, image_path, layers_path)

    def check_unchanged(self, target):
        """Refuse, before any request, an image input that is no longer the one the build checked.

        Bazel does not track the files inside a source directory, and anything may rewrite a file after the
        build: the publisher reads again what names the image, and every manifest, against the plan.
        """
        reader = _LayoutReader if self.data["format"] == "oci-layout" else _ArchiveReader
        display = "{} (image {})".format(target, self.image_path)
        now = reader(self.image_path, display)
        fingerprint = now.source_fingerprint() if os.path.exists(self.image_path) else None
        if fingerprint != self.data.get("source_fingerprint"):
            try:
                if reader is _LayoutReader:
                    names = "its index.json now names {}".format(now.build(self.data["source"], verify=False)["root"]["digest"])
                else:
                    names = "the archive's manifest changed"
            except ImageError as error:
                names = "it no longer reads as that image ({})".format(error)
            raise ImageError(
                "{}: the image input changed after the build: the build checked {}, but {}. Nothing was published. "
                "Build the release again (bazel run rebuilds it); if the image is a directory in the source tree, "
                "list its files (filegroup(srcs = glob([\"DIR/**\"]))) so Bazel tracks them.".format(
                    target, self.root["digest"], names)
            )
        for manifest in self.manifests:
            content = self.manifest_bytes(manifest)
            if sha256_digest(content) != manifest["digest"]:
                raise ImageError(
                    "{}: manifest {} of the image changed after the build (its bytes no longer match their digest). "
                    "Nothing was published; build the release again.".format(target, manifest["digest"]))

    @property
    def blobs(self):
        return self.data["blobs"]

    @property
    def manifests(self):
        return self.data["manifests"]

    def location(self, entry):
        where = entry["location"]
        if "content" in where:
            return InlineLocation(where["content"].encode("utf-8"))
        if "layers_file" in where:
            return BlobLocation(os.path.join(self.layers_path or "", where["layers_file"]), 0, entry["size"])
        path = os.path.join(self.image_path, where["file"]) if where["file"] else self.image_path
        return BlobLocation(path, where["offset"], entry["size"])

    def manifest_bytes(self, entry):
        try:
            return b"".join(self.location(entry).chunks())
        except OSError as error:
            raise ImageError("{}: manifest {} cannot be read ({}); build the release again.".format(
                self.image_path, entry["digest"], error.strerror)) from None
