"""Image inputs: OCI image layouts and docker-save tarballs, read without a Docker engine.

Both are turned into one *image plan* (JSON) at build time: the blobs to upload with
where their bytes live (file and offset), and the manifests to put after them,
children first, the root last, each with its bytes (`data`, base64, as an OCI
descriptor embeds them). The publisher needs nothing else: a release whose image
stayed in Bazel's remote cache streams the blobs from there by digest (a tarball's
blobs by the tarball's own digest, `source_digest`, and their offsets). Standard
library only: build actions run this with a bare python3.
"""

import base64
import gzip
import hashlib
import json
import os
import tarfile

from releasekit.core.errors import ImageError
from releasekit.core.jsonio import staged
from releasekit.publishing.oci import (INDEX_TYPES, MANIFEST_TYPES, OCI_CONFIG, OCI_INDEX,
                                       OCI_LAYER, OCI_MANIFEST, BlobLocation, InlineLocation, canonical_json,
                                       check_digest,
                                       sha256_digest, verify_blob)

PLAN_SCHEMA_VERSION = 3


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
            verify_blob(location, descriptor, self.display)
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
            {"digest": digest, "mediaType": media_type, "size": len(content), "location": self.describe(location),
             "data": base64.b64encode(content).decode("ascii")}
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
            verify_blob(location, descriptor, self.display)
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
        return {"offset": location.offset,
                "file": os.path.relpath(location.path, self.path) if self.format == "oci-layout" else ""}

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


class LayoutReader(_Reader):
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


class ArchiveReader(_Reader):
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
        # What the remote cache keeps the tarball under: its blobs are read from there at their offsets.
        plan["source_digest"] = BlobLocation(self.path, 0, os.path.getsize(self.path)).digest()
        plan["source_size"] = os.path.getsize(self.path)
        if self.compressed_layers:
            plan["compressed_layers"] = self.compressed_layers
        return plan

    def _compress(self, location):
        """The layer gzip-compressed into layers_dir, deterministically (no name, mtime 0), as docker push does."""
        uncompressed = hashlib.sha256()
        with staged(self.layers_dir) as (raw, tmp):
            with gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=raw, mtime=0) as compressor:
                for chunk in location.chunks():
                    uncompressed.update(chunk)
                    compressor.write(chunk)
            raw.close()
            compressed = BlobLocation(tmp, 0, os.path.getsize(tmp))
            digest = compressed.digest()
            final = os.path.join(self.layers_dir, digest.split(":", 1)[1])
            os.replace(tmp, final)
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


def _layer_media_type(location):
    head = next(location.chunks(0, min(4, location.size)), b"")
    if head[:2] == b"\x1f\x8b":
        return OCI_LAYER + "+gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return OCI_LAYER + "+zstd"
    return OCI_LAYER


def build_plan(image_path, source_path=None, display=None, verify=True, layers_dir=None):
    """Inspect an image input and return its plan. source_path is how the publisher will find it.

    layers_dir: where a docker-save tarball's uncompressed layers are written gzip-compressed (the plan then
    names them there, and lists both digests of each under compressed_layers).
    """
    display = display or image_path
    source_path = source_path or image_path
    if os.path.isdir(image_path):
        return LayoutReader(image_path, display).build(source_path, verify)
    if os.path.isfile(image_path):
        return ArchiveReader(image_path, display, layers_dir).build(source_path, verify)
    raise ImageError("{} does not exist.".format(display))


def write_plan(image, image_rlocation, display, out, layers_out=None):
    """The image-plan build action: check an image input and write its plan (and a tarball's layers, compressed)."""
    from releasekit.core.jsonio import write_json_atomic

    if layers_out:
        os.makedirs(layers_out, exist_ok=True)  # a Bazel tree artifact: it exists even when empty
    write_json_atomic(out, build_plan(image, source_path=image_rlocation, display=display, layers_dir=layers_out))
