"""The image publisher against the real CNCF distribution registry, checked with skopeo."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import TEST_PASSWORD, TEST_USER
from helpers import releases
from helpers.images import corrupt_one_layer, make_docker_archive, make_layout
from releasekit.core.destinations import parse_registry
from releasekit.core.credentials import ANONYMOUS
from releasekit.core.errors import ImageError
from releasekit.core.http import RetryPolicy
from releasekit.publishing.image import build_plan
from releasekit.publishing.image_plan import ImagePlan
from releasekit.publishing.blob_locator import BlobLocator
from releasekit.publishing.registry import RegistryClient

FAST_FAIL = {"RELEASEKIT_RETRY_ATTEMPTS": "2", "RELEASEKIT_RETRY_TOTAL_SECONDS": "5"}


def random_layout(path, megabytes=1, seed=b"x"):
    data = os.urandom(megabytes << 20) if seed is None else (seed * (megabytes << 20))[: megabytes << 20]
    return make_layout(path, {"/data/blob.bin": data, "/app/run": b"#!/bin/sh\n"}, entrypoint=["/app/run"])


def client_for(registry, chunk_size=64 << 20, locator=None):
    destination = parse_registry(registry.url)
    return RegistryClient(destination, ANONYMOUS, RetryPolicy(attempts=2, total_seconds=5), chunk_size=chunk_size,
                          locator=locator or BlobLocator())


def plan_for(path):
    return ImagePlan(build_plan(path), path)


def test_push_is_accepted_by_skopeo_and_repush_sends_nothing(registry, tmp_path, isolated_home):
    digest = random_layout(str(tmp_path / "img"), seed=None)
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "team/app", "ci", ["stable"])
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    env = {"RELEASEKIT_CONFIG": config, "CI": "true", "RELEASEKIT_REPORT": str(tmp_path / "record.json")}

    first = releases.publish(manifest, runfiles, env)
    assert first.returncode == 0, first.stderr
    record = json.load(open(tmp_path / "record.json"))
    assert record["digest"] == digest
    assert record["tags"] == [releases.COMMIT, "stable"]
    assert record["bytes_uploaded"] > (1 << 20)
    assert record["repository"] == registry.host + "/prod/team/app"
    assert "published" in first.stdout and digest[:19] in first.stdout

    inspected = registry.inspect("prod/team/app:stable")
    assert inspected["Digest"] == digest
    # The commit, the pointer, and the referrers fallback tag of the image's provenance.
    assert sorted(inspected["RepoTags"]) == sorted([releases.COMMIT, "stable", digest.replace(":", "-")])
    copy = subprocess.run(
        ["skopeo", "copy", "--quiet", "--src-tls-verify=false",
         "docker://{}/prod/team/app:stable".format(registry.host),
         "oci:{}".format(tmp_path / "copied")], capture_output=True, text=True,
    )
    assert copy.returncode == 0, copy.stderr

    second = releases.publish(manifest, runfiles, env)
    assert second.returncode == 0, second.stderr
    again = json.load(open(tmp_path / "record.json"))
    assert again["bytes_uploaded"] == 0
    assert again["blobs_skipped"] == 2
    assert again["blobs_uploaded"] == 0
    # As the other kinds say of a re-run that writes nothing (before: "published").
    assert again["status"] == "already published"
    assert "//app:app already published " + digest[:19] in second.stdout, second.stdout


def test_a_new_tag_of_an_image_already_there_is_published(registry, tmp_path, isolated_home):
    """Every blob there already, but a tag that is not: published, not already published."""
    digest = random_layout(str(tmp_path / "img"), seed=b"retag")
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "team/retag", "dev")
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    env = {"RELEASEKIT_CONFIG": config, "RELEASEKIT_REPORT": str(tmp_path / "record.json")}
    assert releases.publish(manifest, runfiles, env).returncode == 0
    other_commit = releases.COMMIT[::-1]
    result = releases.publish(manifest, runfiles, dict(env, RELEASEKIT_COMMIT=other_commit))
    assert result.returncode == 0, result.stderr
    record = json.load(open(tmp_path / "record.json"))
    assert record["status"] == "published" and record["blobs_uploaded"] == 0, record
    assert registry.inspect("dev/team/retag:" + record["tags"][0])["Digest"] == digest


def test_docker_archive_input_pushes_the_same_image(registry, tmp_path):
    random_layout(str(tmp_path / "img"), seed=b"archive")
    tar = make_docker_archive(str(tmp_path / "img"), str(tmp_path / "img.tar"))
    result = client_for(registry).push("archive/app", ImagePlan(build_plan(tar), tar), ["v1"])
    assert registry.inspect("archive/app:v1")["Digest"] == result.digest
    layers = registry.inspect("archive/app:v1")["Layers"]
    assert len(layers) == 1


def test_chunked_upload_of_a_large_blob(registry, tmp_path):
    random_layout(str(tmp_path / "img"), megabytes=3, seed=None)
    client = client_for(registry, chunk_size=1 << 20)
    result = client.push("chunked/app", plan_for(str(tmp_path / "img")), ["v1"])
    assert result.blobs_uploaded == 2
    copy = subprocess.run(
        ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://{}/chunked/app:v1".format(registry.host),
         "oci:{}".format(tmp_path / "copied")], capture_output=True, text=True,
    )
    assert copy.returncode == 0, copy.stderr


def test_blobs_known_in_another_repository_are_mounted(registry, tmp_path):
    random_layout(str(tmp_path / "img"), seed=b"mount")
    locator = BlobLocator(str(tmp_path / "locations.json"))
    client_for(registry, locator=locator).push("mount/first", plan_for(str(tmp_path / "img")), ["v1"])
    reloaded = BlobLocator(str(tmp_path / "locations.json"))
    second = client_for(registry, locator=reloaded).push("mount/second", plan_for(str(tmp_path / "img")), ["v1"])
    assert second.blobs_mounted == 2
    assert second.bytes_uploaded == 0
    assert registry.inspect("mount/second:v1")["Digest"] == second.digest


def test_corrupt_layout_fails_before_any_manifest(registry, tmp_path, isolated_home):
    random_layout(str(tmp_path / "img"), seed=b"corrupt")
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "corrupt/app")
    bad = corrupt_one_layer(str(tmp_path / "img"))  # after the build checked it
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    result = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config})
    assert result.returncode != 0
    assert "ImageError" in result.stderr and bad in result.stderr and "corrupt" in result.stderr
    assert "Traceback" not in result.stderr
    assert registry.tags("dev/corrupt/app") == []


def test_ci_variant_refuses_without_ci_and_pushes_nothing(registry, tmp_path, isolated_home):
    random_layout(str(tmp_path / "img"), seed=b"refuse")
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "refused/app", "ci")
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    result = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config})
    assert result.returncode == 3
    assert "CI=true is not set" in result.stderr and "bazel run //app:app.dev" in result.stderr
    assert "prod/refused/app" not in registry.catalog()


def test_overlapping_dev_channel_is_refused(registry, tmp_path, isolated_home):
    random_layout(str(tmp_path / "img"), seed=b"overlap")
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "overlap/app")
    config = tmp_path / "releasekit.yaml"
    config.write_text("channels:\n  ci: {registry: 'http://%s/prod'}\n  dev: {registry: 'http://%s/prod/dev'}\n"
                      % (registry.host, registry.host))
    result = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": str(config)})
    assert result.returncode == 2
    assert "overlaps" in result.stderr and "ConfigError" in result.stderr
    assert not [r for r in registry.catalog() if "overlap" in r]


def test_basic_auth_from_environment(auth_registry, tmp_path, isolated_home):
    digest = random_layout(str(tmp_path / "img"), seed=b"auth")
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "auth/app")
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), auth_registry.host)
    env = {"RELEASEKIT_CONFIG": config, "RELEASEKIT_REGISTRY_USERNAME": TEST_USER,
           "RELEASEKIT_REGISTRY_PASSWORD": TEST_PASSWORD, "RELEASEKIT_REPORT": str(tmp_path / "record.json")}
    result = releases.publish(manifest, runfiles, env, "--verbose")
    assert result.returncode == 0, result.stderr
    tag = json.load(open(tmp_path / "record.json"))["tags"][0]
    assert auth_registry.inspect("dev/auth/app:" + tag)["Digest"] == digest
    assert TEST_PASSWORD not in result.stdout + result.stderr + (tmp_path / "record.json").read_text()


def test_basic_auth_from_docker_config(auth_registry, tmp_path, isolated_home):
    import base64

    random_layout(str(tmp_path / "img"), seed=b"dockercfg")
    docker_dir = tmp_path / "docker"
    docker_dir.mkdir()
    token = base64.b64encode("{}:{}".format(TEST_USER, TEST_PASSWORD).encode()).decode()
    (docker_dir / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "dockercfg/app")
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), auth_registry.host)
    result = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config, "DOCKER_CONFIG": str(docker_dir)})
    assert result.returncode == 0, result.stderr
    assert auth_registry.tags("dev/dockercfg/app")
    assert TEST_PASSWORD not in result.stdout + result.stderr and token not in result.stdout + result.stderr


@pytest.mark.parametrize("password,expected",
                         [("wrong-" + TEST_PASSWORD, "refused the credentials"), (None, "requires credentials")])
def test_wrong_or_missing_credentials_fail_clearly(auth_registry, tmp_path, isolated_home, password, expected):
    random_layout(str(tmp_path / "img"), seed=b"wrong")
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "wrong/app")
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), auth_registry.host)
    env = {"RELEASEKIT_CONFIG": config, **FAST_FAIL}
    if password:
        env.update(RELEASEKIT_REGISTRY_USERNAME=TEST_USER, RELEASEKIT_REGISTRY_PASSWORD=password)
    result = releases.publish(manifest, runfiles, env, "--verbose")
    assert result.returncode != 0
    assert "AuthError" in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr
    assert TEST_PASSWORD not in result.stdout + result.stderr
    assert auth_registry.tags("dev/wrong/app") == []


def test_unreachable_registry_fails_within_bounds(tmp_path, isolated_home):
    from helpers.servers import free_port

    random_layout(str(tmp_path / "img"), seed=b"down")
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "down/app")
    port = free_port()
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), "127.0.0.1:{}".format(port))
    result = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config, **FAST_FAIL})
    assert result.returncode != 0
    assert "connection refused" in result.stderr and "gave up after 2 attempts" in result.stderr
    assert "Traceback" not in result.stderr
    # Where it tried to connect (before: only the operation, "Could not check dev/releasekit-channel:ci: ...").
    assert "at the registry 127.0.0.1:{}: ".format(port) in result.stderr, result.stderr
    # A registry named without a port: the scheme's default port, written out.
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), "registry.releasekit.invalid", scheme="https")
    result = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config, **FAST_FAIL})
    assert result.returncode != 0, result.stderr
    assert "at the registry registry.releasekit.invalid:443: " in result.stderr, result.stderr


def test_https_to_a_plain_http_registry_says_how_to_fix(registry, tmp_path, isolated_home):
    random_layout(str(tmp_path / "img"), seed=b"tls")
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "tls/app")
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host, scheme="https")
    result = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config, **FAST_FAIL})
    assert result.returncode != 0
    assert "TLSError" in result.stderr and "http://" in result.stderr
    assert "(the registry {})".format(registry.host) in result.stderr, result.stderr


@pytest.mark.parametrize("key", ["credHelpers", "credsStore"])
def test_credential_helper_from_docker_config(auth_registry, tmp_path, isolated_home, key):
    """credHelpers (per registry) and credsStore (for every registry): docker-credential-<name> is run with the
    registry on stdin, as Docker does."""
    random_layout(str(tmp_path / "img"), seed=key.encode())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-releasekit-test"
    helper.write_text(
        "#!/bin/sh\nread server\n[ \"$1\" = get ] || exit 1\n"
        "printf '{\"ServerURL\":\"%%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}' \"$server\"\n" % (TEST_USER,
                                                                                                  TEST_PASSWORD)
    )
    helper.chmod(0o755)
    docker_dir = tmp_path / "docker"
    docker_dir.mkdir()
    store = {auth_registry.host: "releasekit-test"} if key == "credHelpers" else "releasekit-test"
    (docker_dir / "config.json").write_text(json.dumps({key: store}))
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "helper/" + key.lower())
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), auth_registry.host)
    env = {"RELEASEKIT_CONFIG": config, "DOCKER_CONFIG": str(docker_dir),
           "PATH": "{}:{}".format(bin_dir, os.environ["PATH"])}
    result = releases.publish(manifest, runfiles, env, "--verbose")
    assert result.returncode == 0, result.stderr
    assert auth_registry.tags("dev/helper/" + key.lower())
    assert TEST_PASSWORD not in result.stdout + result.stderr


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    from helpers.servers import Registry
    from helpers.token_service import TokenService

    workdir = tmp_path_factory.mktemp("token-registry")
    service = TokenService(str(workdir), TEST_USER, TEST_PASSWORD)
    server = Registry(str(workdir / "registry"), TEST_USER, TEST_PASSWORD, auth_config=service.registry_auth_config())
    yield server, service
    server.stop()
    service.stop()


def test_bearer_token_challenge(token_registry, tmp_path, isolated_home):
    registry, service = token_registry
    digest = random_layout(str(tmp_path / "img"), seed=b"bearer")
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "bearer/app")
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    env = {"RELEASEKIT_CONFIG": config, "RELEASEKIT_REGISTRY_USERNAME": TEST_USER,
           "RELEASEKIT_REGISTRY_PASSWORD": TEST_PASSWORD, "RELEASEKIT_REPORT": str(tmp_path / "record.json")}
    result = releases.publish(manifest, runfiles, env, "--verbose")
    assert result.returncode == 0, result.stderr
    tag = json.load(open(tmp_path / "record.json"))["tags"][0]
    assert registry.inspect("dev/bearer/app:" + tag)["Digest"] == digest
    scopes = [s for request in service.requests for s in request.get("scope", [])]
    assert "repository:dev/bearer/app:pull,push" in scopes
    assert all(request.get("service") == ["releasekit-test-registry"] for request in service.requests)
    assert TEST_PASSWORD not in result.stdout + result.stderr + (tmp_path / "record.json").read_text()

    env["RELEASEKIT_REGISTRY_PASSWORD"] = "wrong-" + TEST_PASSWORD
    denied = releases.publish(manifest, runfiles, dict(env, **FAST_FAIL), "--verbose")
    assert denied.returncode != 0
    assert "AuthError" in denied.stderr and "token service" in denied.stderr
    assert "refused the credentials" in denied.stderr
    assert TEST_PASSWORD not in denied.stdout + denied.stderr


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory):
    from helpers.servers import Registry
    from helpers.tls import make_certificates

    workdir = tmp_path_factory.mktemp("tls-registry")
    ca, certificate, key = make_certificates(str(workdir))
    server = Registry(str(workdir / "registry"), tls=(certificate, key))
    server.ca = ca
    yield server
    server.stop()


def _tls_config(path, host, entry):
    path.write_text("channels:\n  dev: {}\n".format(entry.format(host=host)))
    return str(path)


def test_tls_is_verified_by_default_and_trusts_a_configured_ca(tls_registry, tmp_path, isolated_home):
    import requests

    digest = random_layout(str(tmp_path / "img"), seed=b"tls-ok")
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "tls/app")
    untrusted = _tls_config(tmp_path / "untrusted.yaml", tls_registry.host, "{{registry: 'https://{host}/dev'}}")
    refused = releases.publish(manifest, runfiles, dict(FAST_FAIL, RELEASEKIT_CONFIG=untrusted,
                                                        RELEASEKIT_REGISTRY_PASSWORD=TEST_PASSWORD,
                                                        RELEASEKIT_REGISTRY_USERNAME=TEST_USER))
    assert refused.returncode != 0
    assert "TLSError" in refused.stderr and "certificate not trusted" in refused.stderr
    assert "ca_bundle" in refused.stderr
    assert "Traceback" not in refused.stderr and TEST_PASSWORD not in refused.stdout + refused.stderr
    tags = requests.get(tls_registry.url + "/v2/dev/tls/app/tags/list", verify=tls_registry.ca, timeout=10)
    assert tags.status_code == 404  # nothing was pushed

    trusted = _tls_config(tmp_path / "trusted.yaml", tls_registry.host,
                          "{{registry: {{url: 'https://{host}/dev', ca_bundle: '" + tls_registry.ca + "'}}}}")
    result = releases.publish(manifest, runfiles,
                              {"RELEASEKIT_CONFIG": trusted, "RELEASEKIT_REPORT": str(tmp_path / "r.json")})
    assert result.returncode == 0, result.stderr
    assert json.load(open(tmp_path / "r.json"))["digest"] == digest


def test_unverified_tls_only_where_the_config_says_so(tls_registry, tmp_path, isolated_home):
    random_layout(str(tmp_path / "img"), seed=b"tls-insecure")
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "tls/insecure")
    insecure = _tls_config(tmp_path / "insecure.yaml", tls_registry.host,
                           "{{registry: {{url: 'https://{host}/dev', insecure: true}}}}")
    result = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": insecure})
    assert result.returncode == 0, result.stderr


def _skopeo_layout(source, destination, tag):
    subprocess.run(["skopeo", "copy", "--quiet", "oci:" + source, "oci:{}:{}".format(destination, tag)],
                   check=True, capture_output=True)


def test_an_image_changed_after_the_build_is_refused_before_any_request(registry, tmp_path, isolated_home):
    """The plan says what the build checked; umoci rewriting the layout afterwards must not publish either image."""
    make_layout(str(tmp_path / "src"), {"/app/version": b"one"})
    _skopeo_layout(str(tmp_path / "src"), str(tmp_path / "img"), "latest")
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "team/changed-after-build")
    (tmp_path / "extra.txt").write_text("two")
    subprocess.run(["umoci", "insert", "--image", str(tmp_path / "img") + ":latest", str(tmp_path / "extra.txt"),
                    "/app/extra.txt"], check=True, capture_output=True)
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    result = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config})
    assert result.returncode != 0
    assert "//app:app.dev: the image input changed after the build" in result.stderr
    assert "Nothing was published" in result.stderr and "Traceback" not in result.stderr
    assert not any(repository.endswith("team/changed-after-build") for repository in registry.catalog())


def test_a_layout_naming_one_image_under_several_tags_is_one_image(registry, tmp_path, isolated_home):
    digest = make_layout(str(tmp_path / "src"), {"/app/version": b"tagged twice"})
    _skopeo_layout(str(tmp_path / "src"), str(tmp_path / "img"), "v1")
    subprocess.run(["umoci", "tag", "--image", str(tmp_path / "img") + ":v1", "stable"], check=True,
                   capture_output=True)
    with open(tmp_path / "img" / "index.json") as handle:
        assert [entry["digest"] for entry in json.load(handle)["manifests"]] == [digest, digest]
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "team/two-tags")
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    result = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config})
    assert result.returncode == 0, result.stderr
    assert digest[:19] in result.stdout


def _flat_multi_platform_layout(tmp_path):
    """index.json listing one manifest per platform, as `skopeo copy --all` of an index into a layout's top level."""
    layout = tmp_path / "multi"
    entries = []
    for arch in ("amd64", "arm64"):
        digest = make_layout(str(tmp_path / arch), {"/arch": arch.encode()})
        shutil.copytree(str(tmp_path / arch), str(layout), dirs_exist_ok=True)
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                        "size": os.path.getsize(layout / "blobs" / "sha256" / digest[7:]),
                        "platform": {"architecture": arch, "os": "linux"}})
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
    return layout, [entry["digest"] for entry in entries]


def test_a_flat_multi_platform_layout_is_pushed_as_one_image_index(registry, tmp_path, isolated_home):
    layout, children = _flat_multi_platform_layout(tmp_path)
    manifest, runfiles = releases.container_release(str(tmp_path), str(layout), "team/multi", "ci", ["stable"])
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    result = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config, "CI": "true",
                                                   "RELEASEKIT_REPORT": str(tmp_path / "record.json")})
    assert result.returncode == 0, result.stderr
    record = json.load(open(tmp_path / "record.json"))
    raw = subprocess.run(["skopeo", "inspect", "--raw", *registry.skopeo_args(),
                          "docker://{}/prod/team/multi:stable".format(registry.host)], capture_output=True, text=True,
                         check=True)
    index = json.loads(raw.stdout)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["digest"] for m in index["manifests"]] == children
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]
    copy = subprocess.run(["skopeo", "copy", "--all", "--quiet", *[a.replace("--tls-verify", "--src-tls-verify")
                                                                  for a in registry.skopeo_args()],
                           "docker://{}/prod/team/multi@{}".format(registry.host, record["digest"]),
                           "oci:{}".format(tmp_path / "copied")], capture_output=True, text=True)
    assert copy.returncode == 0, copy.stderr


def test_a_layout_of_several_different_images_is_refused_with_the_fix(tmp_path):
    layout, _ = _flat_multi_platform_layout(tmp_path)
    index = json.loads((layout / "index.json").read_text())
    for entry in index["manifests"]:
        entry.pop("platform")
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(ImageError,
                       match="index.json lists 2 different images .*; a release publishes one image. Keep one"):
        build_plan(str(layout))


def test_an_archive_holding_an_oci_layout_is_pushed_with_its_own_manifest(registry, tmp_path, isolated_home):
    """Docker 25+ `docker save` and `skopeo copy ... oci-archive:` write an OCI layout inside the tarball."""
    digest = make_layout(str(tmp_path / "src"), {"/app/version": b"archived"})
    subprocess.run(["skopeo", "copy", "--quiet", "oci:" + str(tmp_path / "src"),
                    "oci-archive:{}:v1".format(tmp_path / "image.tar")],
                   check=True, capture_output=True)
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "image.tar"), "team/oci-archive")
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    result = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config,
                                                   "RELEASEKIT_REPORT": str(tmp_path / "record.json")})
    assert result.returncode == 0, result.stderr
    record = json.load(open(tmp_path / "record.json"))
    assert record["digest"] == digest and "compressed_layers" not in record
    assert registry.inspect("dev/team/oci-archive:" + record["tags"][0])["Digest"] == digest


def test_an_image_index_is_pushed_children_first_then_by_digest_then_tags(registry, tmp_path, isolated_home):
    """A layout whose index.json names one image index: every child manifest, then the index by digest, then its
    tags."""
    from helpers.slow_proxy import KillGate, SlowProxy
    from releasekit.publishing.oci import OCI_INDEX, canonical_json
    from releasekit.publishing.layout_builder import write_blob

    layout, children = _flat_multi_platform_layout(tmp_path)
    index_entries = json.loads((layout / "index.json").read_text())["manifests"]
    content = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index_entries})
    index_digest = write_blob(str(layout), content)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_INDEX, "digest": index_digest, "size": len(content)}]}))
    gate = KillGate()
    proxy = SlowProxy(registry.host, gate=gate, name="registry")
    try:
        manifest, runfiles = releases.container_release(str(tmp_path), str(layout), "team/index", "ci", ["stable"])
        config = releases.write_config(str(tmp_path / "releasekit.yaml"), proxy.host)
        result = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config, "CI": "true"})
        assert result.returncode == 0, result.stderr
    finally:
        proxy.stop()
    puts = [path.rsplit("/manifests/", 1)[1] for _, method, path in gate.seen
            if method == "PUT" and "/team/index/manifests/" in path]
    # The image, then its provenance (the referrer by digest, then the fallback tag's index), then the pointer.
    referrer = [put for put in puts if put.startswith("sha256:") and put not in children + [index_digest]]
    assert len(referrer) == 1
    assert puts == children + [index_digest, releases.COMMIT] + referrer + [index_digest.replace(":", "-"), "stable"]
    raw = subprocess.run(["skopeo", "inspect", "--raw", *registry.skopeo_args(),
                          "docker://{}/prod/team/index:stable".format(registry.host)], capture_output=True, text=True,
                         check=True)
    assert json.loads(raw.stdout)["manifests"] == index_entries
    copy = subprocess.run(["skopeo", "copy", "--all", "--quiet", "--src-tls-verify=false",
                           "docker://{}/prod/team/index:stable".format(registry.host),
                           "oci:{}".format(tmp_path / "copied")],
                          capture_output=True, text=True)
    assert copy.returncode == 0, copy.stderr


def test_a_dry_run_checks_the_registry_read_only_and_says_so(auth_registry, tmp_path, isolated_home):
    """Before: a dry run returned before contacting the registry, so it passed with a wrong password."""
    from helpers.servers import free_port

    random_layout(str(tmp_path / "img"), seed=b"dry run")
    manifest, runfiles = releases.container_release(str(tmp_path), str(tmp_path / "img"), "dry/app", "ci")
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), auth_registry.host)
    env = {"RELEASEKIT_CONFIG": config, "CI": "true", "RELEASEKIT_REGISTRY_USERNAME": TEST_USER,
           "RELEASEKIT_REGISTRY_PASSWORD": TEST_PASSWORD}
    catalog = auth_registry.catalog()
    dry = releases.publish(manifest, runfiles, env, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would publish" in dry.stdout and "to upload in 2 blobs, 0 blobs there already" in dry.stdout
    claim = "dry run, nothing written: would claim {}/prod/releasekit-channel:ci".format(auth_registry.host)
    assert claim in dry.stdout
    assert auth_registry.catalog() == catalog  # read-only

    wrong = releases.publish(manifest, runfiles, dict(env, RELEASEKIT_REGISTRY_PASSWORD="wrong-password"), "--dry-run")
    assert wrong.returncode != 0 and "AuthError" in wrong.stderr and "wrong-password" not in wrong.stderr
    unreachable = releases.write_config(str(tmp_path / "down.yaml"), "127.0.0.1:{}".format(free_port()))
    down = releases.publish(manifest, runfiles, dict(env, RELEASEKIT_CONFIG=unreachable, RELEASEKIT_RETRY_ATTEMPTS="1"),
                            "--dry-run")
    assert down.returncode != 0 and "connection refused" in down.stderr.lower()

    assert releases.publish(manifest, runfiles, env).returncode == 0
    again = releases.publish(manifest, runfiles, dict(env, RELEASEKIT_DRY_RUN="true"))
    assert again.returncode == 0, again.stderr
    assert "0 B to upload in 0 blobs, 2 blobs there already" in again.stdout and "there already" in again.stdout


def test_a_dry_run_refuses_what_a_run_would_refuse(tmp_path, isolated_home):
    """A release version already published with other content: the dry run refuses (exit 3) and writes nothing."""
    store = tmp_path / "store"
    config = releases.write_store_config(str(tmp_path / "store.yaml"), "file://{}/releases".format(store),
                                         "file://{}/snapshots".format(store))
    first = releases.make_jar(str(tmp_path / "a.jar"), "first")
    manifest, runfiles = releases.jar_release(str(tmp_path), first, "com.example.dry:lib:1.0.0", "ci", name="a")
    assert releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config, "CI": "true"}).returncode == 0
    listing = sorted(os.path.relpath(os.path.join(d, n), store) for d, _, names in os.walk(store) for n in names)

    other = releases.make_jar(str(tmp_path / "b.jar"), "other content")
    manifest, runfiles = releases.jar_release(str(tmp_path), other, "com.example.dry:lib:1.0.0", "ci", name="b")
    refused = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config, "CI": "true"}, "--dry-run")
    assert refused.returncode == 3 and "already published with different content" in refused.stderr

    files = sorted(os.path.relpath(os.path.join(d, n), store) for d, _, names in os.walk(store) for n in names)
    assert files == listing
