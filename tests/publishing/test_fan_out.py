"""One release to several registries: the channel's primary and its mirrors, each with its own credentials, against
real registries; one of three fails mid-push behind the fault proxy."""

import json

import pytest
import requests

from conftest import TEST_PASSWORD, TEST_USER
from helpers import releases
from helpers.images import make_layout
from helpers.servers import Registry
from helpers.slow_proxy import SlowProxy
from releasekit.core.config import parse_config
from releasekit.core.errors import ConfigError
from releasekit.core.mirrors import registries

MIRROR_USER, MIRROR_PASSWORD = "mirror-releaser", "Mirror-pa55-never-printed-2c9e"
FAST_FAIL = {"RELEASEKIT_RETRY_ATTEMPTS": "2", "RELEASEKIT_RETRY_TOTAL_SECONDS": "5"}


@pytest.fixture(scope="module")
def three_registries(tmp_path_factory):
    """The primary (the shared test credentials), a mirror with credentials of its own, and an anonymous mirror."""
    servers = [Registry(str(tmp_path_factory.mktemp("primary")), TEST_USER, TEST_PASSWORD),
               Registry(str(tmp_path_factory.mktemp("eu")), MIRROR_USER, MIRROR_PASSWORD),
               Registry(str(tmp_path_factory.mktemp("airgap")))]
    yield servers
    for server in servers:
        server.stop()


def manifest_there(registry, repository, reference):
    auth = (registry.username, registry.password) if registry.username else None
    response = requests.head("{}/v2/{}/manifests/{}".format(registry.url, repository, reference), auth=auth, timeout=10,
                             headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    return response.status_code == 200


def write_config(path, primary, eu_host, airgap_host):
    with open(path, "w") as handle:
        handle.write("channels:\n"
                     "  ci:\n"
                     "    registry: 'http://{}/prod'\n"
                     "    mirrors: ['http://{}/prod', {{url: 'http://{}/prod', name: airgap}}]\n"
                     "  dev: {{registry: 'http://{}/dev'}}\n".format(primary, eu_host, airgap_host, primary))
    return path


def test_every_registry_gets_the_image_and_tags_move_only_when_all_hold_it(three_registries, tmp_path, isolated_home):
    primary, eu, airgap = three_registries
    digest = make_layout(str(tmp_path / "img"), {"/data/blob.bin": b"fan-out " * 300000, "/app/run": b"#!/bin/sh\n"})
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "team/app", "ci", ["stable"])
    # The third registry drops every blob upload of the image mid-body: its checks, marker and records go through.
    failing = SlowProxy(airgap.host, fault_rate=1.0, faults=("reset",), seed=7,
                        fault_only=lambda method, path: method in ("PUT", "PATCH") and "/team/app/blobs/" in path)
    config = write_config(str(tmp_path / "releasekit.yaml"), primary.host, eu.host, failing.host)
    record_path = tmp_path / "record.json"
    mirror = eu.host.replace(".", "_").replace(":", "_")
    env = dict(FAST_FAIL, RELEASEKIT_CONFIG=config, CI="true", RELEASEKIT_REPORT=str(record_path),
               RELEASEKIT_REGISTRY_USERNAME=TEST_USER, RELEASEKIT_REGISTRY_PASSWORD=TEST_PASSWORD,
               **{"RELEASEKIT_REGISTRY_{}_USERNAME".format(mirror): MIRROR_USER,
                  "RELEASEKIT_REGISTRY_{}_PASSWORD".format(mirror): MIRROR_PASSWORD})
    try:
        failed = releases.publish(manifest, runfiles, env)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        print(failed.stderr)
        assert failing.host in failed.stderr and "no tag moved at any registry" in failed.stderr
        assert "Traceback" not in failed.stderr and not record_path.exists()
        # The healthy registries hold the image by digest, untagged; the failing one does not hold it at all.
        for registry in (primary, eu):
            assert manifest_there(registry, "prod/team/app", digest)
            assert registry.tags("prod/team/app") == []
        assert not manifest_there(airgap, "prod/team/app", digest)

        failing.fault_rate = 0.0  # the registry is back: a re-run completes the release everywhere
        again = releases.publish(manifest, runfiles, env)
        assert again.returncode == 0, again.stderr
        print(again.stdout)
        record = json.loads(record_path.read_text())
        assert record["reference"] == "{}/prod/team/app@{}".format(primary.host, digest)  # deploy YAML pins this one
        assert [entry["registry"] for entry in record["registries"]] == [primary.host, eu.host, failing.host]
        for entry in record["registries"]:
            assert entry["tags"] == [releases.COMMIT, "stable"] and entry["reference"].endswith("@" + digest)
        # The first run's blobs were there at the healthy registries; the third gets them now.
        assert [(e["blobs_skipped"], e["blobs_uploaded"]) for e in record["registries"]] == [(2, 0), (2, 0), (0, 2)]
        for registry in three_registries:
            # Beside the tags, the tag of the image's provenance (the OCI referrers fallback: sha256-<digest>).
            assert registry.tags("prod/team/app") == sorted([releases.COMMIT, "stable", digest.replace(":", "-")])
            assert registry.tags("prod/releasekit-channel")[0] == "ci"  # each registry carries the channel marker
        assert "and 2 mirrors" in again.stdout
        for output in (failed.stdout, failed.stderr, again.stdout, again.stderr, record_path.read_text()):
            assert TEST_PASSWORD not in output and MIRROR_PASSWORD not in output
    finally:
        failing.stop()


def test_a_mirror_never_gets_the_primary_registrys_credentials(three_registries, tmp_path, isolated_home):
    """Only the primary's variables are set: the mirror that needs its own is refused, the release fails, no tag."""
    primary, eu, airgap = three_registries
    make_layout(str(tmp_path / "img"), {"/x": b"only the primary's credentials"})
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "team/other", "ci")
    config = write_config(str(tmp_path / "releasekit.yaml"), primary.host, eu.host, airgap.host)
    result = releases.publish(manifest, runfiles, dict(FAST_FAIL, RELEASEKIT_CONFIG=config, CI="true",
                                                        RELEASEKIT_REGISTRY_USERNAME=TEST_USER,
                                                        RELEASEKIT_REGISTRY_PASSWORD=TEST_PASSWORD))
    assert result.returncode == 1
    assert eu.host in result.stderr and "requires credentials" in result.stderr
    assert "RELEASEKIT_REGISTRY_{}_USERNAME".format(eu.host.replace(".", "_").replace(":", "_")) in result.stderr
    assert TEST_PASSWORD not in result.stderr + result.stdout
    assert primary.tags("prod/team/other") == [] and airgap.tags("prod/team/other") == []


def test_every_registry_of_a_channel_is_kept_apart_from_the_other_channel():
    base = "channels:\n  ci: {{registry: 'reg.example.com/prod', mirrors: [{}]}}\n  dev: {{registry: {}}}\n"
    with pytest.raises(ConfigError, match=r"channels.dev.registry .* overlaps channels.ci.mirrors\[0\]"):
        parse_config(base.format("'eu.example.com/prod'", "'EU.example.com:443/prod/dev'"), "releasekit.yaml")
    with pytest.raises(ConfigError, match=r"are one registry"):
        parse_config(base.format("'reg.example.com:443/prod/'", "'reg.example.com/dev'"), "releasekit.yaml")
    with pytest.raises(ConfigError, match=r"both take their credentials from RELEASEKIT_REGISTRY_EU_USERNAME"):
        parse_config(base.format("{url: 'a.example.com/prod', name: eu}, {url: 'b.example.com/prod', name: EU}",
                                 "'reg.example.com/dev'"), "releasekit.yaml")
    config = parse_config(base.format("{url: 'eu.example.com/prod', name: eu}", "'reg.example.com/dev'"), "x")
    assert [d.host for d in registries(config, "ci")] == ["reg.example.com", "eu.example.com"]
    assert [d.name for d in registries(config, "ci")] == [None, "eu"]


def test_a_release_the_primary_refuses_writes_nothing_at_the_mirrors(three_registries, tmp_path, isolated_home):
    """The primary's repository belongs to another label. Before: every registry's checks and writes ran at once, so
    the mirrors got this release's channel marker and owner record although the primary refused it; the rightful
    owner's next release was then refused at the mirrors."""
    primary, eu, airgap = three_registries
    make_layout(str(tmp_path / "img"), {"/x": b"owned at the primary"})
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "team/owned", "ci")
    credentials = dict(FAST_FAIL, CI="true", RELEASEKIT_REGISTRY_USERNAME=TEST_USER,
                       RELEASEKIT_REGISTRY_PASSWORD=TEST_PASSWORD)
    alone = tmp_path / "alone.yaml"
    alone.write_text("channels:\n  ci: {{registry: 'http://{0}/owned'}}\n  dev: {{registry: 'http://{0}/owned-dev'}}\n"
                     .format(primary.host))
    first = releases.publish(manifest, runfiles, dict(credentials, RELEASEKIT_CONFIG=str(alone)))
    assert first.returncode == 0, first.stderr
    with open(manifest) as handle:  # a copy of the BUILD file: another label, the same repository
        copied = dict(json.load(handle), release="//copy:app", target="//copy:app.ci")
    with open(manifest, "w") as handle:
        json.dump(copied, handle)
    mirrored = tmp_path / "mirrored.yaml"
    mirrored.write_text("channels:\n  ci:\n    registry: 'http://{0}/owned'\n    mirrors: ['http://{1}/owned', "
                        "'http://{2}/owned']\n  dev: {{registry: 'http://{0}/owned-dev'}}\n".format(
                            primary.host, eu.host, airgap.host))
    mirror = eu.host.replace(".", "_").replace(":", "_")
    mirror_credentials = {"RELEASEKIT_REGISTRY_{}_USERNAME".format(mirror): MIRROR_USER,
                          "RELEASEKIT_REGISTRY_{}_PASSWORD".format(mirror): MIRROR_PASSWORD}
    refused = releases.publish(manifest, runfiles, dict(credentials, RELEASEKIT_CONFIG=str(mirrored),
                                                        **mirror_credentials))
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "belongs to //app:app" in refused.stderr and "Traceback" not in refused.stderr
    for registry in (eu, airgap):
        assert registry.tags("owned/releasekit-channel") == [], registry.host
        assert registry.tags("owned/team/owned") == []
