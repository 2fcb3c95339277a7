"""The fan-out benchmark's link: a registry behind it takes an upload no faster than the link's bandwidth, shared by
every connection, and gets every byte."""

import concurrent.futures
import hashlib
import os
import sys
import time

import requests

from helpers.servers import REPO_ROOT, Registry

sys.path.insert(0, os.path.join(REPO_ROOT, "benchmarks"))

from link_proxy import LinkProxy  # noqa: E402

RATE = 8 << 20  # bytes per second
BLOB = 4 << 20


def upload(host, data):
    """A monolithic blob upload (OCI distribution API) through `host`; the digest the registry answers with."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = requests.post("http://{}/v2/bench/link/blobs/uploads/".format(host), timeout=60)
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    location = location if location.startswith("http") else "http://{}{}".format(host, location)
    done = requests.put(location, params={"digest": digest}, data=data, timeout=60,
                        headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, done.text
    return digest


def test_uploads_through_a_link_share_its_bandwidth(tmp_path):
    registry = Registry(str(tmp_path / "registry"), in_memory=True)
    link = LinkProxy(registry.host, RATE)
    try:
        blobs = [os.urandom(BLOB) for _ in range(2)]
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:  # two connections at once: one link between them
            digests = list(pool.map(lambda data: upload(link.host, data), blobs))
        elapsed = time.monotonic() - started
        print("{} MiB through a link of {} MiB/s in {:.2f} s".format(2 * BLOB >> 20, RATE >> 20, elapsed))
        assert elapsed >= 0.9 * 2 * BLOB / RATE
        for digest, data in zip(digests, blobs):
            stored = requests.get("{}/v2/bench/link/blobs/{}".format(registry.url, digest), timeout=30)
            assert stored.content == data
    finally:
        link.stop()
        registry.stop()
