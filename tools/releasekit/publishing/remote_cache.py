"""Bazel's remote cache as the source of an image's blobs: lazy push.

A CI agent that builds under `--remote_download_minimal` leaves the image's layers in the remote cache. Its blobs
are stored there under their SHA-256, the same digest the OCI image names them by (an image layout keeps each blob
in a file of its own), so the publisher streams each blob the registry lacks straight from the cache's CAS
(`GET <cache>/cas/<sha256>`) into the registry's upload, hashing it as it goes and writing nothing to disk. A blob
inside a docker-save tarball is read with a ranged GET of the tarball's own entry. A blob the registry has, or can
mount, is neither downloaded nor uploaded.

The cache, and what the build sent it (headers, credentials in its URL), come from the Bazel options of the build
that made the release target: dispatch reads them from Bazel's own account of the invocation and hands them to each
release in environment.REMOTE_CACHE and environment.REMOTE_CACHE_HEADERS (secrets: redacted wherever they could
show). An HTTP cache is read here; a gRPC (REAPI) cache, grpc://, grpcs:// or no scheme, through its ByteStream API
(bytestream.py), with the headers as gRPC metadata and the build's --remote_instance_name.

What the cache answers is checked: a blob it no longer has (evicted) raises BlobNotInCacheError naming the blobs, and
the release is then built here (dispatch does so itself); bytes that do not hash to their digest are never committed
(CacheIntegrityError, exit 3).
"""

import dataclasses
import json
import logging
import urllib.parse

from releasekit.core import environment
from releasekit.core.errors import (AuthError, BlobNotInCacheError, CacheIntegrityError, ConfigError, TransientError)
from releasekit.core.http import TRANSPORT_ERRORS, HttpClient, origin, raise_for_transient
from releasekit.core.redact import register_secret
from releasekit.publishing.oci import READ_SIZE, BlobLocation, ByteCounter

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RemoteCache:
    """A remote cache, HTTP or gRPC: its URL (credentials in it are secrets) and the headers sent with each request."""

    url: str
    headers: tuple = dataclasses.field(default=(), repr=False)  # ((name, value), ...)
    ca_bundle: str = None  # --tls_certificate: the CA that signs an HTTPS or grpcs cache's certificate
    instance: str = ""  # --remote_instance_name: a gRPC cache's namespace

    @property
    def is_grpc(self):
        return not self.url.startswith(("http://", "https://"))

    @property
    def display(self):
        """The cache as messages name it: scheme, host and path, never credentials."""
        if self.url.startswith("unix:"):
            return self.url
        if self.is_grpc:
            scheme, _, rest = self.url.rpartition("://")
            shown = "{}://{}".format(scheme or "grpcs", rest.rsplit("@", 1)[-1].rstrip("/"))
            return shown + (" (instance {})".format(self.instance) if self.instance else "")
        parsed = urllib.parse.urlsplit(self.url)
        return origin(self.url) + parsed.path.rstrip("/")

    def to_environment(self):
        """The variables dispatch hands a release: {name: value}."""
        variables = {environment.REMOTE_CACHE.name: self.url}
        if self.headers:
            variables[environment.REMOTE_CACHE_HEADERS.name] = json.dumps(["{}={}".format(k, v)
                                                                           for k, v in self.headers])
        if self.ca_bundle:
            variables[environment.REMOTE_CACHE_CA.name] = self.ca_bundle
        if self.instance:
            variables[environment.REMOTE_CACHE_INSTANCE.name] = self.instance
        return variables

    @classmethod
    def from_environment(cls, environ):
        """The cache a release streams blobs from, or None (then every blob is read from disk, as before)."""
        url = environment.REMOTE_CACHE.get(environ)
        if not url:
            return None
        parsed = urllib.parse.urlsplit(url if "://" in url else "grpcs://" + url)
        if parsed.scheme not in ("http", "https", "grpc", "grpcs") or not parsed.netloc:
            raise ConfigError("{} is not an http://, https://, grpc:// or grpcs:// remote cache; lazy push reads no "
                              "other. Unset it to read the image from disk.".format(environment.REMOTE_CACHE))
        register_secret(parsed.password)
        register_secret(urllib.parse.unquote(parsed.password or ""))
        headers = []
        text = environment.REMOTE_CACHE_HEADERS.get(environ)
        if text:
            try:
                entries = json.loads(text)
                headers = [tuple(entry.split("=", 1)) for entry in entries]
                assert all(len(pair) == 2 for pair in headers)
            except (ValueError, TypeError, AttributeError, AssertionError):
                raise ConfigError("{} must be a JSON list of \"Name=value\" strings, as dispatch writes it.".format(
                    environment.REMOTE_CACHE_HEADERS)) from None
            for _, value in headers:
                register_secret(value)
        return cls(url, tuple(headers), environment.REMOTE_CACHE_CA.get(environ),
                   environment.REMOTE_CACHE_INSTANCE.get(environ) or "")

    def reader(self, pool_size=8):
        """The HTTP cache's reader; a gRPC cache's is bytestream.ByteStreamReader."""
        return CacheReader(self, pool_size)


class CacheReader:
    """Streams blobs from one remote cache; counts what it downloaded. Thread-safe."""

    def __init__(self, cache, pool_size=8):
        self.cache = cache
        parsed = urllib.parse.urlsplit(cache.url)
        self.base = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc.rsplit("@", 1)[-1], parsed.path.rstrip("/"),
                                             "", ""))
        self.auth = (urllib.parse.unquote(parsed.username), urllib.parse.unquote(parsed.password or "")) \
            if parsed.username else None
        self.http = HttpClient(pool_size=pool_size, verify=cache.ca_bundle or True)
        self.downloaded = ByteCounter()
        self.blobs = set()  # digests streamed from the cache

    def location(self, key, offset, size, digest, key_size=None):
        """Where blob `digest` (size bytes) lies: at offset in the cache's entry `key` (a sha256 digest)."""
        return CacheLocation(self, key, offset, size, digest, key_size)

    def stream(self, key, start, end, digest, key_size=None):
        """Bytes [start, end) of the cache's entry `key`, in chunks, without holding more than one chunk."""
        url = "{}/cas/{}".format(self.base, key.split(":", 1)[1])
        headers = dict(self.cache.headers)
        headers["Range"] = "bytes={}-{}".format(start, end - 1)
        what = "read blob {} from the remote cache {}".format(digest[:19], self.cache.display)
        try:
            response = self.http.session.get(url, headers=headers, auth=self.auth, stream=True,
                                             timeout=(30, 120), verify=self.http.verify)
        except TRANSPORT_ERRORS as error:
            raise TransientError("{}: {}".format(what, type(error).__name__)) from None
        try:
            if response.status_code == 404:
                raise BlobNotInCacheError(
                    "blob {} is not in the remote cache {} (evicted since the build?) nor on this machine".format(
                        digest, self.cache.display), [digest])
            if response.status_code in (401, 403):
                raise AuthError("{}: the cache refused the credentials of the build's --remote_cache and "
                                "--remote_header (HTTP {}).".format(what, response.status_code))
            raise_for_transient(response, what)
            if response.status_code not in (200, 206):
                raise TransientError("{}: HTTP {}".format(what, response.status_code))
            skip = start if response.status_code == 200 else 0  # a cache that ignores Range sends the whole entry
            self.blobs.add(digest)
            yield from self._body(response, skip, end - start, what, digest)
        finally:
            response.close()

    def _body(self, response, skip, wanted, what, digest):
        sent = 0
        try:
            for chunk in response.iter_content(READ_SIZE):
                self.downloaded.add(len(chunk))
                if skip:
                    dropped = min(skip, len(chunk))
                    chunk, skip = chunk[dropped:], skip - dropped
                if not chunk:
                    continue
                chunk = chunk[:wanted - sent]
                sent += len(chunk)
                yield chunk
                if sent >= wanted:
                    return
        except TRANSPORT_ERRORS as error:
            raise TransientError("{}: the answer was cut short ({})".format(what, type(error).__name__)) from None
        raise CacheIntegrityError(
            "The remote cache {} served {} bytes of blob {} where its size is {} bytes; nothing was committed. "
            "The cache entry is damaged: remove it, or rebuild the image with --noremote_accept_cached.".format(
                self.cache.display, sent, digest, wanted))


class CacheLocation(BlobLocation):
    """A blob's bytes in the remote cache: the entry `key` (key_size bytes, where known), from `offset`, `size` bytes
    long."""

    def __init__(self, reader, key, offset, size, digest, key_size=None):
        super().__init__(None, offset, size)
        self.reader, self.key, self.blob_digest, self.key_size = reader, key, digest, key_size

    def chunks(self, start=0, end=None, read_size=READ_SIZE):
        end = self.size if end is None else end
        if end <= start:
            return
        yield from self.reader.stream(self.key, self.offset + start, self.offset + end, self.blob_digest,
                                      self.key_size)

    def mismatch(self, digest, actual):
        return CacheIntegrityError(
            "The remote cache {} served bytes for blob {} that hash to {}: the cache does not hold what the build "
            "put there, so this release was refused and nothing was committed. Remove the damaged entry (or "
            "clear the cache) and run the release again.".format(self.reader.cache.display, digest, actual))
