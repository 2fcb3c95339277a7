"""A REAPI (gRPC) remote cache as the source of an image's blobs: ByteStream.Read, streamed chunk by chunk.

Bazel's gRPC cache keeps each blob in its CAS under `[{instance}/]blobs/{sha256}/{size}`; the ByteStream service's
Read answers a stream of chunks for a range of it (read_offset, read_limit). Only Read is called, so its two messages
are encoded here by hand (ReadRequest{1: resource_name, 2: read_offset, 3: read_limit}, ReadResponse{10: data}):
no generated stubs, and no protobuf runtime to pin. grpc is imported only when such a cache is read.

What the cache answers is checked as for an HTTP cache (remote_cache.py): NOT_FOUND raises BlobNotInCacheError (the
release is then built here), bytes that do not hash to their digest, or fewer bytes than the blob's size, are never
committed (CacheIntegrityError).
"""

import logging
import threading

from releasekit.core.errors import AuthError, BlobNotInCacheError, CacheIntegrityError, ConfigError, TransientError
from releasekit.publishing.oci import ByteCounter
from releasekit.publishing.remote_cache import CacheLocation

log = logging.getLogger(__name__)
READ_METHOD = "/google.bytestream.ByteStream/Read"
_MAX_MESSAGE = 64 << 20  # a server's chunk size is its own choice; Bazel's servers send 16 KiB to 4 MiB
_TRANSIENT = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL", "UNKNOWN", "CANCELLED")


def _varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def encode_read_request(request):
    """ReadRequest bytes for (resource_name, read_offset, read_limit)."""
    name, offset, limit = request
    encoded = name.encode("utf-8")
    return (b"\x0a" + _varint(len(encoded)) + encoded + (b"\x10" + _varint(offset) if offset else b"")
            + (b"\x18" + _varint(limit) if limit else b""))


def _read_varint(data, position):
    value = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("a varint runs past the message")
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if not byte & 0x80:
            return value, position


def decode_read_response(message):
    """The data of a ReadResponse (field 10); other fields are skipped, as protobuf does with unknown ones."""
    data, position = [], 0
    while position < len(message):
        key, position = _read_varint(message, position)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, position = _read_varint(message, position)
        elif wire == 1:
            position += 8
        elif wire == 5:
            position += 4
        elif wire == 2:
            length, position = _read_varint(message, position)
            if field == 10:
                data.append(message[position:position + length])
            position += length
        else:
            raise ValueError("wire type {} is not protobuf's".format(wire))
    if position != len(message):
        raise ValueError("a field runs past the message")
    return b"".join(data)


def channel_target(url):
    """(host:port, secure) of a gRPC cache URL: grpc://, grpcs://, or no scheme (TLS, as Bazel takes it)."""
    scheme, _, rest = url.rpartition("://")
    if scheme not in ("", "grpc", "grpcs"):
        raise ConfigError("{} is not a gRPC remote cache".format(url))
    host = rest.rsplit("@", 1)[-1].split("/", 1)[0]
    if not host:
        raise ConfigError("the gRPC remote cache {} names no host; set --remote_cache=grpc[s]://HOST:PORT".format(
            scheme + "://" if scheme else ""))
    secure = scheme != "grpc"
    return (host if ":" in host.rsplit("]", 1)[-1] else host + (":443" if secure else ":80")), secure


class ByteStreamReader:
    """Streams blobs from one REAPI cache over one gRPC channel; counts what it downloaded. Thread-safe."""

    def __init__(self, cache):
        import grpc  # only a build with a gRPC cache needs it

        self.grpc, self.cache = grpc, cache
        target, secure = channel_target(cache.url)
        options = [("grpc.max_receive_message_length", _MAX_MESSAGE)]
        if secure:
            roots = None
            if cache.ca_bundle:
                try:
                    with open(cache.ca_bundle, "rb") as handle:
                        roots = handle.read()
                except OSError as error:
                    raise ConfigError("the remote cache's --tls_certificate {} cannot be read ({}); point it at the "
                                      "PEM CA bundle that signs the cache's certificate.".format(
                                          cache.ca_bundle, error.strerror)) from None
            self.channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(roots), options)
        else:
            self.channel = grpc.insecure_channel(target, options)
        self.read = self.channel.unary_stream(READ_METHOD, request_serializer=encode_read_request,
                                              response_deserializer=decode_read_response)
        # gRPC metadata keys are lower case; Bazel sends its --remote_header names the same way.
        self.metadata = tuple((name.strip().lower(), value) for name, value in cache.headers)
        self.downloaded = ByteCounter()
        self.blobs = set()
        self._lock = threading.Lock()

    def location(self, key, offset, size, digest, key_size=None):
        return CacheLocation(self, key, offset, size, digest, key_size)

    def resource(self, key, key_size):
        name = "blobs/{}/{}".format(key.split(":", 1)[1], key_size)
        return "{}/{}".format(self.cache.instance.strip("/"), name) if self.cache.instance else name

    def stream(self, key, start, end, digest, key_size=None):
        """Bytes [start, end) of the CAS entry `key` (key_size bytes long), one chunk at a time."""
        what = "read blob {} from the remote cache {}".format(digest[:19], self.cache.display)
        if key_size is None:
            raise BlobNotInCacheError("blob {} is a slice of a tarball whose size the image plan does not record, so "
                                      "the gRPC cache {} cannot be asked for it".format(digest, self.cache.display),
                                      [digest])
        request = (self.resource(key, key_size), start, end - start)
        sent = 0
        try:
            for chunk in self.read(request, metadata=self.metadata, timeout=600):
                self.downloaded.add(len(chunk))
                if not sent:
                    with self._lock:
                        self.blobs.add(digest)
                chunk = chunk[:end - start - sent]
                if chunk:
                    sent += len(chunk)
                    yield chunk
                if sent >= end - start:
                    return
        except self.grpc.RpcError as error:
            raise self._error(error, what, digest) from None
        except ValueError as error:  # a message that is not a ReadResponse
            raise TransientError("{}: the answer is not a ByteStream ReadResponse ({})".format(what, error)) from None
        raise CacheIntegrityError(
            "The remote cache {} served {} bytes of blob {} where its size is {} bytes; nothing was committed. "
            "The cache entry is damaged: remove it, or rebuild the image with --noremote_accept_cached.".format(
                self.cache.display, sent, digest, end - start))

    def _error(self, error, what, digest):
        code = error.code().name if hasattr(error, "code") and error.code() else "UNKNOWN"
        if code == "NOT_FOUND":
            return BlobNotInCacheError("blob {} is not in the remote cache {} (evicted since the build?) nor on this "
                                       "machine".format(digest, self.cache.display), [digest])
        if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            return AuthError("{}: the cache refused the credentials of the build's --remote_header and "
                             "--remote_cache_header (gRPC {}).".format(what, code))
        if code in _TRANSIENT:
            return TransientError("{}: gRPC {}".format(what, code))
        return ConfigError("{}: the cache answered gRPC {} ({}); check the build's --remote_cache and "
                           "--remote_instance_name.".format(what, code, (error.details() or "")[:200]))

    def close(self):
        self.channel.close()
