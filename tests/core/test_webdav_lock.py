"""The WebDAV lock of HTTP stores (core/stores/webdav_lock.py), against the real nginx WebDAV store: a live holder
keeps its lease."""

import os
import subprocess
import sys
import time

from conftest import TEST_PASSWORD, TEST_USER
from helpers import releases
from helpers.servers import NginxStore
from helpers.slow_proxy import SlowProxy


def _lock_events(log_path):
    """{lock directory: [(event, via proxy)]} for each lock taken (MKCOL 201) and released, in nginx's order."""
    events = {}
    with open(log_path) as handle:
        for line in handle:
            fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
            method, uri = line.split()[1:3]
            if not uri.endswith("/.releasekit-lock/"):
                continue
            if method == "MKCOL" and fields["status"] == "201":
                events.setdefault(uri, []).append(("taken", fields["via"] != "-"))
            elif method == "DELETE" and fields["status"] in ("200", "204"):
                events.setdefault(uri, []).append(("released", fields["via"] != "-"))
    return events


def test_a_live_holder_slowed_by_its_network_keeps_the_lock(tmp_path):
    """Before: a second publisher broke the lock after 2 s while its holder, slowed, had not yet written its owner."""
    store = NginxStore(str(tmp_path / "nginx"), TEST_USER, TEST_PASSWORD)
    # The holder's owner-file writes are slowed, as retries through a flaky network would: 4 s each.
    proxy = SlowProxy(store.url.split("//", 1)[1], delay_seconds=4.0, delay_paths=[".releasekit-lock/owner.json"])
    try:
        credentials = {"RELEASEKIT_MAVEN_USERNAME": TEST_USER, "RELEASEKIT_MAVEN_PASSWORD": TEST_PASSWORD}
        processes = []
        for name, base in (("slow", proxy.url), ("fast", store.url)):
            jar = releases.make_jar(str(tmp_path / (name + ".jar")), name)
            manifest, runfiles = releases.jar_release(str(tmp_path), jar, "com.example.lease:lib:1.0.0", channel="dev",
                                                      name=name)
            config = releases.write_store_config(str(tmp_path / (name + ".yaml")), base + "/releases",
                                                 base + "/snapshots")
            env = dict(os.environ, RELEASEKIT_CONFIG=config, RELEASEKIT_COMMIT=releases.COMMIT,
                       RELEASEKIT_DIRTY="false",
                       **credentials)
            env.pop("CI", None)
            processes.append(subprocess.Popen([sys.executable, releases.ENTRY, "publish", "--manifest", manifest,
                                               "--runfiles", runfiles], env=env, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True))
            if name == "slow":  # the fast one starts once the slow one holds a lock, before it has written its owner
                lock = store.path("snapshots/com/example/lease/lib/1.0.0-SNAPSHOT/.releasekit-lock")
                deadline = time.monotonic() + 120
                while not os.path.isdir(lock) and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert os.path.isdir(lock)
        for process in processes:
            _, stderr = process.communicate(timeout=240)
            assert process.returncode == 0, stderr
    finally:
        proxy.stop()
        store.stop()
    locks = _lock_events(store.request_log)
    version_lock = locks["/snapshots/com/example/lease/lib/1.0.0-SNAPSHOT/.releasekit-lock/"]
    assert version_lock[0] == ("taken", True) and ("taken", False) in version_lock
    # Each lock is released by whoever took it, before anyone takes it again: nobody broke a live holder's lock.
    for events in locks.values():
        assert len(events) % 2 == 0, events
        for taken, released in zip(events[::2], events[1::2]):
            assert taken[0] == "taken" and released == ("released", taken[1]), events
    metadata = open(store.path("snapshots/com/example/lease/lib/maven-metadata.xml")).read()
    assert "<version>1.0.0-SNAPSHOT</version>" in metadata


def test_a_waiter_that_meets_a_lock_just_released_takes_it(tmp_path):
    """A waiter's MKCOL is refused (the lock is held), and the holder releases it before the waiter reads who holds
    it. Before: the waiter found no lock directory, took the store for one without MKCOL and went on without the
    lock, so four jar releases at once under faults lost a version from maven-metadata.xml."""
    import threading

    from releasekit.core.config import parse_history
    from releasekit.core.http import RetryPolicy
    from releasekit.core.run_context import RunContext
    from releasekit.core.stores import webdav_lock

    store = NginxStore(str(tmp_path / "nginx"), TEST_USER, TEST_PASSWORD)
    # The waiter reads the owner file slowly: the holder lets go in between.
    proxy = SlowProxy(store.url.split("//", 1)[1], delay_seconds=2.0, delay_paths=[".releasekit-lock/owner.json"])
    context = RunContext(None, RetryPolicy(attempts=3, total_seconds=30.0, timeout=10.0),
                         {"RELEASEKIT_HISTORY_USERNAME": TEST_USER, "RELEASEKIT_HISTORY_PASSWORD": TEST_PASSWORD})
    holder = context.open_store(parse_history(store.url + "/locks", "the test"))
    waiter = context.open_store(parse_history(proxy.url + "/locks", "the test"))
    holder.put("shared/file.txt", b"x")
    held, waited = threading.Event(), []
    try:
        def hold():
            with webdav_lock.held(holder, "shared") as taken:
                assert taken
                held.set()
                time.sleep(1.0)  # released while the waiter's read of the owner file is on its way

        thread = threading.Thread(target=hold)
        thread.start()
        assert held.wait(30)
        with webdav_lock.held(waiter, "shared") as taken:
            waited.append(taken)
        thread.join(30)
    finally:
        proxy.stop()
        store.stop()
    assert waited == [True]
    taken = [e for e in _lock_events(store.request_log)["/locks/shared/.releasekit-lock/"] if e[0] == "taken"]
    assert taken == [("taken", False), ("taken", True)]
