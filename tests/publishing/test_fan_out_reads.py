"""One release to three registries does its repeated work once: each blob read once from the remote cache for every
registry that lacks it, and each registry's checks at the same time as the others', against real registries and a
real nginx HTTP cache."""

import json
import os
import random
import shutil

import pytest
import requests

from helpers import releases
from helpers.images import make_layout
from helpers.servers import NginxStore, Registry
from helpers.slow_proxy import KillGate, SlowProxy

LAYER_BYTES = 3 << 20  # larger than one read: the size the publisher shares between registries


@pytest.fixture(scope="module")
def three_registries(tmp_path_factory):
    servers = [Registry(str(tmp_path_factory.mktemp("registry-{}".format(index)))) for index in range(3)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def cache(tmp_path):
    store = NginxStore(str(tmp_path / "cache"))
    yield store
    store.stop()


def write_config(path, hosts):
    with open(path, "w") as handle:
        handle.write("channels:\n  ci: {{registry: 'http://{}/prod', mirrors: [{}]}}\n  dev: {{registry: 'http://{}/dev'}}\n"
                     .format(hosts[0], ", ".join("'http://{}/prod'".format(host) for host in hosts[1:]), hosts[0]))
    return path


def image_in_cache_only(tmp_path, cache, seed):
    """A release whose image the build left in the remote cache: every blob in the cache's CAS, none on this disk.
    Returns (manifest, runfiles, image digest, the layer's digest)."""
    layer = random.Random(seed).randbytes(LAYER_BYTES)
    digest = make_layout(str(tmp_path / "img"), {"/data/layer.bin": layer})
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "team/shared", "ci")
    blobs = tmp_path / "img" / "blobs" / "sha256"
    os.makedirs(cache.path("cache/cas"), exist_ok=True)
    for name in os.listdir(blobs):
        shutil.copy(blobs / name, cache.path("cache/cas/" + name))
    plan = json.loads((tmp_path / "runfiles" / "ws" / "plan.json").read_text())
    layers = [blob["digest"] for blob in plan["blobs"] if blob["size"] >= LAYER_BYTES]
    shutil.rmtree(tmp_path / "img")
    shutil.rmtree(tmp_path / "img.src")
    return manifest, runfiles, digest, layers[0]


def cas_gets(cache, digest):
    with open(cache.request_log) as handle:
        return [line for line in handle if " GET /cache/cas/{} ".format(digest.split(":", 1)[1]) in line]


def test_a_blob_three_registries_lack_is_read_from_the_cache_once(three_registries, cache, tmp_path, isolated_home):
    manifest, runfiles, digest, layer = image_in_cache_only(tmp_path, cache, seed=1)
    record_path = tmp_path / "record.json"
    config = write_config(str(tmp_path / "releasekit.yaml"), [r.host for r in three_registries])
    result = releases.publish(manifest, runfiles, {"CI": "true", "RELEASEKIT_CONFIG": config,
                                                   "RELEASEKIT_REPORT": str(record_path),
                                                   "RELEASEKIT_REMOTE_CACHE": cache.url + "/cache"})
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads(record_path.read_text())
    assert [e["blobs_uploaded"] for e in record["registries"]] == [2, 2, 2]
    for registry in three_registries:
        assert releases.COMMIT in registry.tags("prod/team/shared")
        stored = requests.get("{}/v2/prod/team/shared/blobs/{}".format(registry.url, layer), timeout=30)
        assert stored.status_code == 200 and stored.content == cache_bytes(cache, layer)
    gets = cas_gets(cache, layer)
    print("GETs of the layer from the cache:", len(gets))
    assert len(gets) == 1, gets
    # Read once, uploaded three times.
    assert LAYER_BYTES <= record["bytes_downloaded"] < 2 * LAYER_BYTES


def cache_bytes(cache, digest):
    with open(cache.path("cache/cas/" + digest.split(":", 1)[1]), "rb") as handle:
        return handle.read()


def test_each_registry_is_checked_while_the_others_are(three_registries, tmp_path, isolated_home):
    """A first CI release claims its repository at each registry and waits out a settle time before reading the claim
    back: the three registries' claims overlap, so every registry is reached before any claim is read back."""
    make_layout(str(tmp_path / "img"), {"/x": b"checked at once"})
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "team/at-once", "ci")
    gate = KillGate()  # not armed: it only numbers the requests of the three proxies in the order they came
    proxies = [SlowProxy(registry.host, gate=gate, name=str(index)) for index, registry in enumerate(three_registries)]
    try:
        config = write_config(str(tmp_path / "releasekit.yaml"), [proxy.host for proxy in proxies])
        result = releases.publish(manifest, runfiles, {"CI": "true", "RELEASEKIT_CONFIG": config})
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        for proxy in proxies:
            proxy.stop()
    seen = list(gate.seen)
    first = {name: min(i for i, (n, _, _) in enumerate(seen) if n == name) for name in "012"}
    read_back = {name: max(i for i, (n, method, path) in enumerate(seen)
                           if n == name and method == "GET" and "/manifests/owner." in path) for name in "012"}
    print("first requests:", first, "claims read back:", read_back)
    assert max(first.values()) < min(read_back.values())
    for registry in three_registries:
        assert releases.COMMIT in registry.tags("prod/team/at-once")
