"""The store contract (tools/releasekit/core/stores/__init__.py), one suite run against every backend: a directory,
nginx WebDAV, moto's S3 server, and an HTTP server that refuses locks (an nginx location that answers 405 to MKCOL)."""

import logging
import os
import threading
import time
import uuid

import pytest

from conftest import TEST_PASSWORD, TEST_USER
from releasekit.core.config import parse_history
from releasekit.core.errors import ConflictError
from releasekit.core.http import RetryPolicy
from releasekit.core.run_context import RunContext

POLICY = RetryPolicy(attempts=3, total_seconds=20.0, timeout=10.0)
BACKENDS = ["directory", "webdav", "s3", "http-without-locks"]
CREDENTIALS = {"RELEASEKIT_HISTORY_USERNAME": TEST_USER, "RELEASEKIT_HISTORY_PASSWORD": TEST_PASSWORD}


class Backend:
    """One backend's root for one test, and the stores of URLs below it, opened as a run opens them."""

    def __init__(self, name, root_url, environ, other_spelling):
        self.name, self.root_url = name, root_url
        self.context = RunContext(None, POLICY, environ)
        self.other_spelling = other_spelling  # the root, written another way that reaches the same place

    def destination(self, url=None):
        return parse_history(url or self.root_url, "the test")

    def store(self, url=None):
        return self.context.open_store(self.destination(url))


@pytest.fixture(params=BACKENDS)
def backend(request, nginx, moto, tmp_path, monkeypatch):
    unique = "contract-" + uuid.uuid4().hex[:12]
    if request.param == "directory":
        (tmp_path / "store").mkdir()
        (tmp_path / "link").symlink_to(tmp_path / "store")
        return Backend("directory", "file://{}/store".format(tmp_path), {}, "file://{}/link".format(tmp_path))
    if request.param == "s3":
        for name, value in moto.environ.items():  # boto3 reads AWS's credential chain from the process environment
            monkeypatch.setenv(name, value)
        root = "s3://{}/{}".format(moto.bucket, unique)
        return Backend("s3", root, dict(moto.environ), root + "/")
    location = "" if request.param == "webdav" else "/nolock"
    port = nginx.url.rsplit(":", 1)[1]
    return Backend(request.param, "{}{}/{}".format(nginx.url, location, unique), dict(CREDENTIALS),
                   "http://LocalHost:{}{}/{}/".format(port, location, unique))


def test_what_is_put_is_read_back_whole_with_a_version(backend):
    store = backend.store()
    assert store.get("a/b.txt") == (None, None)
    store.put("a/b.txt", b"one")
    content, version = store.get("a/b.txt")
    assert content == b"one" and version
    store.put("a/b.txt", b"second")
    assert store.get("a/b.txt")[0] == b"second"


def test_a_file_is_streamed_whole(backend, tmp_path):
    large = tmp_path / "large.bin"
    large.write_bytes(os.urandom(3 << 20))  # three chunks of the stream
    store = backend.store()
    store.put_file("files/large.bin", str(large))
    assert store.get("files/large.bin")[0] == large.read_bytes()


def test_exists_and_delete(backend):
    store = backend.store()
    assert not store.exists("gone.txt")
    store.put("gone.txt", b"here")
    assert store.exists("gone.txt")
    store.delete("gone.txt")
    assert not store.exists("gone.txt") and store.get("gone.txt") == (None, None)
    store.delete("gone.txt")  # what is not there is deleted already


def test_list_names_files_and_directories(backend):
    store = backend.store()
    for path in ("d/x.txt", "d/sub/y.txt", "d/sub/z.txt"):
        store.put(path, path.encode())
    assert store.list("d") == ["sub/", "x.txt"]
    assert store.list("d/sub/") == ["y.txt", "z.txt"]
    assert store.list("nothing-here") == []


@pytest.mark.parametrize("backend", ["directory", "s3"], indirect=True)
def test_conditional_writes_refuse_a_stale_version_and_an_existing_object(backend):
    store = backend.store()
    assert store.conditional_writes
    store.put("meta.xml", b"v1", if_none_match=True)
    _, version = store.get("meta.xml")
    store.put("meta.xml", b"v2", if_match=version)
    with pytest.raises(ConflictError):
        store.put("meta.xml", b"stale", if_match=version)
    with pytest.raises(ConflictError):
        store.put("meta.xml", b"created twice", if_none_match=True)
    assert store.get("meta.xml")[0] == b"v2"


@pytest.mark.parametrize("backend", ["directory", "webdav", "s3"], indirect=True)
def test_writers_that_read_merge_and_write_never_lose_an_update(backend):
    """What Maven metadata needs: under the store's lock, with conditional writes, two writers' increments all land.
    WebDAV ignores the conditions; its lock serialises them. S3 has no lock; its conditions do."""
    def increment(times):
        store = backend.store()
        for _ in range(times):
            while True:
                with store.lock("counter"):
                    content, version = store.get("counter/value")
                    try:
                        store.put("counter/value", str(int(content or b"0") + 1).encode(), if_match=version,
                                  if_none_match=content is None)
                        break
                    except ConflictError:
                        continue

    writers = [threading.Thread(target=increment, args=(6,)) for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert backend.store().get("counter/value")[0] == b"12"


@pytest.mark.parametrize("backend", ["directory", "webdav"], indirect=True)
def test_a_lock_is_held_by_one_holder_at_a_time_and_released(backend):
    events, holding = [], threading.Event()

    def first():
        with backend.store().lock("locked") as held:
            assert held
            holding.set()
            time.sleep(0.5)
            events.append("first leaves")

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait(30)
    with backend.store().lock("locked") as held:
        events.append("second enters")
        assert held
    thread.join()
    assert events == ["first leaves", "second enters"]


@pytest.mark.parametrize("backend", ["s3", "http-without-locks"], indirect=True)
def test_a_store_without_a_lock_says_so_at_once(backend, caplog):
    """S3 needs none (its writes are conditional); an HTTP server without MKCOL has none, and read-back has to do."""
    store = backend.store()
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="releasekit"):
        with store.lock("unlocked") as held:
            assert held is False
    assert time.monotonic() - started < 5
    if backend.name == "http-without-locks":
        assert not store.conditional_writes
        assert "no lock on unlocked (the server has no MKCOL)" in caplog.text
        assert not store.exists("unlocked/.releasekit-lock/")


def test_the_identity_is_the_place_a_store_reaches(backend):
    """What the dev/CI overlap check compares: two spellings of one place are one place (and share their objects);
    a nested place overlaps and its objects nest; a sibling is apart, and so are its objects."""
    root, same = backend.destination(), backend.destination(backend.other_spelling)
    nested, sibling = backend.destination(backend.root_url + "/inner"), backend.destination(backend.root_url + "-other")
    assert root.text != same.text
    assert root.overlaps(same) and same.overlaps(root) and root.overlaps(nested) and nested.overlaps(root)
    assert not root.overlaps(sibling) and not sibling.overlaps(root)
    backend.store().put("inner/x.txt", b"root's")
    assert backend.store(backend.other_spelling).get("inner/x.txt")[0] == b"root's"
    assert backend.store(nested.text).get("x.txt")[0] == b"root's"
    backend.store(sibling.text).put("inner/x.txt", b"sibling's")
    assert backend.store().get("inner/x.txt")[0] == b"root's"
