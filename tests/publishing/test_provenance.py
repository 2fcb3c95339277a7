"""Signed provenance of releases, checked by tools that are not releasekit's, and `releasekit verify` refusing what
CD must not roll out: real registry (Debian's distribution 2.8, no referrers API), nginx WebDAV, moto S3, directory."""

import base64
import json
import os
import subprocess
import sys

import pytest

from conftest import TEST_DEV_SIGNING_KEY, TEST_PASSWORD, TEST_SIGNING_KEY, TEST_USER, key_secrets, public_key_file
from helpers import releases
from helpers.attestations import image_provenance, skopeo_referrers, verified_statement
from helpers.images import make_layout

REPOSITORY_URL = "https://git.example.com/team/monorepo.git"
# What a CI engine says of its run: the repository and branch a CD pipeline expects releases from.
CI_ENGINE = {"GITHUB_SERVER_URL": "https://git.example.com", "GITHUB_REPOSITORY": "team/monorepo",
             "GITHUB_REF_NAME": "main", "GITHUB_RUN_ID": "4242"}


def verify(target, key, config=None, *extra, branch="main", repository=REPOSITORY_URL, env=None):
    args = [sys.executable, releases.ENTRY, "verify", target, "--key", key, "--repository", repository,
            "--branch", branch, *extra]
    if config:
        args += ["--config", config]
    return subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, **(env or {})), timeout=120)


def assert_no_key(*texts):
    for text in texts:
        for secret in key_secrets(TEST_SIGNING_KEY) + key_secrets(TEST_DEV_SIGNING_KEY):
            assert secret not in text


@pytest.fixture
def keys(tmp_path):
    return (public_key_file(TEST_SIGNING_KEY, tmp_path / "ci.pub"),
            public_key_file(TEST_DEV_SIGNING_KEY, tmp_path / "dev.pub"))


def _image(tmp_path, name, repository, channel, content):
    layout = str(tmp_path / (name + "-layout"))
    digest = make_layout(layout, {"/app/data": content})
    manifest, runfiles = releases.container_release(str(tmp_path / name), layout, repository, channel, ["stable"])
    return digest, manifest, runfiles


def test_an_image_release_attaches_provenance_that_skopeo_finds_and_securesystemslib_verifies(
        registry, tmp_path, isolated_home, keys):
    ci_pub, dev_pub = keys
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    digest, manifest, runfiles = _image(tmp_path, "a", "prov/app", "ci", b"provenance")
    record_path = tmp_path / "record.json"
    result = releases.publish(manifest, runfiles, dict(CI_ENGINE, RELEASEKIT_CONFIG=config, CI="true",
                                                       RELEASEKIT_SIGNING_KEY=TEST_SIGNING_KEY,
                                                       RELEASEKIT_REPORT=str(record_path)))
    assert result.returncode == 0, result.stderr
    assert "provenance signed by the ci key" in result.stdout
    record = json.loads(record_path.read_text())
    assert record["provenance"]["signed_by"].startswith("ci key ")
    # An independent client finds it through the referrers tag-schema fallback, and the key verifies it.
    found = image_provenance(registry, "prod/prov/app", digest)
    assert len(found) == 1
    referrer, envelope = found[0]
    assert referrer["artifactType"] == "application/vnd.in-toto+json"
    assert referrer["layers"][0]["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    statement = verified_statement(envelope, ci_pub)
    assert statement["subject"] == [{"name": "{}/prod/prov/app".format(registry.host),
                                     "digest": {"sha256": digest.split(":")[1]}}]
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"]["channel"] == "ci" and build["externalParameters"]["target"] == "//app:app.ci"
    assert build["resolvedDependencies"] == [{"uri": "git+https://git.example.com/team/monorepo@refs/heads/main",
                                              "digest": {"gitCommit": releases.COMMIT}}]
    assert statement["predicate"]["runDetails"]["builder"]["id"] == \
        "https://git.example.com/team/monorepo/actions/runs/4242"
    from securesystemslib.exceptions import VerificationError

    with pytest.raises(VerificationError):
        verified_statement(envelope, dev_pub)
    # Written after the image and before the pointer: the stable tag names the image the provenance describes.
    assert registry.inspect("prod/prov/app:stable")["Digest"] == digest
    checked = verify("{}/prod/prov/app:stable".format(registry.host), ci_pub, config)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("verified {}/prod/prov/app@{}: signed by key".format(registry.host, digest))
    other = verify("{}/prod/prov/app@{}".format(registry.host, digest), dev_pub, config)
    assert other.returncode == 3 and "signed by another key" in other.stderr and len(other.stderr.splitlines()) == 1
    for branch, repository, said in (("release", REPOSITORY_URL, "branch main, not release"),
                                     ("main", "https://git.example.com/other/repo", "repository")):
        refused = verify("{}/prod/prov/app:stable".format(registry.host), ci_pub, config, branch=branch,
                         repository=repository)
        assert refused.returncode == 3 and said in refused.stderr, refused.stderr
    assert_no_key(result.stdout, result.stderr, record_path.read_text(), envelope.decode(), checked.stdout)
    assert_no_key(base64.b64decode(json.loads(envelope)["payload"]).decode())


def test_verify_refuses_another_digest_a_dev_release_and_an_image_without_provenance(registry, tmp_path, isolated_home,
                                                                                    keys):
    ci_pub, dev_pub = keys
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    env = dict(CI_ENGINE, RELEASEKIT_CONFIG=config)
    first, manifest, runfiles = _image(tmp_path, "one", "refuse/one", "ci", b"one")
    signed = dict(env, CI="true", RELEASEKIT_SIGNING_KEY=TEST_SIGNING_KEY)
    assert releases.publish(manifest, runfiles, signed).returncode == 0
    # Another image, whose referrer carries the first image's statement: signed by the key, about another digest.
    second, manifest, runfiles = _image(tmp_path, "two", "refuse/two", "ci", b"two")
    assert releases.publish(manifest, runfiles, dict(env, CI="true")).returncode == 0  # unsigned: no key given
    from releasekit.core.config import load_config
    from releasekit.core.http import RetryPolicy
    from releasekit.publishing import referrers
    from releasekit.core.credentials import ANONYMOUS
    from releasekit.publishing.registry import RegistryClient

    client = RegistryClient(load_config(config).destination("ci", "registry"), ANONYMOUS, RetryPolicy())
    (_, envelope), = image_provenance(registry, "prod/refuse/one", first)
    import requests

    raw = requests.get("{}/v2/prod/refuse/two/manifests/{}".format(registry.url, second), timeout=10,
                       headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).content
    root = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": second, "size": len(raw)}
    referrers.push_referrer(client, "prod/refuse/two", root, "application/vnd.in-toto+json",
                            "application/vnd.dsse.envelope.v1+json", envelope, {})
    assert len(skopeo_referrers(registry, "prod/refuse/two", second)["manifests"]) == 2
    refused = verify("{}/prod/refuse/two@{}".format(registry.host, second), ci_pub, config)
    assert refused.returncode == 3, refused.stderr
    assert "subject is sha256:{}".format(first.split(":")[1][:16]) in refused.stderr
    assert "not the digest it is attached to" in refused.stderr and len(refused.stderr.splitlines()) == 1
    # A dev release signs with the dev key and says it is a dev release's: never taken for a CI one.
    dev, manifest, runfiles = _image(tmp_path, "dev", "refuse/dev", "dev", b"dev")
    published = releases.publish(manifest, runfiles, dict(env, RELEASEKIT_DEV_SIGNING_KEY=TEST_DEV_SIGNING_KEY,
                                                          RELEASEKIT_SIGNING_KEY=TEST_SIGNING_KEY))
    assert published.returncode == 0 and "provenance signed by the dev key" in published.stdout
    (_, dev_envelope), = image_provenance(registry, "dev/refuse/dev", dev)
    assert verified_statement(dev_envelope, dev_pub)["predicate"]["buildDefinition"]["externalParameters"][
        "channel"] == "dev"
    as_ci = verify("{}/dev/refuse/dev@{}".format(registry.host, dev), dev_pub, config)
    assert as_ci.returncode == 3 and "a dev release's (//app:app.dev), not a CI release's" in as_ci.stderr
    assert verify("{}/dev/refuse/dev@{}".format(registry.host, dev), ci_pub, config).returncode == 3
    # No provenance at all.
    bare = make_layout(str(tmp_path / "bare"), {"/bare": b"bare"})
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:" + str(tmp_path / "bare"),
                    "docker://{}/prod/refuse/bare:v1".format(registry.host)], check=True, capture_output=True)
    missing = verify("{}/prod/refuse/bare:v1".format(registry.host), ci_pub, config)
    assert missing.returncode == 3 and "has no provenance" in missing.stderr and bare[:19] in missing.stderr
    assert_no_key(refused.stderr, published.stdout + published.stderr, as_ci.stderr)


def test_a_dev_release_never_signs_with_the_ci_key(registry, tmp_path, isolated_home):
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    _, manifest, runfiles = _image(tmp_path, "same", "same/app", "dev", b"same")
    result = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config, "RELEASEKIT_SIGNING_KEY":
                                                   TEST_SIGNING_KEY, "RELEASEKIT_DEV_SIGNING_KEY": TEST_SIGNING_KEY})
    assert result.returncode == 2 and "is the CI signing key" in result.stderr, result.stderr
    assert registry.tags("dev/same/app") == [] and "Traceback" not in result.stderr
    # Without a dev key, a dev release's provenance is unsigned and says so; the CI key in its environment is unused.
    record = tmp_path / "record.json"
    unsigned = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config, "RELEASEKIT_REPORT": str(record),
                                                     "RELEASEKIT_SIGNING_KEY": TEST_SIGNING_KEY})
    assert unsigned.returncode == 0 and unsigned.stdout.rstrip().endswith("provenance unsigned")
    assert json.loads(record.read_text())["provenance"]["signed_by"] == "unsigned"
    assert_no_key(result.stdout + result.stderr, unsigned.stdout + unsigned.stderr, record.read_text())


def test_a_bad_key_is_refused_with_where_it_came_from_and_never_its_text(registry, tmp_path, isolated_home):
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    _, manifest, runfiles = _image(tmp_path, "bad", "badkey/app", "ci", b"bad")
    broken = TEST_SIGNING_KEY.replace("A", "B", 3)
    result = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config, "CI": "true",
                                                   "RELEASEKIT_SIGNING_KEY": broken})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("UsageError: The signing key from RELEASEKIT_SIGNING_KEY is not an unencrypted PEM")
    for secret in key_secrets(broken):
        assert secret not in result.stdout + result.stderr
    missing = releases.publish(manifest, runfiles, {"RELEASEKIT_CONFIG": config, "CI": "true",
                                                    "RELEASEKIT_SIGNING_KEY_FILE": str(tmp_path / "nokey.pem")})
    assert missing.returncode == 2 and "Cannot read the signing key file" in missing.stderr


@pytest.mark.parametrize("kind", ["http", "s3", "directory"])
def test_jars_and_files_carry_provenance_beside_them_and_tampering_is_refused(kind, nginx, moto, tmp_path,
                                                                             isolated_home, keys):
    ci_pub, _ = keys
    root = {"http": nginx.url, "s3": "s3://{}".format(moto.bucket),
            "directory": "file://{}".format(tmp_path / "st")}[kind]
    prefix = "prov-{}".format(kind)
    config = tmp_path / "releasekit.yaml"
    config.write_text("channels:\n  ci: {{maven: '{0}/{1}/maven', files: '{0}/{1}/files'}}\n"
                      "  dev: {{maven: '{0}/{1}/maven-dev', files: '{0}/{1}/files-dev'}}\n".format(root, prefix))
    env = dict(CI_ENGINE, **moto.environ, RELEASEKIT_CONFIG=str(config), CI="true",
               RELEASEKIT_SIGNING_KEY=TEST_SIGNING_KEY,
               RELEASEKIT_MAVEN_USERNAME=TEST_USER, RELEASEKIT_MAVEN_PASSWORD=TEST_PASSWORD,
               RELEASEKIT_FILES_USERNAME=TEST_USER, RELEASEKIT_FILES_PASSWORD=TEST_PASSWORD)
    jar = releases.make_jar(str(tmp_path / "lib.jar"), "provenance " + kind)
    manifest, runfiles = releases.jar_release(str(tmp_path), jar, "com.example.prov:lib:1.0.0")
    published = releases.publish(manifest, runfiles, env)
    assert published.returncode == 0, published.stderr
    bundle = tmp_path / "bundle.tar.gz"
    bundle.write_bytes(b"bundle " + kind.encode())
    manifest, runfiles = releases.file_release(str(tmp_path), str(bundle), "ci", name="bundle")
    filed = releases.publish(manifest, runfiles, dict(env, RELEASEKIT_VERSION="1.0.0"))
    assert filed.returncode == 0, filed.stderr

    def read(path):
        if kind == "http":
            return open(nginx.path("{}/{}".format(prefix, path)), "rb").read()
        if kind == "s3":
            return moto.get("{}/{}".format(prefix, path))
        return open(tmp_path / "st" / prefix / path, "rb").read()

    jar_dir = "maven/com/example/prov/lib/1.0.0/"
    envelope = read(jar_dir + "lib-1.0.0.intoto.jsonl")
    import hashlib

    assert read(jar_dir + "lib-1.0.0.intoto.jsonl.sha1").decode() == hashlib.sha1(envelope).hexdigest()
    statement = verified_statement(envelope, ci_pub)
    assert {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}["lib-1.0.0.jar"] == \
        hashlib.sha256(open(jar, "rb").read()).hexdigest()
    file_envelope = read("files/app/bundle/1.0.0/fleet-bundle.tar.gz.intoto.jsonl")
    assert verified_statement(file_envelope, ci_pub)["subject"][0]["digest"]["sha256"] == \
        hashlib.sha256(bundle.read_bytes()).hexdigest()
    for target in ("com.example.prov:lib:1.0.0", "//app:bundle"):
        checked = verify(target, ci_pub, str(config), env=env)
        assert checked.returncode == 0, checked.stderr
    # A re-run writes nothing: the provenance of a version is kept.
    again = releases.publish(manifest, runfiles, dict(env, RELEASEKIT_VERSION="1.0.0"))
    assert "already published" in again.stdout and read("files/app/bundle/1.0.0/fleet-bundle.tar.gz.intoto.jsonl") == \
        file_envelope
    # Tampered in the store: what CD would fetch no longer is what was signed.
    for path, data in (("maven/com/example/prov/lib/1.0.0/lib-1.0.0.jar", b"not the jar"),
                       ("files/app/bundle/1.0.0/fleet-bundle.tar.gz", b"evil")):
        if kind == "s3":
            moto.client.put_object(Bucket=moto.bucket, Key="{}/{}".format(prefix, path), Body=data)
        else:
            with open(nginx.path("{}/{}".format(prefix, path)) if kind == "http" else tmp_path / "st" / prefix / path,
                      "wb") as handle:
                handle.write(data)
    for target, name in (("com.example.prov:lib:1.0.0", "lib-1.0.0.jar"), ("//app:bundle", "fleet-bundle.tar.gz")):
        refused = verify(target, ci_pub, str(config), env=env)
        assert refused.returncode == 3 and "subject {} is sha256:".format(name) in refused.stderr, refused.stderr
    assert_no_key(published.stdout + published.stderr, filed.stdout + filed.stderr, envelope.decode())


def test_signing_required_refuses_a_ci_release_without_the_key(registry, tmp_path, isolated_home):
    """`signing: required` in releasekit.yaml: a CI release without the key publishes nothing (before: it published
    unsigned provenance, which verify refuses only after the image is out); with the key it publishes, signed."""
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    with open(config, "a") as handle:
        handle.write("signing: required\n")
    _, manifest, runfiles = _image(tmp_path, "req", "required/app", "ci", b"required")
    record = tmp_path / "record.json"
    env = dict(CI_ENGINE, RELEASEKIT_CONFIG=config, CI="true", RELEASEKIT_REPORT=str(record))
    refused = releases.publish(manifest, runfiles, env)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "says `signing: required`" in refused.stderr and "RELEASEKIT_SIGNING_KEY" in refused.stderr
    assert registry.tags("prod/required/app") == [] and "Traceback" not in refused.stderr
    # Dev releases are not held to it: they sign with a dev key when there is one.
    _, dev_manifest, dev_runfiles = _image(tmp_path, "reqdev", "required/app", "dev", b"required")
    assert releases.publish(dev_manifest, dev_runfiles, {"RELEASEKIT_CONFIG": config}).returncode == 0
    signed = releases.publish(manifest, runfiles, dict(env, RELEASEKIT_SIGNING_KEY=TEST_SIGNING_KEY))
    assert signed.returncode == 0, signed.stderr
    assert json.loads(record.read_text())["provenance"]["signed_by"].startswith("ci key ")
    assert_no_key(refused.stdout + refused.stderr, signed.stdout + signed.stderr, record.read_text())
    # Anything else is a configuration error that names the file and the two values.
    with open(config, "a") as handle:
        handle.write("signing: always\n")
    bad = releases.publish(manifest, runfiles, dict(env, RELEASEKIT_SIGNING_KEY=TEST_SIGNING_KEY))
    assert bad.returncode == 2 and "signing is 'always'; use required" in bad.stderr, bad.stderr
