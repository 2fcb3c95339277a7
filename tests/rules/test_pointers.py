"""Pointers only move forward: real Bazel, real git (two shallow checkouts of one repository, as CI makes them), the
real registry, and stores (nginx WebDAV, moto S3, a directory).

An older commit's CI run that finishes last (a retried or slow pipeline, two pipelines at once) publishes its
immutable version and leaves `stable` and `latest` where the newer commit put them; a newer commit moves them, once
git, fetching what the shallow checkout lacks, says it descends from theirs.
"""

import hashlib
import json
import os
import subprocess

import pytest
import requests

from conftest import TEST_PASSWORD, TEST_USER
from helpers import releases
from helpers.images import make_layout
from helpers.servers import REPO_ROOT
from helpers.workspace import Workspace, git

LOAD = ('load("@rules_release//rules:defs.bzl", "container_release", "deploy_release", "file_release", '
        '"image_layout")\n\n')
BUILD = LOAD + (
    'image_layout(name = "image", files = {"run.sh": "/run.sh"})\n\n'
    'container_release(name = "app", image = ":image", repository = "pointers/app", remote_tags = ["stable"])\n\n'
    'deploy_release(name = "deploy", manifests = ["app.yaml"], images = {"app-image": ":app"}, platform = '
    '"generic")\n\nfile_release(name = "bundle", src = "bundle.txt")\n')


def _checkout(origin, commit, path):
    """A CI checkout: one commit, fetched alone (actions/checkout's default depth of 1)."""
    os.makedirs(path)
    for args in (["init", "-q"], ["remote", "add", "origin", "file://" + origin],
                 ["fetch", "-q", "--no-tags", "--depth=1", "origin", commit], ["checkout", "-q", "--detach", commit]):
        git(path, *args)
    assert git(path, "rev-parse", "--is-shallow-repository").strip() == "true"
    return Workspace(path)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """An origin with an older and a newer commit (the image and the bundle changed), and a checkout of each."""
    root = tmp_path_factory.mktemp("pointers")
    work = Workspace(str(root / "work"))
    os.makedirs(work.path)
    work.write("WORKSPACE", 'local_repository(name = "rules_release", path = "{}")\n'.format(REPO_ROOT))
    work.write(".gitignore", "/bazel-*\n")
    work.write("app/BUILD.bazel", BUILD)
    work.write("app/app.yaml", "service: {name: app, image: app-image}\n")
    work.write("app/run.sh", "#!/bin/sh\necho older\n", executable=True)
    work.write("app/bundle.txt", "older\n")
    work.init_git()
    older = git(work.path, "rev-parse", "HEAD").strip()
    work.write("app/run.sh", "#!/bin/sh\necho newer\n", executable=True)
    work.write("app/bundle.txt", "newer\n")
    newer = work.commit("newer")
    origin = str(root / "origin.git")
    subprocess.run(["git", "clone", "-q", "--bare", work.path, origin], check=True)
    checkouts = {"older": _checkout(origin, older, str(root / "older")),
                 "newer": _checkout(origin, newer, str(root / "newer"))}
    checkouts["older"].commit_sha, checkouts["newer"].commit_sha = older, newer
    try:
        yield checkouts
    finally:
        for checkout in checkouts.values():
            checkout.shutdown()


class Stores:
    """The deploy and files stores of one store kind, with how to read a file back."""

    def __init__(self, kind, nginx, moto, tmp_path):
        self.kind, self.nginx, self.moto, self.tmp = kind, nginx, moto, tmp_path
        self.url = {"http": nginx.url + "/pointers", "s3": "s3://{}/pointers".format(moto.bucket),
                    "file": "file://{}".format(tmp_path / "stores")}[kind]
        self.env = dict(moto.environ) if kind == "s3" else {}
        for store in ("DEPLOY", "FILES"):
            self.env.update({"RELEASEKIT_{}_USERNAME".format(store): TEST_USER,
                             "RELEASEKIT_{}_PASSWORD".format(store): TEST_PASSWORD})

    def read(self, path):
        if self.kind == "http":
            response = requests.get("{}/{}".format(self.url, path), timeout=10)
            return response.content if response.status_code == 200 else None
        if self.kind == "s3":
            return self.moto.get("pointers/" + path)
        full = self.tmp / "stores" / path
        return full.read_bytes() if full.exists() else None


def _env(tmp_path, registry, stores, namespace):
    config = tmp_path / "releasekit-{}.yaml".format(namespace)
    config.write_text("channels:\n  ci: {{registry: 'http://{0}/{1}', deploy: '{2}/{1}/deploy', files: "
                      "'{2}/{1}/files'}}\n  dev: {{registry: 'http://{0}/{1}-dev', deploy: '{2}/{1}-dev/deploy', "
                      "files: '{2}/{1}-dev/files'}}\n"
                      .format(registry.host, namespace, stores.url))
    return dict(stores.env, CI="true", RELEASEKIT_CONFIG=str(config), XDG_CACHE_HOME=str(tmp_path / "cache"),
                RELEASEKIT_REPORT=str(tmp_path / "record.json"))


def _release(checkout, target, env):
    result = checkout.bazel("run", target, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(env["RELEASEKIT_REPORT"]) as handle:
        return result.stdout, json.load(handle)


@pytest.mark.parametrize("kind", ["http", "s3", "file"])
def test_an_older_commit_released_last_leaves_the_pointers_where_the_newer_one_put_them(
        history, registry, nginx, moto, tmp_path, kind):
    """Before: the older run, finishing last, moved `stable` and both `latest` pointers back to its commit."""
    stores = Stores(kind, nginx, moto, tmp_path)
    env = _env(tmp_path, registry, stores, "behind-" + kind)
    older, newer = history["older"], history["newer"]
    for target in ("//app:app.ci", "//app:deploy.ci", "//app:bundle.ci"):
        _release(newer, target, env)
    stable = registry.inspect("behind-{}/pointers/app:stable".format(kind))["Digest"]

    image_line, image = _release(older, "//app:app.ci", env)
    deploy_line, deploy = _release(older, "//app:deploy.ci", env)
    bundle_line, bundle = _release(older, "//app:bundle.ci", env)
    # The immutable versions of the older commit are published ...
    older_image = registry.inspect("behind-{}/pointers/app:{}".format(kind, older.commit_sha))
    assert older_image["Digest"] == image["digest"] != stable
    assert stores.read("behind-{}/files/app/bundle/{}/bundle.txt".format(kind, older.commit_sha)) == b"older\n"
    assert stores.read("behind-{}/deploy/app/deploy/{}/app.yaml".format(kind, older.commit_sha)) is not None
    # ... and every pointer stays at the newer commit, which descends from it.
    assert registry.inspect("behind-{}/pointers/app:stable".format(kind))["Digest"] == stable
    for store in ("deploy/app/deploy", "files/app/bundle"):
        assert stores.read("behind-{}/{}/latest".format(kind, store)) == (newer.commit_sha + "\n").encode()
    later = "it points at {}, a later commit that descends from {}".format(newer.commit_sha[:12], older.commit_sha[:12])
    assert image["pointers"] == [{"pointer": "stable", "action": "left", "commit": older.commit_sha,
                                  "recorded_commit": newer.commit_sha, "note": later}]
    assert image["tags"] == [older.commit_sha]
    assert bundle["pointers"][0]["action"] == "left" and deploy["pointers"][-1]["action"] == "left"
    assert "stable left at {} ({})".format(newer.commit_sha[:12], later) in image_line
    assert "latest left at {}".format(newer.commit_sha[:12]) in bundle_line
    assert "latest left at" in deploy_line and ":stable left at" in deploy_line
    # The older checkout held its own commit alone; it fetched the newer one to see that it descends from its own.
    assert git(older.path, "cat-file", "-t", newer.commit_sha).strip() == "commit"


def test_a_newer_commit_moves_the_pointers_after_fetching_what_its_shallow_checkout_lacks(
        history, registry, nginx, moto, tmp_path):
    stores = Stores("file", nginx, moto, tmp_path)
    env = _env(tmp_path, registry, stores, "forward")
    older, newer = history["older"], history["newer"]
    for target in ("//app:app.ci", "//app:bundle.ci"):
        _release(older, target, env)
    assert subprocess.run(["git", "cat-file", "-e", older.commit_sha], cwd=newer.path).returncode != 0
    line, image = _release(newer, "//app:app.ci", env)
    _, bundle = _release(newer, "//app:bundle.ci", env)
    assert registry.inspect("forward/pointers/app:stable")["Digest"] == image["digest"]
    assert image["pointers"][0]["action"] == "moved" and image["pointers"][0]["recorded_commit"] == older.commit_sha
    assert bundle["pointers"][0]["action"] == "moved"
    assert stores.read("forward/files/app/bundle/latest") == (newer.commit_sha + "\n").encode()
    assert git(newer.path, "cat-file", "-t", older.commit_sha).strip() == "commit"  # deepened to decide
    # The pointer's commit, where the next release reads it: the standard annotation on its record.
    record = requests.get("{}/v2/forward/releasekit-channel/manifests/pointer.{}".format(
        registry.url, hashlib.sha256(b"forward/pointers/app:stable").hexdigest()), timeout=10,
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).json()
    assert record["annotations"]["org.opencontainers.image.revision"] == newer.commit_sha
    assert record["annotations"]["vnd.releasekit.digest"] == image["digest"]


def _helper_release(tmp_path, registry, repository, workspace, commit, name):
    """A container release run by hand (no Bazel) in workspace, as commit."""
    layout = str(tmp_path / name)
    make_layout(layout, {"/app/" + name: name.encode()})
    manifest, runfiles = releases.container_release(str(tmp_path / ("r-" + name)), layout, repository, "ci", ["stable"])
    env = {"RELEASEKIT_CONFIG": releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host), "CI": "true",
           "RELEASEKIT_COMMIT": commit, "BUILD_WORKSPACE_DIRECTORY": workspace,
           "RELEASEKIT_REPORT": str(tmp_path / "record.json"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = releases.publish(manifest, runfiles, env)
    assert result.returncode == 0, result.stderr
    return result.stdout, json.load(open(tmp_path / "record.json"))


def test_when_git_cannot_tell_the_pointer_stays_and_the_release_says_so(history, registry, tmp_path):
    """Another checkout's later commit recorded `stable`; this shallow checkout does not have it and cannot fetch it
    (its remote is gone). The release publishes its commit tag, leaves `stable`, and says why: it never guesses."""
    newer = history["newer"]
    elsewhere, stranded = str(tmp_path / "elsewhere"), str(tmp_path / "stranded")
    for path in (elsewhere, stranded):
        subprocess.run(["git", "clone", "-q", "--depth=1", "file://" + newer.path, path], check=True)
    git(elsewhere, "-c", "user.email=a@example.com", "-c", "user.name=A", "commit", "-q", "--allow-empty", "-m",
        "later")
    later = git(elsewhere, "rev-parse", "HEAD").strip()
    git(stranded, "remote", "set-url", "origin", "file://" + str(tmp_path / "gone"))
    _helper_release(tmp_path, registry, "unknown/app", elsewhere, later, "first")
    line, record = _helper_release(tmp_path, registry, "unknown/app", stranded, newer.commit_sha, "second")
    assert record["pointers"][0]["action"] == "left" and record["pointers"][0]["recorded_commit"] == later
    assert "stable left at {} (cannot tell whether {} descends from {}: the shallow checkout lacks their history and " \
           "origin could not be fetched from)".format(later[:12], newer.commit_sha[:12], later[:12]) in line
    assert registry.inspect("prod/unknown/app:stable")["Digest"] != record["digest"]
    assert registry.inspect("prod/unknown/app:" + newer.commit_sha)["Digest"] == record["digest"]


def test_a_pointer_with_no_recorded_commit_moves_and_the_release_says_so(registry, tmp_path):
    """`stable` pushed before pointers were recorded (here by skopeo): the next CI release moves it, saying so."""
    layout = str(tmp_path / "before")
    make_layout(layout, {"/app/before": b"before"})
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:" + layout,
                    "docker://{}/prod/unrecorded/app:stable".format(registry.host)], check=True, capture_output=True)
    line, record = _helper_release(tmp_path, registry, "unrecorded/app", str(tmp_path), releases.COMMIT, "after")
    assert record["pointers"][0]["action"] == "moved" and record["pointers"][0]["recorded_commit"] is None
    assert "stable moved (it had no recorded commit: published before releasekit recorded pointers, or by another " \
           "tool)" in line
    assert registry.inspect("prod/unrecorded/app:stable")["Digest"] == record["digest"]


def test_a_full_clone_answers_from_its_own_history(tmp_path):
    """No fetch: every ancestor of the commit is there, so what is not among them is not one of them."""
    from releasekit.publishing import ancestry

    repo = Workspace(str(tmp_path / "full"))
    os.makedirs(repo.path)
    repo.init_git()
    base = git(repo.path, "rev-parse", "HEAD").strip()
    main = repo.commit("main")
    git(repo.path, "checkout", "-q", "-b", "side", base)
    side = repo.commit("side")
    gone = "e" * 40  # a commit this repository never had, nor a remote to ask
    answers = {(recorded, commit): ancestry.relation(repo.path, recorded, commit)
               for recorded, commit in ((base, main), (main, base), (side, main), (gone, main), (main, main))}
    assert {key: answer.relation for key, answer in answers.items()} == {
        (base, main): ancestry.FORWARD, (main, base): ancestry.BEHIND, (side, main): ancestry.DIVERGED,
        (gone, main): ancestry.DIVERGED, (main, main): ancestry.SAME}
    assert [key for key, answer in answers.items() if answer.moves] == [(base, main), (main, main)]
    assert answers[(gone, main)].detail == "{} is not in the history of {}".format(gone[:12], main[:12])
