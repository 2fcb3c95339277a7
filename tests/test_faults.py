"""Releases through a fault-injecting proxy in front of the real registry and the real store.

At a 30% fault rate (503, 429 with Retry-After, a reset mid-body, a slow answer, a response
cut in half) every release completes, and what was published verifies with real clients.
"""

import json
import os
import subprocess

import pytest

from conftest import TEST_PASSWORD, TEST_USER
from helpers import releases
from helpers.images import make_layout
from helpers.servers import MavenClient, NginxStore
from helpers.slow_proxy import SlowProxy

CAMPAIGN = 20
RETRIES = {"RELEASEKIT_RETRY_ATTEMPTS": "12", "RELEASEKIT_RETRY_TOTAL_SECONDS": "120", "RELEASEKIT_HTTP_TIMEOUT": "5"}


@pytest.fixture(scope="module")
def faulty_registry(registry):
    proxy = SlowProxy(registry.host, fault_rate=0.3, slow_seconds=1.0, seed=7)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def faulty_store(tmp_path_factory):
    store = NginxStore(str(tmp_path_factory.mktemp("faulty-store")), TEST_USER, TEST_PASSWORD)
    proxy = SlowProxy("127.0.0.1:{}".format(store.port), fault_rate=0.3, slow_seconds=1.0, seed=11)
    yield store, proxy
    proxy.stop()
    store.stop()


def test_image_releases_complete_at_a_30_percent_fault_rate(faulty_registry, registry, tmp_path, isolated_home):
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), faulty_registry.host)
    for index in range(CAMPAIGN):
        layout = str(tmp_path / "img{}".format(index))
        digest = make_layout(layout, {"/app/data": os.urandom(200_000), "/app/n": str(index).encode()})
        manifest, runfiles = releases.container_release(str(tmp_path / "r{}".format(index)), layout, "faults/app", "ci",
                                                        ["v{}".format(index)])
        env = dict(RETRIES, RELEASEKIT_CONFIG=config, CI="true", RELEASEKIT_REPORT=str(tmp_path / "record.json"))
        result = releases.publish(manifest, runfiles, env)
        assert result.returncode == 0, "release {}: {}".format(index, result.stderr)
        assert json.load(open(tmp_path / "record.json"))["digest"] == digest
        copy = subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                               "docker://{}/prod/faults/app:v{}".format(registry.host, index),
                               "oci:{}".format(tmp_path / "copy{}".format(index))], capture_output=True, text=True)
        assert copy.returncode == 0, copy.stderr
    assert sum(faulty_registry.injected.values()) >= CAMPAIGN
    assert all(count > 0 for count in faulty_registry.injected.values()), faulty_registry.injected


def test_jar_releases_complete_at_a_30_percent_fault_rate(faulty_store, tmp_path, isolated_home):
    store, proxy = faulty_store
    os.makedirs(tmp_path / "maven")
    maven = MavenClient(str(tmp_path / "maven"))
    config = releases.write_store_config(str(tmp_path / "releasekit.yaml"), proxy.url + "/releases", proxy.url + "/snapshots")
    for index in range(CAMPAIGN):
        jar = releases.make_jar(str(tmp_path / "lib{}.jar".format(index)), "release {}".format(index))
        manifest, runfiles = releases.jar_release(str(tmp_path), jar, "com.example.faults:lib:1.0.{}".format(index),
                                                  name="lib{}".format(index))
        env = dict(RETRIES, RELEASEKIT_CONFIG=config, CI="true", RELEASEKIT_MAVEN_USERNAME=TEST_USER,
                   RELEASEKIT_MAVEN_PASSWORD=TEST_PASSWORD)
        result = releases.publish(manifest, runfiles, env)
        assert result.returncode == 0, "release {}: {}".format(index, result.stderr)
    metadata = open(store.path("releases/com/example/faults/lib/maven-metadata.xml")).read()
    assert all("<version>1.0.{}</version>".format(i) in metadata for i in range(CAMPAIGN))
    for index in (0, CAMPAIGN - 1):
        resolved = maven.get("com.example.faults:lib:1.0.{}".format(index), store.url + "/releases")
        assert resolved.returncode == 0, resolved.stdout[-2000:]
    assert sum(proxy.injected.values()) >= CAMPAIGN
    leftovers = [d for d, _, _ in os.walk(store.root) if d.endswith(".releasekit-lock")]
    assert leftovers == []  # a lock whose MKCOL answer was lost is found and removed
