"""The image plan at run time: what the build checked (blobs, where their bytes live, manifests), read back and
checked again against the image input before the first request. A blob that is not on this machine (the build left
it in Bazel's remote cache) is streamed from the cache by its digest when the release knows the cache
(remote_cache.py)."""

import base64
import json
import os

from releasekit.core.errors import ImageError
from releasekit.publishing.image import PLAN_SCHEMA_VERSION, ArchiveReader, LayoutReader
from releasekit.publishing.oci import BlobLocation, InlineLocation, sha256_digest


class ImagePlan:
    """A plan loaded by the publisher, with the image input found at its run-time path."""

    def __init__(self, data, image_path, layers_path=None, cache=None):
        self.data = data
        self.image_path = image_path
        self.layers_path = layers_path
        self.cache = cache  # a remote_cache.CacheReader, or None: every blob is read from disk
        self.root = data["root"]

    @classmethod
    def load(cls, plan_path, image_path, layers_path=None, cache=None):
        try:
            with open(plan_path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            raise ImageError(
                "{}: the image plan is missing at run time; run the release with `bazel run` or from its runfiles "
                "tree (--runfiles), after `bazel build`.".format(plan_path)) from None
        except ValueError:
            raise ImageError("{}: the image plan is not valid JSON; rebuild the release target.".format(
                plan_path)) from None
        if data.get("schema_version") != PLAN_SCHEMA_VERSION:
            raise ImageError("{}: unsupported image plan version; rebuild the release target.".format(plan_path))
        if not os.path.exists(image_path) and cache is None:
            raise ImageError(
                "{}: the image input is missing at run time; run the release with `bazel run` or from its "
                "runfiles tree.".format(image_path)
            )
        return cls(data, image_path, layers_path, cache)

    @property
    def is_here(self):
        """Whether the image input is on this machine (not left in the remote cache by the build)."""
        if self.data["format"] == "oci-layout":
            return os.path.isfile(os.path.join(self.image_path, "index.json"))
        return os.path.isfile(self.image_path)

    def check_unchanged(self, target):
        """Refuse, before any request, an image input that is no longer the one the build checked.

        Bazel does not track the files inside a source directory, and anything may rewrite a file after the
        build: the publisher reads again what names the image, and every manifest, against the plan. An image the
        build left in the remote cache is not here to change: its blobs are checked against their digests as they
        stream.
        """
        if not self.is_here and self.cache is not None:
            return
        if not self.is_here and os.path.lexists(self.image_path):  # Bazel linked or made it, and left its bytes away
            raise ImageError(
                "{}: the image is not on this machine (nothing at {}): the build left it in Bazel's remote cache "
                "(--remote_download_minimal). Run the release through releasekit dispatch or ci, which stream it from "
                "the cache, or build it here with --remote_download_outputs=all. Nothing was published.".format(
                    target, self.image_path))
        reader = LayoutReader if self.data["format"] == "oci-layout" else ArchiveReader
        display = "{} (image {})".format(target, self.image_path)
        now = reader(self.image_path, display)
        fingerprint = now.source_fingerprint() if os.path.exists(self.image_path) else None
        if fingerprint != self.data.get("source_fingerprint"):
            try:
                if reader is LayoutReader:
                    root = now.build(self.data["source"], verify=False)["root"]
                    names = "its index.json now names {}".format(root["digest"])
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
            content = self._bytes_here(manifest)
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
        """Where a blob's bytes are: in a file here, or, when the file is not here, in the remote cache."""
        where = entry["location"]
        if "content" in where:
            return InlineLocation(where["content"].encode("utf-8"))
        key_size = entry["size"]  # a gRPC cache names an entry by its digest and size
        if "layers_file" in where:
            path, key, offset = os.path.join(self.layers_path or "", where["layers_file"]), entry["digest"], 0
        elif where["file"]:  # an image layout keeps each blob in a file of its own, named by its digest
            path, key, offset = os.path.join(self.image_path, where["file"]), entry["digest"], where["offset"]
        else:  # a slice of a tarball, which the cache keeps whole
            path, key, offset = self.image_path, self.data.get("source_digest"), where["offset"]
            key_size = self.data.get("source_size")
        if os.path.isfile(path):
            return BlobLocation(path, offset, entry["size"])
        if self.cache is not None and key:
            return self.cache.location(key, offset, entry["size"], entry["digest"], key_size)
        return _NotHere(path, offset, entry["size"], entry["digest"])

    def manifest_bytes(self, entry):
        if "data" in entry:  # the bytes the build checked, carried in the plan
            return base64.b64decode(entry["data"])
        return self._bytes_here(entry)

    def _bytes_here(self, entry):
        try:
            return b"".join(self.location(entry).chunks())
        except OSError as error:
            raise ImageError("{}: manifest {} cannot be read ({}); build the release again.".format(
                self.image_path, entry["digest"], error.strerror)) from None


class _NotHere(BlobLocation):
    """A blob whose file the build did not bring here, with no remote cache to read it from: an error once read."""

    def __init__(self, path, offset, size, digest):
        super().__init__(path, offset, size)
        self.blob_digest = digest

    def chunks(self, start=0, end=None, read_size=None):
        raise ImageError(
            "blob {} of the image is not on this machine ({} is missing): the build left it in Bazel's remote cache "
            "(--remote_download_minimal). Run the release through releasekit dispatch or ci, which stream it from the "
            "cache, or build it here with --remote_download_outputs=all. Nothing was tagged.".format(
                self.blob_digest, self.path))
        yield b""  # a generator, as chunks() of every location
