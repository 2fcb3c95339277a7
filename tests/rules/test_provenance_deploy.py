"""Deploy YAML CD can trust: the example's deploy release built by real Bazel and run as CI runs it, with a signing key
and a deploy_registry. Its images, its YAML in the store and its Flux OCI artifact each carry signed provenance;
skopeo pulls the artifact as Flux would, oras-py finds its referrer, and `releasekit verify` passes it, then refuses
the YAML once tampered with and an image pinned in it once its provenance is gone."""

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import requests

from conftest import TEST_SIGNING_KEY, key_secrets, public_key_file
from helpers import releases
from helpers.attestations import skopeo_copy, verified_statement
from helpers.workspace import git

LABEL = "//services/hello:hello_deploy"
REPOSITORY_URL = "https://git.example.com/team/monorepo"
CI_ENGINE = {"GITHUB_SERVER_URL": "https://git.example.com", "GITHUB_REPOSITORY": "team/monorepo",
             "GITHUB_REF_NAME": "main", "GITHUB_RUN_ID": "77"}


def _releasekit(*args, env):
    return subprocess.run([sys.executable, releases.ENTRY, *args], capture_output=True, text=True, env=env, timeout=300)


def test_deploy_yaml_as_a_signed_flux_artifact_and_verify_before_rollout(example_workspace, registry, tmp_path):
    import oras.client

    config = tmp_path / "releasekit.yaml"
    store = tmp_path / "deploy"
    config.write_text(
        "channels:\n"
        "  ci: {{registry: 'http://{0}/trust', deploy: 'file://{1}/ci', deploy_registry: 'http://{0}/trust-deploy'}}\n"
        "  dev: {{registry: 'http://{0}/trust-dev', deploy: 'file://{1}/dev'}}\n".format(registry.host, store))
    ci_pub = public_key_file(TEST_SIGNING_KEY, tmp_path / "ci.pub")
    example_workspace.bazel("build", LABEL + ".ci")
    executable = os.path.join(example_workspace.path, "bazel-bin/services/hello/hello_deploy.ci")
    older = git(example_workspace.path, "rev-parse", "HEAD").strip()
    newer = example_workspace.commit("a newer commit")
    env = dict(os.environ, **CI_ENGINE, RELEASEKIT_CONFIG=str(config), CI="true",
               XDG_CACHE_HOME=str(tmp_path / "cache"), BUILD_WORKSPACE_DIRECTORY=example_workspace.path,
               RELEASEKIT_SIGNING_KEY=TEST_SIGNING_KEY)
    outputs = []
    for commit, version in ((newer, "2.0.0"), (older, "1.0.0")):  # the older commit's run finishes last
        result = subprocess.run([executable], env=dict(env, RELEASEKIT_VERSION=version, RELEASEKIT_COMMIT=commit),
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    assert "provenance signed by the ci key" in outputs[0]
    # The store: the YAML, and its provenance beside it, which securesystemslib verifies.
    version_dir = store / "ci/services/hello/hello_deploy/2.0.0"
    statement = verified_statement((version_dir / "provenance.intoto.jsonl").read_bytes(), ci_pub)
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects == {name: hashlib.sha256((version_dir / name).read_bytes()).hexdigest()
                        for name in ("hello.yaml", "release.json")}
    # The registry: a Flux artifact per version, `latest` left at the newer commit's.
    repository = "trust-deploy/services/hello/hello_deploy"
    assert registry.tags(repository)[:3] == ["1.0.0", "2.0.0", "latest"]
    blobs = skopeo_copy(registry, repository + ":latest", tmp_path / "pulled")
    index = json.loads(open(tmp_path / "pulled" / "index.json").read())
    manifest = json.loads(blobs[index["manifests"][0]["digest"]])
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.flux.config.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == ["application/vnd.cncf.flux.content.v1.tar+gzip"]
    assert manifest["annotations"]["org.opencontainers.image.source"] == REPOSITORY_URL
    assert manifest["annotations"]["org.opencontainers.image.revision"] == "main@sha1:" + newer
    assert manifest["annotations"]["org.opencontainers.image.created"].endswith("Z")
    # What Flux does with it: untar the first layer; its content is the YAML files, as published to the store.
    with tarfile.open(fileobj=io.BytesIO(blobs[manifest["layers"][0]["digest"]]), mode="r:gz") as archive:
        content = {member.name: archive.extractfile(member).read() for member in archive.getmembers()}
    assert content == {"hello.yaml": (version_dir / "hello.yaml").read_bytes()}
    assert "@sha256:" in content["hello.yaml"].decode() and "image: hello-image" not in content["hello.yaml"].decode()
    # oras-py finds the artifact's provenance through the referrers tag-schema fallback.
    artifact_digest = index["manifests"][0]["digest"]
    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    referrers = client.get_manifest("{}/{}:{}".format(registry.host, repository, artifact_digest.replace(":", "-")))
    assert [entry["artifactType"] for entry in referrers["manifests"]] == ["application/vnd.in-toto+json"]
    # verify, from the store and from the registry: the YAML and every image it pins.
    verify_args = ["--key", ci_pub, "--repository", REPOSITORY_URL + ".git", "--branch", "main",
                   "--config", str(config)]
    clean_env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    for source in ("store", "registry"):
        checked = _releasekit("verify", LABEL, "--from", source, *verify_args, env=clean_env)
        assert checked.returncode == 0, checked.stderr
        assert "verified {}/trust/examples/hello@sha256:".format(registry.host) in checked.stdout, checked.stdout
    shown = _releasekit("deployed", LABEL, "--from", "registry", "--config", str(config), env=clean_env)
    assert shown.returncode == 0 and "main@sha1:" + newer in shown.stdout and ": present" in shown.stdout, shown.stdout
    # Tampered YAML in the store: refused, naming the file.
    pinned = (version_dir / "hello.yaml").read_text()
    (version_dir / "hello.yaml").write_text(pinned.replace("replicas: 2", "replicas: 20"))
    tampered = _releasekit("verify", LABEL, "--version", "2.0.0", *verify_args, env=clean_env)
    assert tampered.returncode == 3 and "subject hello.yaml is sha256:" in tampered.stderr, tampered.stderr
    (version_dir / "hello.yaml").write_text(pinned)
    # An image pinned in the YAML whose provenance is gone: the YAML's own provenance is not enough.
    image = [line.split("image: ")[1] for line in pinned.splitlines() if "image: " in line][0]
    image_repository, digest = image.split("/", 1)[1].split("@")
    fallback = requests.get("{}/v2/{}/manifests/{}".format(registry.url, image_repository, digest.replace(":", "-")),
                            headers={"Accept": "application/vnd.oci.image.index.v1+json"}, timeout=10)
    index_digest = fallback.headers["Docker-Content-Digest"]
    assert requests.delete("{}/v2/{}/manifests/{}".format(registry.url, image_repository, index_digest),
                           timeout=10).status_code == 202
    for source in ("store", "registry"):
        refused = _releasekit("verify", LABEL, "--from", source, *verify_args, env=clean_env)
        assert refused.returncode == 3, refused.stderr
        assert "pinned image {}".format(image) in refused.stderr and "has no provenance" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    for text in outputs:
        for secret in key_secrets(TEST_SIGNING_KEY):
            assert secret not in text
    envelope = json.loads((version_dir / "provenance.intoto.jsonl").read_text())
    assert all(secret not in base64.b64decode(envelope["payload"]).decode() for secret in key_secrets(TEST_SIGNING_KEY))
