"""The image plan at run time: what the build checked (blobs, where their bytes live, manifests), read back and
checked again against the image input before the first request."""

import json
import os

from releasekit.core.errors import ImageError
from releasekit.publishing.image import PLAN_SCHEMA_VERSION, ArchiveReader, LayoutReader
from releasekit.publishing.oci import BlobLocation, InlineLocation, sha256_digest


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
            raise ImageError("{}: the image plan is not valid JSON; rebuild the release target.".format(
                plan_path)) from None
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
