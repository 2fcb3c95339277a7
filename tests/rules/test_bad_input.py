"""Bad input across every command: a non-zero exit, one clear message, no traceback, no secret, nothing published.

Every case runs with known credentials set for the registry, the Maven store and the deploy store.
(The rules' own bad inputs fail at analysis or build time: see the bad-input tests of each rule.)
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import TEST_DEV_SIGNING_KEY, TEST_PASSWORD, TEST_SIGNING_KEY, key_secrets
from helpers import releases
from helpers.images import corrupt_one_layer, make_layout
from helpers.servers import REPO_ROOT, free_port

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
TOKEN = "tok-" + TEST_PASSWORD
SECRETS = {
    "RELEASEKIT_REGISTRY_USERNAME": "releaser", "RELEASEKIT_REGISTRY_PASSWORD": TEST_PASSWORD,
    "RELEASEKIT_MAVEN_USERNAME": "deployer", "RELEASEKIT_MAVEN_PASSWORD": TEST_PASSWORD + "-maven",
    "RELEASEKIT_DEPLOY_TOKEN": TOKEN, "AWS_SECRET_ACCESS_KEY": TEST_PASSWORD + "-aws",
    "RELEASEKIT_SIGNING_KEY": TEST_SIGNING_KEY, "RELEASEKIT_DEV_SIGNING_KEY": TEST_DEV_SIGNING_KEY,
}
BROKEN_KEY = TEST_SIGNING_KEY.replace("A", "B", 3)


@pytest.fixture(scope="module")
def world(tmp_path_factory, registry):
    """Inputs the cases break one way or another."""
    root = tmp_path_factory.mktemp("bad-input")
    good_layout = str(root / "layout")
    make_layout(good_layout, {"/app": os.urandom(20_000)})
    corrupt_layout = str(root / "corrupt")
    make_layout(corrupt_layout, {"/app": os.urandom(20_000)})
    image_manifest, image_runfiles = releases.container_release(str(root / "image"), good_layout, "bad/app", "dev")
    corrupt_manifest, corrupt_runfiles = releases.container_release(str(root / "corrupt-release"), corrupt_layout,
                                                                    "bad/corrupt", "dev")
    corrupt_one_layer(corrupt_layout)
    jar = releases.make_jar(str(root / "lib.jar"), "lib")
    files = {}

    def write(name, text):
        path = root / name
        path.write_text(text)
        files[name] = str(path)
        return str(path)

    write("ok.yaml",
          "channels:\n  ci: {{registry: 'http://{0}/prod'}}\n  dev: {{registry: 'http://{0}/dev'}}\n".format(registry.host))
    write("overlap.yaml",
          "channels:\n  ci: {registry: 'r.example.com/prod'}\n  dev: {registry: 'r.example.com/prod/dev'}\n")
    write("plain_http.yaml", "channels:\n  dev: {registry: 'http://r.example.com/dev'}\n")
    write("dotdot_registry.yaml", "channels:\n  dev: {registry: 'r.example.com/../prod'}\n")
    write("dotdot_store.yaml", "channels:\n  dev: {maven: 'file:///srv/../etc'}\n")
    write("bad_yaml.yaml", "channels:\n  dev: [unclosed\n")
    write("no_channels.yaml", "registry: x\n")
    write("unknown_channel.yaml", "channels:\n  prod: {registry: 'r.example.com'}\n")
    write("unreachable.yaml", "channels:\n  dev: {{registry: 'http://127.0.0.1:{}/dev'}}\n".format(free_port()))
    write("tls.yaml", "channels:\n  dev: {{registry: 'https://{}/dev'}}\n".format(registry.host))
    write("no_registry.yaml", "channels:\n  dev: {maven: 'file:///tmp/x'}\n")
    write("store.yaml",
          "channels:\n  ci: {{maven: 'file://{0}/releases'}}\n  dev: {{maven: 'file://{0}/snapshots'}}\n".format(
        root / "store"))
    write("garbage.json", "{not json")
    write("old_manifest.json", json.dumps({"schema_version": 99}))
    write("bad_selection.json", json.dumps({"format_version": 7}))
    write("notes.txt", "x")
    jar_bad_coordinates = releases.jar_release(str(root / "jar1"), jar, "com.example/lib", "ci", name="badcoords")
    jar_dotdot = releases.jar_release(str(root / "jar2"), jar, "com..example:lib:1.0", "ci", name="dotdot")
    jar_missing = releases.jar_release(str(root / "jar3"), str(root / "missing.jar"), "com.example:lib:1.0", "ci",
                                       name="missing")
    jar_unversioned = releases.jar_release(str(root / "jar4"), jar, "com.example:lib", "ci", name="unversioned")
    bad_repository = releases.container_release(str(root / "badrepo"), good_layout, "Bad/../repo", "dev")
    return {"root": root, "files": files, "image": (image_manifest, image_runfiles),
            "corrupt": (corrupt_manifest, corrupt_runfiles), "jar_bad_coordinates": jar_bad_coordinates,
            "jar_dotdot": jar_dotdot, "jar_missing": jar_missing, "jar_unversioned": jar_unversioned,
            "bad_repository": bad_repository,
            "layout": good_layout}


def publish_args(world, release, config):
    manifest, runfiles = world[release]
    return ["publish", "--manifest", manifest, "--runfiles", runfiles, "--config", world["files"][config]]


CASES = [
    # (name, arguments built from the world, extra environment, expected text)
    ("ci release without CI=true", lambda w: ["publish", "--manifest", releases.container_release(
        str(w["root"] / "ci"), w["layout"], "bad/ci", "ci")[0], "--runfiles", str(w["root"] / "ci" / "runfiles"),
        "--config", w["files"]["ok.yaml"]], {}, "CI=true is not set"),
    ("dev channel overlapping ci", lambda w: publish_args(w, "image", "overlap.yaml"), {}, "overlaps"),
    ("plain HTTP to a remote host", lambda w: publish_args(w, "image", "plain_http.yaml"), {}, "plain HTTP"),
    ("'..' in a registry namespace", lambda w: publish_args(w, "image", "dotdot_registry.yaml"), {}, "not allowed"),
    ("'..' in a store path", lambda w: publish_args(w, "image", "dotdot_store.yaml"), {}, "contains '..'"),
    ("config that is not YAML", lambda w: publish_args(w, "image", "bad_yaml.yaml"), {}, "not valid YAML"),
    ("config without channels", lambda w: publish_args(w, "image", "no_channels.yaml"), {}, "'channels:'"),
    ("unknown channel", lambda w: publish_args(w, "image", "unknown_channel.yaml"), {}, "unknown channel 'prod'"),
    ("config that does not exist", lambda w: publish_args(w, "image", "ok.yaml")[:-1] + [str(w["root"] / "nope.yaml")],
     {},
     "No releasekit config"),
    ("channel without a registry", lambda w: publish_args(w, "image", "no_registry.yaml"), {},
     "has no 'registry' destination"),
    ("unreachable registry", lambda w: publish_args(w, "image", "unreachable.yaml"),
     {"RELEASEKIT_RETRY_ATTEMPTS": "2", "RELEASEKIT_RETRY_TOTAL_SECONDS": "3"}, "connection refused"),
    ("TLS to a plain HTTP registry", lambda w: publish_args(w, "image", "tls.yaml"),
     {"RELEASEKIT_RETRY_ATTEMPTS": "2"}, "TLS"),
    ("corrupt image blob", lambda w: publish_args(w, "corrupt", "ok.yaml"), {}, "does not match its digest"),
    ("'..' in a repository", lambda w: publish_args(w, "bad_repository", "ok.yaml"), {},
     "not a valid image repository"),
    ("a signing key that is not a key", lambda w: publish_args(w, "image", "ok.yaml"),
     {"RELEASEKIT_DEV_SIGNING_KEY": BROKEN_KEY}, "is not an unencrypted PEM private key"),
    ("a dev key that is the CI key", lambda w: publish_args(w, "image", "ok.yaml"),
     {"RELEASEKIT_DEV_SIGNING_KEY": TEST_SIGNING_KEY}, "is the CI signing key"),
    ("verify with a public key that is not one",
     lambda w: ["verify", "127.0.0.1:1/x:y", "--key", w["files"]["notes.txt"], "--repository", "r", "--branch", "main"],
     {},
     "is not a PEM public key"),
    ("manifest that is not JSON", lambda w: ["publish", "--manifest", w["files"]["garbage.json"], "--config",
                                             w["files"]["ok.yaml"]], {}, "Cannot read release manifest"),
    ("manifest of another version", lambda w: ["publish", "--manifest", w["files"]["old_manifest.json"]], {},
     "release manifest version 99"),
    ("image input missing at run time", lambda w: ["publish", "--manifest", w["image"][0], "--runfiles",
                                                   str(w["root"]), "--config", w["files"]["ok.yaml"]], {},
     "missing at run time"),
    ("only one of username and password", lambda w: publish_args(w, "image", "ok.yaml"),
     {"RELEASEKIT_REGISTRY_PASSWORD": ""}, "Only one of"),
    ("jar coordinates without ':'", lambda w: publish_args(w, "jar_bad_coordinates", "ok.yaml"), {"CI": "true"},
     "must be group:artifact"),
    ("'..' in jar coordinates", lambda w: publish_args(w, "jar_dotdot", "ok.yaml"), {"CI": "true"}, "no '..'"),
    ("jar that does not exist", lambda w: publish_args(w, "jar_missing", "store.yaml"), {"CI": "true"},
     "missing.jar does not exist; rebuild the release target"),
    ("release version from the environment with '..'", lambda w: publish_args(w, "jar_unversioned", "store.yaml"),
     {"CI": "true", "RELEASEKIT_VERSION": "1.0/../../etc"},
     "RELEASEKIT_VERSION '1.0/../../etc' is not a release version"),
    ("commit from the environment with '..'", lambda w: publish_args(w, "image", "ok.yaml"),
     {"RELEASEKIT_COMMIT": "../../etc"}, "is not a full commit SHA"),
    ("bad retry setting", lambda w: publish_args(w, "image", "ok.yaml"), {"RELEASEKIT_RETRY_ATTEMPTS": "many"},
     "is not a number"),
    ("image-plan of a file that is not an image", lambda w: ["image-plan", "--image", w["files"]["notes.txt"],
                                                             "--image-rlocation", "x", "--label", "//x:y", "--out",
                                                             str(w["root"] / "p.json")], {},
     "not a docker-save tarball"),
    ("jar-check of a text file", lambda w: ["jar-check", "--jar", w["files"]["notes.txt"], "--label", "//x:y", "--out",
                                            str(w["root"] / "j.json")], {}, "is not a readable jar"),
    ("deploy-check of YAML that does not parse", lambda w: ["deploy-check", "--manifest", w["files"]["bad_yaml.yaml"],
                                                            "--display", "d.yaml", "--platform", "generic",
                                                            "--kubernetes-version", "1.30.0", "--label", "//x:d",
                                                            "--out", str(w["root"] / "d.json")], {}, "not valid YAML"),
    ("collect outside git", lambda w: ["collect", "--base", "HEAD", "--workspace", str(w["root"])], {},
     "not inside a git repository"),
    ("collect with an unknown revision", lambda w: ["collect", "--base", "no-such-revision", "--workspace", REPO_ROOT],
     {},
     "is not a commit"),
    ("explain with an unknown revision", lambda w: ["explain", "//x:y", "--base", "nope", "--workspace", REPO_ROOT], {},
     "is not a commit"),
    ("dispatch of a file that is not a selection", lambda w: ["dispatch", "--tests", w["files"]["bad_selection.json"],
                                                              "--workspace", str(w["root"])], {},
     "not a releasekit collect"),
    ("dispatch of a missing file", lambda w: ["dispatch", "--releases", str(w["root"] / "none.json")], {},
     "Cannot read the releases selection"),
    ("a shard that does not exist", lambda w: ["dispatch", "--shard", "5/4"], {}, "must be K/N"),
    ("pipeline with no shards", lambda w: ["pipeline", "--format", "buildkite", "--shards", "0"], {}, "at least 1"),
    ("config check of an unsafe config", lambda w: ["config", "--config", w["files"]["overlap.yaml"]], {}, "overlaps"),
    ("ci with an unknown revision", lambda w: ["ci", "--base", "no-such-revision", "--workspace", REPO_ROOT], {},
     "is not a commit"),
    ("pr outside git", lambda w: ["pr", "--base", "HEAD", "--workspace", str(w["root"])], {},
     "not inside a git repository"),
    ("image-layout without its spec", lambda w: ["image-layout", "--spec", str(w["root"] / "none.json"), "--out",
                                                 str(w["root"] / "out")], {}, "Cannot read the image_layout spec"),
]


@pytest.mark.parametrize("name,arguments,extra,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input(world, registry, name, arguments, extra, expected, isolated_home):
    tagged_before = {r: registry.tags(r) for r in registry.catalog()}
    env = dict(os.environ, **SECRETS)
    env.pop("CI", None)
    env.update(extra)
    env.setdefault("RELEASEKIT_COMMIT", releases.COMMIT)  # as dispatch pins them for every release of a run
    env.setdefault("RELEASEKIT_DIRTY", "false")
    if not env.get("RELEASEKIT_REGISTRY_PASSWORD"):
        env.pop("RELEASEKIT_REGISTRY_PASSWORD", None)
    result = subprocess.run([sys.executable, ENTRY, *arguments(world)], capture_output=True, text=True, env=env,
                            cwd=str(world["root"]), timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert expected in output, output
    assert "Traceback" not in output
    for secret in SECRETS.values():
        if len(secret) > 8:
            assert secret not in output
    for key in (TEST_SIGNING_KEY, TEST_DEV_SIGNING_KEY, BROKEN_KEY):  # nor any line of a signing key
        assert not [line for line in key_secrets(key) if line in output]
    # Nothing published: no new tag anywhere (a refused run may leave unreferenced blobs, which no pull sees).
    assert {r: registry.tags(r) for r in registry.catalog() if registry.tags(r)} == \
        {r: t for r, t in tagged_before.items() if t}


def test_the_table_is_large_enough():
    assert len(CASES) >= 30
