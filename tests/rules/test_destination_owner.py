"""One owner per destination: real Bazel, real git, the real registry, and stores (nginx WebDAV, moto S3, a directory).

A copy-pasted BUILD file makes two releases publish to one repository, one Maven artifact or one store path, and
whichever finishes last owns `stable`. In one run both are refused before anything is published; across runs the
destination records its owner, and another label's CI release to it is refused, naming both.
"""

import hashlib
import json
import os
import subprocess
import sys

import pytest
import requests

from conftest import TEST_PASSWORD, TEST_USER
from helpers import releases
from helpers.servers import REPO_ROOT
from helpers.workspace import BAZEL, Workspace, git

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
LOAD = ('load("@rules_release//rules:defs.bzl", "container_release", "deploy_release", "image_layout", '
        '"jar_release")\n\n')


def image_package(name, repository):
    return LOAD + ('image_layout(name = "image", files = {{"run.sh": "/run.sh"}})\n\n'
                   'container_release(name = "{}", image = ":image", repository = "{}", remote_tags = ["stable"],\n'
                   '                  visibility = ["//visibility:public"])\n').format(name, repository)


FILES = {
    ".gitignore": "/bazel-*\n/releasekit-logs/\n",
    "apps/one/BUILD.bazel": image_package("one", "owned/shared"),
    "apps/one/run.sh": "#!/bin/sh\necho one\n",
    # The copy: another service's BUILD file, its repository left as it was.
    "apps/two/BUILD.bazel": image_package("two", "owned/shared"),
    "apps/two/run.sh": "#!/bin/sh\necho two\n",
    "apps/three/BUILD.bazel": image_package("three", "owned/three"),
    "apps/three/run.sh": "#!/bin/sh\necho three\n",
    "deploy/BUILD.bazel": LOAD + 'deploy_release(name = "uses_one", manifests = ["one.yaml"], platform = "generic",\n'
                                 '               images = {"one-image": "//apps/one"})\n\n'
                                 'deploy_release(name = "uses_two", manifests = ["two.yaml"], platform = "generic",\n'
                                 '               images = {"two-image": "//apps/two"})\n',
    "deploy/one.yaml": "service: {name: one, image: one-image}\n",
    "deploy/two.yaml": "service: {name: two, image: two-image}\n",
    "libs/BUILD.bazel": LOAD + (
        'jar_release(name = "greeting", jar = "greeting.jar", coordinates = "com.example.owned:greeting:1.0.0")\n\n'
        # The copy's version comes from RELEASEKIT_VERSION: without an owner it would publish beside the original's.
        'jar_release(name = "greeting_copy", jar = "copy.jar", coordinates = "com.example.owned:greeting")\n'),
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("owner") / "repo"
    path.mkdir()
    workspace = Workspace(str(path))
    workspace.write("WORKSPACE", 'local_repository(name = "rules_release", path = "{}")\n'.format(REPO_ROOT))
    for name, text in FILES.items():
        workspace.write(name, text, executable=name.endswith(".sh"))
    releases.make_jar(os.path.join(str(path), "libs", "greeting.jar"), "greeting")
    releases.make_jar(os.path.join(str(path), "libs", "copy.jar"), "a copy with other content")
    workspace.init_git()
    workspace.cache = str(tmp_path_factory.mktemp("owner-cache"))
    try:
        yield workspace
    finally:
        workspace.shutdown()


def config(path, registry, namespace, maven, deploy="file:///nonexistent/deploy"):
    path.write_text("channels:\n  ci: {{registry: 'http://{0}/{1}', maven: '{2}/releases', deploy: '{3}/prod'}}\n"
                    "  dev: {{registry: 'http://{0}/{1}-dev', maven: '{2}/snapshots', deploy: '{3}/dev'}}\n".format(
                        registry.host, namespace, maven, deploy))
    return {"RELEASEKIT_CONFIG": str(path), "RELEASEKIT_USER": "tester", "XDG_CACHE_HOME": str(path.parent / "cache"),
            "RELEASEKIT_VERSION": "2.0.0"}


def test_two_releases_of_one_run_claiming_one_destination_are_refused_before_anything_is_published(
        repo, registry, tmp_path):
    """Before: both images were pushed to owned/shared (the last one holding `stable`), and both jars raced for one
    version; the deploy release published whichever image it saw."""
    env = config(tmp_path / "releasekit.yaml", registry, "inrun", "file://{}".format(tmp_path / "maven"),
                 "file://{}".format(tmp_path / "deploy"))
    labels = ["//apps/one:one.ci", "//apps/two:two.ci", "//apps/three:three.ci", "//deploy:uses_one.ci",
              "//libs:greeting.ci", "//libs:greeting_copy.ci"]
    (tmp_path / "releases.json").write_text(json.dumps({"format_version": 1, "targets": [
        {"label": label, "kind": "artifact_ci_release", "reasons": []} for label in labels]}))
    (tmp_path / "tests.json").write_text(json.dumps({"format_version": 1, "targets": []}))  # no test selected
    result = subprocess.run([sys.executable, ENTRY, "dispatch", "--tests", str(tmp_path / "tests.json"),
                             "--releases", str(tmp_path / "releases.json"),
                             "--logs", str(tmp_path / "logs"), "--report", str(tmp_path / "report.json")],
                            cwd=repo.path, capture_output=True, text=True, timeout=900,
                            env=dict(os.environ, RELEASEKIT_BAZEL=BAZEL, CI="true", **env))
    assert result.returncode == 1, result.stdout + result.stderr
    outcomes = {t["label"]: t for t in json.load(open(tmp_path / "report.json"))["targets"]}
    assert outcomes["//apps/three:three.ci"]["status"] == "published"
    for label, other in (("//apps/one:one.ci", "//apps/two:two"), ("//apps/two:two.ci", "//apps/one:one"),
                         ("//libs:greeting.ci", "//libs:greeting_copy"), ("//libs:greeting_copy.ci", "//libs:greeting"),
                         ("//deploy:uses_one.ci", "//apps/two:two")):
        assert outcomes[label]["status"] == "refused", outcomes[label]
        assert label[:-3] in outcomes[label]["reason"] and other in outcomes[label]["reason"], outcomes[label]
    assert "repository owned/shared at http://{}/inrun".format(registry.host) in outcomes["//apps/one:one.ci"]["reason"]
    assert "Maven coordinates com.example.owned:greeting" in outcomes["//libs:greeting.ci"]["reason"]
    assert "through its image //apps/one:one" in outcomes["//deploy:uses_one.ci"]["reason"]
    assert "refused" in result.stdout and "owned/shared" in result.stdout
    # Nothing of the refused releases was published, nor the owner records they would have written.
    assert "inrun/owned/shared" not in registry.catalog() and "inrun/owned/three" in registry.catalog()
    assert not (tmp_path / "maven").exists() and not (tmp_path / "deploy").exists()


def test_another_labels_release_to_an_owned_repository_is_refused_across_runs(repo, registry, tmp_path):
    """Before: //apps/two:two.ci overwrote the commit tag and `stable` of //apps/one:one's repository."""
    env = config(tmp_path / "releasekit.yaml", registry, "across", "file://{}".format(tmp_path / "maven"))
    repo.bazel("run", "//apps/one:one.ci", env=dict(env, CI="true"))
    head = git(repo.path, "rev-parse", "HEAD").strip()
    digest = registry.inspect("across/owned/shared:stable")["Digest"]
    refused = repo.bazel("run", "//apps/two:two.ci", env=dict(env, CI="true"), check=False)
    assert refused.returncode == 3, refused.stderr[-3000:]
    assert ("DestinationOwnedError: //apps/two:two: the repository {}/across/owned/shared belongs to //apps/one:one "
            "(its owner record {}/across/releasekit-channel:owner.{} says so)").format(
        registry.host, registry.host, hashlib.sha256(b"across/owned/shared").hexdigest()) in refused.stderr
    assert "Traceback" not in refused.stderr
    assert registry.image_tags("across/owned/shared") == sorted([head, "stable"])
    assert registry.inspect("across/owned/shared:stable")["Digest"] == digest
    assert registry.inspect("across/owned/shared:" + head)["Digest"] == digest
    # The owner's own releases go on, and dev releases are not checked: they publish to the dev channel's own place.
    repo.bazel("run", "//apps/one:one.ci", env=dict(env, CI="true"))
    repo.bazel("run", "//apps/two:two.dev", env=env)


def test_a_deploy_release_whose_image_is_owned_by_another_label_is_refused_across_runs(repo, registry, tmp_path):
    """Before: refused within one run, but across runs it failed (exit 1, DeployError wrapping DestinationOwnedError),
    and a run's report said `failed` instead of `refused`."""
    deploy = tmp_path / "deploy"
    env = dict(config(tmp_path / "releasekit.yaml", registry, "deploy-owned", "file://{}".format(tmp_path / "maven"),
                      "file://{}".format(deploy)), CI="true")
    repo.bazel("run", "//apps/one:one.ci", env=env)
    refused = repo.bazel("run", "//deploy:uses_two.ci", env=env, check=False)
    assert refused.returncode == 3, refused.stderr[-3000:]
    assert "DestinationOwnedError: //deploy:uses_two: no deploy YAML was published, because image //apps/two:two" \
        in refused.stderr
    assert "belongs to //apps/one:one" in refused.stderr and "Traceback" not in refused.stderr
    assert not (deploy / "prod" / "deploy" / "uses_two").exists()
    # Under dispatch, the same release is `refused` with the same reason, as within one run.
    (tmp_path / "releases.json").write_text(json.dumps({"format_version": 1, "targets": [
        {"label": "//deploy:uses_two.ci", "kind": "artifact_ci_release", "reasons": []}]}))
    (tmp_path / "tests.json").write_text(json.dumps({"format_version": 1, "targets": []}))
    result = subprocess.run([sys.executable, ENTRY, "dispatch", "--tests", str(tmp_path / "tests.json"),
                             "--releases", str(tmp_path / "releases.json"),
                             "--logs", str(tmp_path / "logs"), "--report", str(tmp_path / "report.json")],
                            cwd=repo.path, capture_output=True, text=True, timeout=900,
                            env=dict(os.environ, RELEASEKIT_BAZEL=BAZEL, **env))
    assert result.returncode == 1, result.stdout + result.stderr
    outcome = json.load(open(tmp_path / "report.json"))["targets"][0]
    assert outcome["status"] == "refused", outcome
    assert "//apps/two:two" in outcome["reason"] and "belongs to //apps/one:one" in outcome["reason"], outcome
    assert not (deploy / "prod" / "deploy" / "uses_two").exists()


@pytest.mark.parametrize("kind", ["http", "s3", "file"])
def test_another_labels_release_to_owned_maven_coordinates_is_refused_across_runs(repo, registry, nginx, moto,
                                                                                   tmp_path, kind):
    """Before: the copy published its own jar as version 2.0.0 of the coordinates //libs:greeting owns."""
    store = {"http": nginx.url + "/owned-" + kind, "s3": "s3://{}/owned".format(moto.bucket),
             "file": "file://{}".format(tmp_path / "maven")}[kind]
    env = config(tmp_path / "releasekit.yaml", registry, "maven-" + kind, store)
    env.update(moto.environ if kind == "s3" else {"RELEASEKIT_MAVEN_USERNAME": TEST_USER,
                                                   "RELEASEKIT_MAVEN_PASSWORD": TEST_PASSWORD})
    repo.bazel("run", "//libs:greeting.ci", env=dict(env, CI="true"))
    refused = repo.bazel("run", "//libs:greeting_copy.ci", env=dict(env, CI="true"), check=False)
    assert refused.returncode == 3, refused.stderr[-3000:]
    assert "//libs:greeting_copy: the Maven artifact {}/releases/com/example/owned/greeting belongs to " \
           "//libs:greeting".format(store) in refused.stderr
    assert "ImmutableVersionError" not in refused.stderr and TEST_PASSWORD not in refused.stdout + refused.stderr
    path = "releases/com/example/owned/greeting/.releasekit-owner"
    read = {"http": lambda p: requests.get(store + "/" + p, timeout=10).content,
            "s3": lambda p: moto.get("owned/" + p), "file": lambda p: (tmp_path / "maven" / p).read_bytes()}[kind]
    assert read(path) == b"//libs:greeting\n"
    with open(os.path.join(repo.path, "libs", "greeting.jar"), "rb") as handle:
        assert read("releases/com/example/owned/greeting/1.0.0/greeting-1.0.0.jar") == handle.read()
    assert b"<version>2.0.0</version>" not in read("releases/com/example/owned/greeting/maven-metadata.xml")


@pytest.mark.parametrize("kind", ["http", "s3", "file"])
def test_a_store_path_owned_by_another_label_is_refused(nginx, moto, tmp_path, kind):
    """A file release of another repository (@vendored//app:bundle) with the package and name of ours publishes to
    the same `<package>/<name>` path: before, its `latest` replaced ours."""
    ci = {"http": nginx.url + "/files-owned", "s3": "s3://{}/files-owned".format(moto.bucket),
          "file": "file://{}".format(tmp_path / "files")}[kind]
    config_path = tmp_path / "releasekit.yaml"
    config_path.write_text("channels:\n  ci: {{files: '{}/prod'}}\n  dev: {{files: '{}/dev'}}\n".format(ci, ci))
    env = {"RELEASEKIT_CONFIG": str(config_path), "CI": "true", "RELEASEKIT_FILES_USERNAME": TEST_USER,
           "RELEASEKIT_FILES_PASSWORD": TEST_PASSWORD, **(moto.environ if kind == "s3" else {})}
    ours, theirs = tmp_path / "ours.tar", tmp_path / "theirs.tar"
    ours.write_bytes(b"ours")
    theirs.write_bytes(b"theirs")
    first = releases.publish(*releases.file_release(str(tmp_path / "a"), str(ours)),
                             dict(env, RELEASEKIT_VERSION="1.0"))
    assert first.returncode == 0, first.stderr
    second = releases.publish(*releases.file_release(str(tmp_path / "b"), str(theirs), release="@vendored//app:bundle"),
                              dict(env, RELEASEKIT_VERSION="2.0"))
    assert second.returncode == 3, second.stderr
    owned = "@vendored//app:bundle: the files path {}/prod/app/bundle belongs to //app:bundle".format(ci)
    assert owned in second.stderr
    assert TEST_PASSWORD not in second.stdout + second.stderr
    read = {"http": lambda p: requests.get(ci + "/prod/" + p, timeout=10),
            "s3": lambda p: moto.get("files-owned/prod/" + p),
            "file": lambda p: ((tmp_path / "files" / "prod" / p).read_bytes()
                               if (tmp_path / "files" / "prod" / p).exists() else None)}[kind]
    latest = read("app/bundle/latest")
    assert (latest.content if kind == "http" else latest) == b"1.0\n"
    missing = read("app/bundle/2.0/fleet-bundle.tar.gz")
    assert (missing.status_code == 404) if kind == "http" else missing is None


def test_a_pull_request_whose_releases_would_share_a_destination_fails_and_publishes_nothing(
        repo, registry, tmp_path):
    """A pull request adds two services whose BUILD files name one repository. Before: `pr` built both, said
    `built`, and passed; the clash showed only on the main line, after the merge."""
    checkout = str(tmp_path / "pr")
    git(str(tmp_path), "clone", "-q", repo.path, checkout)
    git(checkout, "config", "user.email", "test@example.com")
    git(checkout, "config", "user.name", "Test")
    git(checkout, "rm", "-q", "-r", "apps/one", "apps/two", "deploy")
    git(checkout, "commit", "-q", "-m", "before the two services")
    git(checkout, "checkout", "HEAD~1", "--", "apps/one", "apps/two")  # the pull request's working tree
    pull_request = Workspace(checkout)
    pull_request.cache = repo.cache
    env = config(tmp_path / "releasekit.yaml", registry, "pr", "file://{}".format(tmp_path / "maven"))
    try:
        result = pull_request.releasekit("pr", "--base", "HEAD", "--logs", str(tmp_path / "logs"),
                                         "--report", str(tmp_path / "report.json"), env=env)
    finally:
        pull_request.shutdown()
    assert result.returncode != 0, result.stdout + result.stderr
    outcomes = {t["label"]: t for t in json.load(open(tmp_path / "report.json"))["targets"]}
    for label, other in (("//apps/one:one.ci", "//apps/two:two"), ("//apps/two:two.ci", "//apps/one:one")):
        assert outcomes[label]["status"] == "refused", outcomes[label]
        assert other in outcomes[label]["reason"] and "owned/shared" in outcomes[label]["reason"], outcomes[label]
    assert "Traceback" not in result.stderr
    assert not any(name.startswith("pr/") for name in registry.catalog())
