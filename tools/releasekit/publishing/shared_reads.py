"""One read of a blob for every registry of a fan-out.

A release to a registry and its mirrors uploads a blob to each registry that lacks it, at once. Read separately, the
blob would be read (from disk, or streamed from the remote cache) and hashed once per registry. Here it is read once:
the first upload that needs the next bytes reads them from the source and hashes them, and every upload of that
blob takes them from a short window of chunks held in memory. The window holds back the fastest upload until the
slowest has taken its bytes, so memory stays bounded (WINDOW_BYTES per blob) and the release goes at the pace of its
slowest registry, as it must anyway.

Whatever departs from that common stream reads for itself, so the sharing costs speed at worst, never correctness:
an upload tried again (a new hasher asked for), a resumed upload, an upload held back by a failed source read, and
an upload that stopped taking bytes for STALL_SECONDS (dropped from the window so that the others go on) read the
source directly, and hash what they send themselves (a dropped upload first hashes again what it had already sent).
The digest checked before a chunked upload is committed is the stream's, of exactly the bytes every registry got.
"""

import collections
import hashlib
import logging
import threading
import time

from releasekit.publishing.oci import READ_SIZE, BlobLocation, InlineLocation

log = logging.getLogger(__name__)

WINDOW_BYTES = 16 * READ_SIZE  # read ahead of the slowest upload of a blob
STALL_SECONDS = 10.0  # an upload that takes nothing for this long no longer holds the others back
SHARED_MINIMUM = READ_SIZE  # smaller blobs are read per registry: nothing worth sharing
_POLL_SECONDS = 0.2


class SharedReads:
    """The blobs of one release to `registries` registries; registry i reads through plan_for(plan, i)."""

    def __init__(self, registries):
        self.registries = registries
        self.lock = threading.Lock()
        self.streams = {}
        self.finished_registries = set()

    def plan_for(self, plan, index):
        return _RegistryPlan(plan, self, index)

    def location(self, plan, blob, index):
        source = plan.location(blob)
        if isinstance(source, InlineLocation) or blob["size"] < SHARED_MINIMUM:
            return source
        with self.lock:
            stream = self.streams.get(blob["digest"])
            if stream is None:
                stream = self.streams[blob["digest"]] = _BlobStream(
                    source, blob["digest"], [i for i in range(self.registries) if i not in self.finished_registries])
        return stream.subscriber(index, source)

    def finished(self, index):
        """Registry `index` is done pushing (or failed): no blob waits for it any more."""
        with self.lock:
            self.finished_registries.add(index)
            streams = list(self.streams.values())
        for stream in streams:
            stream.detach(index)

    def source_reads(self):
        """How many times each shared blob was read from its source: {digest: reads} (1 when fully shared)."""
        with self.lock:
            return {digest: stream.source_reads for digest, stream in self.streams.items()}


class _RegistryPlan:
    """An image plan as one registry's push sees it: every blob's bytes come through the shared reads."""

    def __init__(self, plan, shared, index):
        self._plan, self._shared, self._index = plan, shared, index

    def location(self, blob):
        return self._shared.location(self._plan, blob, self._index)

    def __getattr__(self, name):
        return getattr(self._plan, name)


class _BlobStream:
    """One blob read once from its source, held in a window of chunks for the uploads that take it."""

    def __init__(self, source, digest, registries):
        self.source, self.digest, self.size = source, digest, source.size
        self.condition = threading.Condition()
        self.held = collections.deque()  # (offset, chunk), in order, from self.base to self.read_to
        self.base = self.read_to = 0
        self.positions = {index: 0 for index in registries}  # the uploads taking the stream: offset reached
        # Set when the first upload takes bytes: a blob queued behind others is not a stalled upload.
        self.progress_at = None
        self.handed = set()
        self.hasher = hashlib.sha256()  # of the bytes read, [0, read_to); replaced, never updated, once read
        self.hashed_before = {}  # offset of a held chunk -> the hasher of the bytes before it
        self.left = {}  # upload index -> (its position, the hasher of the bytes it was handed) when it left
        self.reader = None
        self.reading = self.failed = False
        self.source_reads = 0  # whole or partial reads of the source: the stream's own, and each upload's own

    def subscriber(self, index, source):
        with self.condition:
            if index in self.handed or index not in self.positions:
                return _CountedLocation(self, source)
            self.handed.add(index)
        return SharedLocation(self, index, source)

    def detach(self, index):
        with self.condition:
            if index in self.positions:
                self._detach_locked(index)

    def position(self, index):
        with self.condition:
            return self.positions.get(index)

    def hexdigest(self):
        """The digest of the bytes read, once the whole blob is read; None before."""
        with self.condition:
            return self.hasher.hexdigest() if self.read_to >= self.size and not self.failed else None

    def piece(self, index, position, end):
        """The bytes from `position` (up to `end`) for upload `index`; None when it no longer takes the stream."""
        while True:
            with self.condition:
                while True:
                    if index not in self.positions:
                        return None
                    if self.progress_at is None:
                        now = time.monotonic()
                        self.progress_at = {other: now for other in self.positions}
                    piece = self._held_piece(position, end)
                    if piece is not None:
                        self.positions[index] = position + len(piece)
                        self.progress_at[index] = time.monotonic()
                        self._trim()
                        self.condition.notify_all()
                        return piece
                    if self.failed:
                        self._detach_locked(index)
                        return None
                    if not self.reading and self.read_to - self.base < WINDOW_BYTES:
                        self.reading = True
                        break
                    self._drop_stalled()
                    self.condition.wait(_POLL_SECONDS)
            self._read_next()

    def _read_next(self):
        """One chunk from the source into the window (one reader at a time; the lock is not held while reading)."""
        chunk = None
        try:
            if self.reader is None:
                with self.condition:
                    self.source_reads += 1
                self.reader = iter(self.source.chunks(0, self.size))
            chunk = next(self.reader, None)
            if chunk:
                hashed = self.hasher.copy()
                hashed.update(chunk)
        finally:
            with self.condition:
                if chunk:
                    self.held.append((self.read_to, chunk))
                    self.hashed_before[self.read_to], self.hasher = self.hasher, hashed
                    self.read_to += len(chunk)
                else:  # the source failed or ended early: every upload reads for itself, and meets the error
                    self.failed = True
                if self.failed or self.read_to >= self.size or not self.positions:
                    self._close_reader()  # its file or cache response is not held open until the release ends
                self.reading = False
                self.condition.notify_all()

    def _close_reader(self):
        """Close the source's reader; only by the thread that reads, or when none is reading."""
        reader, self.reader = self.reader, None
        close = getattr(reader, "close", None)
        if close is not None:
            close()

    def _held_piece(self, position, end):
        for offset, chunk in self.held:
            if offset <= position < offset + len(chunk):
                start, stop = position - offset, min(len(chunk), end - offset)
                return chunk if (start, stop) == (0, len(chunk)) else chunk[start:stop]
        return None

    def _hashed_to(self, position):
        """A hasher of the bytes [0, position) as the stream read them, or None once they are no longer held."""
        if position == self.read_to:
            return self.hasher.copy()
        for offset, chunk in self.held:
            if offset <= position < offset + len(chunk):
                hashed = self.hashed_before[offset].copy()
                hashed.update(chunk[:position - offset])
                return hashed
        return None

    def hashed_when_left(self, index, position):
        """The hasher of the bytes upload `index` was handed, if it left the stream at `position`; else None."""
        with self.condition:
            at, hashed = self.left.pop(index, (None, None))
            return hashed if at == position else None

    def _trim(self):
        floor = min(self.positions.values()) if self.positions else self.read_to
        while self.held and self.held[0][0] + len(self.held[0][1]) <= floor:
            offset, chunk = self.held.popleft()
            self.hashed_before.pop(offset, None)
            self.base = offset + len(chunk)
        if not self.positions:
            self.held.clear()
            self.hashed_before.clear()
            self.base = self.read_to
            if not self.reading and self.reader is not None:
                self._close_reader()

    def _drop_stalled(self):
        """Drop the uploads that hold the window back (the lowest position, wherever in a chunk they stopped) and
        took nothing for STALL_SECONDS."""
        if not self.positions or self.progress_at is None or self.read_to - self.base < WINDOW_BYTES:
            return  # a slow source read holds everyone alike: nobody is dropped for it
        now, floor = time.monotonic(), min(self.positions.values())
        for index, position in list(self.positions.items()):
            if position == floor and now - self.progress_at[index] > STALL_SECONDS:
                log.info("blob %s: the upload to registry %d took nothing for %.0fs; it reads for itself",
                         self.digest[:19], index, STALL_SECONDS)
                self._detach_locked(index)

    def _detach_locked(self, index):
        if index in self.positions:
            position = self.positions[index]
            self.left[index] = position, self._hashed_to(position)
        self.positions.pop(index, None)
        if self.progress_at is not None:
            self.progress_at.pop(index, None)
        self._trim()
        self.condition.notify_all()


class _CountedLocation(BlobLocation):
    """The blob's source, read directly by one upload (counted in the stream's source reads)."""

    def __init__(self, stream, source):
        super().__init__(source.path, source.offset, source.size)
        self.stream, self.source = stream, source

    def chunks(self, start=0, end=None, read_size=READ_SIZE):
        end = self.size if end is None else end
        if end > start:
            with self.stream.condition:
                self.stream.source_reads += 1
        yield from self.source.chunks(start, end)

    def mismatch(self, digest, actual):
        return self.source.mismatch(digest, actual)


class SharedLocation(_CountedLocation):
    """One upload's view of a shared blob: the stream while it keeps up, the source directly otherwise."""

    def __init__(self, stream, index, source):
        super().__init__(stream, source)
        self.index = index
        self.stream_hasher, self.retried = None, False

    def new_hasher(self):
        if self.stream_hasher is None:
            self.stream_hasher = _StreamHasher(self.stream)
            return self.stream_hasher
        self.retried = True
        self.stream.detach(self.index)  # an upload tried again reads and hashes for itself
        return hashlib.sha256()

    def chunks(self, start=0, end=None, read_size=READ_SIZE):
        end = self.size if end is None else end
        position = start
        if self.stream.position(self.index) == start:
            try:
                while position < end:
                    piece = self.stream.piece(self.index, position, end)
                    if piece is None:
                        break
                    position += len(piece)
                    yield piece
            finally:
                if position < end:  # abandoned (the request failed) or dropped: the stream goes on without it
                    self.stream.detach(self.index)
        if position >= end:
            return
        self._take_over_hashing(position)
        yield from super().chunks(position, end)

    def _take_over_hashing(self, position):
        """Leaving the stream at `position` in the attempt that hashes with the stream: from here it hashes for
        itself, starting from the hash of the very bytes the stream handed it (a source read again may differ)."""
        if self.stream_hasher is not None and not self.retried and self.stream_hasher.own is None:
            own = self.stream.hashed_when_left(self.index, position)
            if own is None:  # not known: hash a read of them (the registry checks the digest of what it took)
                own = hashlib.sha256()
                for chunk in super().chunks(0, position):
                    own.update(chunk)
            self.stream_hasher.own = own

    def done(self):
        self.stream.detach(self.index)


class _StreamHasher:
    """The hasher of an upload that takes the stream: the stream hashes its bytes once for every upload. Once the
    upload reads for itself, it hashes for itself (`own`, from the first byte)."""

    def __init__(self, stream):
        self.stream, self.own = stream, None

    def update(self, chunk):
        if self.own is not None:
            self.own.update(chunk)

    def hexdigest(self):
        if self.own is not None:
            return self.own.hexdigest()
        return self.stream.hexdigest() or "incomplete"
