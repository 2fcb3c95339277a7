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
