"""The shared reads of a fan-out, without a network: uploads of one blob taking it in ranges at different paces, one
stalling, one tried again; each gets exactly the blob's bytes and a hasher that agrees with them."""

import hashlib
import os
import threading
import time

from releasekit.publishing import shared_reads
from releasekit.publishing.oci import BlobLocation
from releasekit.publishing.shared_reads import SharedReads

SIZE = 5 * (1 << 20) + 12345


class Plan:
    def __init__(self, path, digest):
        self.blob = {"digest": digest, "size": SIZE, "location": {"file": path}}
        self.path = path

    def location(self, blob):
        return BlobLocation(self.path, 0, SIZE)


def blob_file(tmp_path):
    data = os.urandom(SIZE)
    path = tmp_path / "blob"
    path.write_bytes(data)
    return str(path), data, "sha256:" + hashlib.sha256(data).hexdigest()


def upload(location, ranges, pause=0.0):
    """What RegistryClient._upload does with a location: one hasher, the bytes range by range."""
    hasher, sent = location.new_hasher(), []
    for start, end in ranges:
        for chunk in location.chunks(start, end):
            hasher.update(chunk)
            sent.append(bytes(chunk))
            time.sleep(pause)
    return b"".join(sent), "sha256:" + hasher.hexdigest()


def test_uploads_at_different_paces_read_the_blob_once(tmp_path):
    path, data, digest = blob_file(tmp_path)
    plan = Plan(path, digest)
    shared = SharedReads(3)
    locations = [shared.plan_for(plan, index).location(plan.blob) for index in range(3)]
    ranges = [[(0, SIZE)], [(0, 2 << 20), (2 << 20, SIZE)], [(0, 1 << 20), (1 << 20, 3 << 20), (3 << 20, SIZE)]]
    results = [None] * 3

    def run(index):
        results[index] = upload(locations[index], ranges[index], pause=0.002 * index)
        locations[index].done()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [(data, digest)] * 3
    assert shared.source_reads() == {digest: 1}


def test_a_stalled_upload_no_longer_holds_the_others_back_and_hashes_for_itself(tmp_path, monkeypatch):
    monkeypatch.setattr(shared_reads, "STALL_SECONDS", 0.5)
    monkeypatch.setattr(shared_reads, "WINDOW_BYTES", 2 << 20)  # the fast upload soon waits on the stalled one
    path, data, digest = blob_file(tmp_path)
    plan = Plan(path, digest)
    shared = SharedReads(2)
    fast, stalled = (shared.plan_for(plan, index).location(plan.blob) for index in range(2))
    stalled_hasher = stalled.new_hasher()
    first = b"".join(bytes(c) for c in stalled.chunks(0, 1 << 20))  # then it stops taking bytes for a while
    stalled_hasher.update(first)
    started = time.monotonic()
    assert upload(fast, [(0, SIZE)]) == (data, digest)
    assert time.monotonic() - started < 10
    rest = []
    for chunk in stalled.chunks(1 << 20, SIZE):
        stalled_hasher.update(chunk)
        rest.append(bytes(chunk))
    assert first + b"".join(rest) == data
    assert "sha256:" + stalled_hasher.hexdigest() == digest
    assert shared.source_reads()[digest] >= 2


def test_an_upload_tried_again_reads_for_itself(tmp_path):
    path, data, digest = blob_file(tmp_path)
    plan = Plan(path, digest)
    shared = SharedReads(2)
    first, other = (shared.plan_for(plan, index).location(plan.blob) for index in range(2))
    first.new_hasher()
    next(iter(first.chunks(0, SIZE)))  # the first attempt fails after one chunk
    assert upload(first, [(0, SIZE)]) == (data, digest)  # the second attempt asks for a new hasher
    assert upload(other, [(0, SIZE)]) == (data, digest)  # the stream went on without the first
    other.done()
    first.done()
    assert shared.source_reads()[digest] == 2


class UnalignedLocation(BlobLocation):
    """A source whose chunks do not line up with the uploads' ranges (a remote cache's chunked answer)."""

    def chunks(self, start=0, end=None, read_size=None):
        yield from BlobLocation.chunks(self, start, end, read_size=700_000)


def test_an_upload_stalled_inside_a_source_chunk_no_longer_holds_the_others_back(tmp_path, monkeypatch):
    """Before: only an upload at the window's base counted as stalled, so one that stopped inside the oldest held
    chunk held every other registry's upload of the blob until its own release ended."""
    monkeypatch.setattr(shared_reads, "STALL_SECONDS", 0.5)
    monkeypatch.setattr(shared_reads, "WINDOW_BYTES", 2 << 20)
    path, data, digest = blob_file(tmp_path)
    plan = Plan(path, digest)
    plan.location = lambda blob: UnalignedLocation(path, 0, SIZE)
    shared = SharedReads(2)
    fast, stalled = (shared.plan_for(plan, index).location(plan.blob) for index in range(2))
    stalled.new_hasher()
    assert len(b"".join(bytes(c) for c in stalled.chunks(0, 1 << 20))) == 1 << 20  # ends inside a 700 kB chunk
    finished = []
    thread = threading.Thread(target=lambda: finished.append(upload(fast, [(0, SIZE)])), daemon=True)
    thread.start()
    thread.join(10)
    assert finished == [(data, digest)], "the fast upload still waits on the stalled one"
    stalled.done()


def test_the_source_is_closed_once_the_blob_is_read(tmp_path):
    """Before: the source's reader stayed suspended, its file open, until the release ended."""
    path, data, digest = blob_file(tmp_path)
    plan = Plan(path, digest)
    shared = SharedReads(2)
    locations = [shared.plan_for(plan, index).location(plan.blob) for index in range(2)]
    results = [None, None]
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, upload(locations[i], [(0, SIZE)])))
               for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [(data, digest)] * 2
    opened = [os.path.realpath("/proc/self/fd/" + fd) for fd in os.listdir("/proc/self/fd")]
    assert path not in opened


class ChangingLocation(UnalignedLocation):
    """A source that answers differently once: its first read has one byte wrong in its first chunk (a cache entry
    rewritten meanwhile); every later read is right."""

    reads = 0

    def chunks(self, start=0, end=None, read_size=None):
        ChangingLocation.reads += 1
        first = ChangingLocation.reads == 1
        for chunk in UnalignedLocation.chunks(self, start, end):
            if first:
                chunk, first = bytes([chunk[0] ^ 0xFF]) + bytes(chunk[1:]), False
            yield chunk


def test_an_upload_that_leaves_the_stream_hashes_the_bytes_it_was_handed_not_a_second_read(tmp_path, monkeypatch):
    """Before: the upload hashed a second read of the part it had taken from the stream. When the source answered
    differently the second time, the digest checked before the commit agreed with the blob while the bytes sent did
    not."""
    monkeypatch.setattr(shared_reads, "STALL_SECONDS", 0.5)
    monkeypatch.setattr(shared_reads, "WINDOW_BYTES", 2 << 20)
    monkeypatch.setattr(ChangingLocation, "reads", 0)
    path, data, digest = blob_file(tmp_path)
    plan = Plan(path, digest)
    plan.location = lambda blob: ChangingLocation(path, 0, SIZE)
    shared = SharedReads(2)
    fast, stalled = (shared.plan_for(plan, index).location(plan.blob) for index in range(2))
    stalled_hasher = stalled.new_hasher()
    first = b"".join(bytes(c) for c in stalled.chunks(0, 1 << 20))  # from the stream: the first read, one byte wrong
    stalled_hasher.update(first)
    fast_sent, fast_digest = upload(fast, [(0, SIZE)])  # the stalled upload is dropped meanwhile
    assert fast_sent != data and fast_digest == "sha256:" + hashlib.sha256(fast_sent).hexdigest() != digest
    rest = []
    for chunk in stalled.chunks(1 << 20, SIZE):  # read for itself: right from here on
        stalled_hasher.update(chunk)
        rest.append(bytes(chunk))
    sent = first + b"".join(rest)
    assert sent != data and ChangingLocation.reads >= 2
    assert "sha256:" + stalled_hasher.hexdigest() == "sha256:" + hashlib.sha256(sent).hexdigest() != digest
