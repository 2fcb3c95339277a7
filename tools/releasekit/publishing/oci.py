"""The OCI vocabulary the image wing shares: media types, digests, where a blob's bytes live (and the request bodies
that stream and hash them), canonical JSON, and the repository and tag names a registry accepts. Standard library
only: build actions import it."""

import hashlib
import json
import re
import threading

from releasekit.core.errors import ImageError, RegistryError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
# The empty JSON blob ("{}") an artifact without content uses as its config (OCI image spec 1.1).
EMPTY_JSON = b"{}"
EMPTY_DESCRIPTOR = {"mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2}
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_REPOSITORY_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
READ_SIZE = 1 << 20


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

    def chunks(self, start=0, end=None, read_size=READ_SIZE):
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

    def new_hasher(self):
        """The hasher of one upload attempt of these bytes (shared_reads.py hashes a blob once for several)."""
        return hashlib.sha256()

    def done(self):
        """The push of this blob is over (uploaded, found, mounted or failed)."""

    def mismatch(self, digest, actual):
        """The error for bytes that hashed to `actual` instead of `digest`: the image is corrupt."""
        return ImageError(
            "Blob {} of the image does not match its digest (its content hashes to {}); the image is corrupt, so "
            "nothing was tagged. Rebuild the image.".format(digest, actual))

    def digest(self):
        hasher = hashlib.sha256()
        for chunk in self.chunks():
            hasher.update(chunk)
        return "sha256:" + hasher.hexdigest()


def verify_blob(location, descriptor, where):
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


class InlineLocation(BlobLocation):
    def __init__(self, content):
        super().__init__(None, 0, len(content))
        self.content = content

    def chunks(self, start=0, end=None, read_size=READ_SIZE):
        yield self.content[start:end]


class HashingBody:
    """A streamed request body that hashes what it sends, so a corrupt blob is caught before it is committed."""

    def __init__(self, location, start, end, hasher, counter):
        self.location, self.start, self.end = location, start, end
        self.hasher, self.counter = hasher, counter

    def __len__(self):
        return self.end - self.start

    def __iter__(self):
        for chunk in self.location.chunks(self.start, self.end):
            self.hasher.update(chunk)
            self.counter.add(len(chunk))
            yield chunk


class ByteCounter:
    """Bytes sent, added up from several upload threads."""

    def __init__(self):
        self.value = 0
        self.lock = threading.Lock()

    def add(self, amount):
        with self.lock:
            self.value += amount


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")


def check_repository(name, where="repository"):
    if not isinstance(name, str) or not _REPOSITORY_RE.match(name) or len(name) > 255:
        raise RegistryError(
            "{} '{}' is not a valid image repository: use lowercase path parts of letters and digits "
            "separated by '.', '_' or '-', joined by '/', with no '..' or empty parts.".format(where, name)
        )
    return name


def check_tag(tag):
    if not _TAG_RE.match(tag):
        raise RegistryError(
            "'{}' is not a valid image tag: up to 128 letters, digits, '_', '.' and '-', not starting "
            "with '.' or '-'.".format(tag)
        )
    return tag
