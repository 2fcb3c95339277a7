"""Two CI releases at once: real concurrent publisher processes against the real registry and each store (nginx WebDAV,
moto S3, a directory), the stores reached over a little network latency as a CI agent reaches them.

A pointer moves only forward and a destination has one owner even when two releases read before either writes: the
stores make read-decide-write a compare-and-swap; the registry, which has none, gets the record-settle-confirm
protocol of tag_moves.py. Each scenario runs a bounded number of trials, each on a fresh destination.
"""

import json
import os
import subprocess
import sys

import pytest
import requests

from conftest import TEST_PASSWORD, TEST_USER
from helpers import releases
from helpers.images import make_layout
from helpers.slow_proxy import SlowProxy
from helpers.workspace import Workspace, git

TRIALS = 5
LATENCY = 0.03  # seconds each store request takes on its way


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A repository with an older commit and a newer one that descends from it."""
    work = Workspace(str(tmp_path_factory.mktemp("races") / "work"))
    os.makedirs(work.path)
    work.write("app/bundle.txt", "older\n")
    work.init_git()
    older = git(work.path, "rev-parse", "HEAD").strip()
    work.write("app/bundle.txt", "newer\n")
    return work.path, older, work.commit("newer")


class Store:
    """One store kind behind a proxy that adds latency, with how to read an object back."""

    def __init__(self, kind, nginx, moto, tmp_path):
        self.kind, self.nginx, self.moto, self.tmp = kind, nginx, moto, tmp_path
        self.proxy = None
        self.env = {"RELEASEKIT_FILES_USERNAME": TEST_USER, "RELEASEKIT_FILES_PASSWORD": TEST_PASSWORD}
        if kind == "http":
            self.proxy = SlowProxy(nginx.url.split("//", 1)[1], delay_seconds=LATENCY)
            self.url = self.proxy.url + "/races"
        elif kind == "s3":
            self.proxy = SlowProxy(moto.url.split("//", 1)[1], delay_seconds=LATENCY)
            self.url = "s3://{}/races".format(moto.bucket)
            self.env.update(moto.environ, RELEASEKIT_S3_ENDPOINT_URL=self.proxy.url)
        else:
            self.url = "file://{}".format(tmp_path / "store")

    def read(self, path):
        if self.kind == "http":
            response = requests.get("{}/races/{}".format(self.nginx.url, path), timeout=10)
            return response.content if response.status_code == 200 else None
        if self.kind == "s3":
            return self.moto.get("races/" + path)
        full = self.tmp / "store" / path
        return full.read_bytes() if full.exists() else None

    def stop(self):
        if self.proxy:
            self.proxy.stop()


@pytest.fixture(params=["http", "s3", "file"])
def store(request, nginx, moto, tmp_path, isolated_home):
    made = Store(request.param, nginx, moto, tmp_path)
    yield made
    made.stop()


def _start(manifest, runfiles, env):
    run_env = dict(os.environ)
    run_env.pop("CI", None)
    run_env.update(env, CI="true", RELEASEKIT_DIRTY="false")
    return subprocess.Popen([sys.executable, releases.ENTRY, "publish", "--manifest", manifest, "--runfiles", runfiles],
                            env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(processes):
    return [(process.wait(timeout=300),) + process.communicate() for process in processes]


def _files_config(path, url, trial):
    path.write_text("channels:\n  ci: {{files: '{0}/{1}'}}\n  dev: {{files: '{0}/{1}-dev'}}\n".format(url, trial))
    return str(path)


def test_two_file_releases_at_once_leave_latest_at_the_newer_commit(history, store, tmp_path):
    """Before: both read `latest` before either wrote it, and the one that wrote last won, older or not."""
    workspace, older, newer = history
    for trial in range(TRIALS):
        config = _files_config(tmp_path / "t{}.yaml".format(trial), store.url, "pointer{}".format(trial))
        started = []
        for commit, content in ((older, b"older\n"), (newer, b"newer\n")):
            source = tmp_path / "{}-{}.txt".format(trial, commit[:7])
            source.write_bytes(content)
            manifest, runfiles = releases.file_release(str(tmp_path / "{}-{}".format(trial, commit[:7])), str(source))
            env = dict(store.env, RELEASEKIT_CONFIG=config, RELEASEKIT_COMMIT=commit,
                       BUILD_WORKSPACE_DIRECTORY=workspace)
            started.append(_start(manifest, runfiles, env))
        for code, out, err in _finish(started):
            assert code == 0, err
            assert TEST_PASSWORD not in out + err
        base = "pointer{}/app/bundle/".format(trial)
        assert store.read(base + "latest") == (newer + "\n").encode(), "trial {}".format(trial)
        assert store.read(base + older + "/fleet-bundle.tar.gz") == b"older\n"
        assert json.loads(store.read(base + newer + "/release.json"))["commit"] == newer


def test_two_first_releases_of_two_labels_at_once_leave_one_owner(history, store, tmp_path):
    """Before: both read no owner record, both wrote one, and both published to the one path."""
    workspace, _, newer = history
    for trial in range(TRIALS):
        config = _files_config(tmp_path / "o{}.yaml".format(trial), store.url, "owner{}".format(trial))
        started = []
        for label in ("//app:bundle", "@copy//app:bundle"):
            source = tmp_path / "o{}-{}.txt".format(trial, len(label))
            source.write_bytes(label.encode())
            manifest, runfiles = releases.file_release(str(tmp_path / "o{}-{}".format(trial, len(label))), str(source),
                                                       release=label)
            env = dict(store.env, RELEASEKIT_CONFIG=config, RELEASEKIT_COMMIT=newer, RELEASEKIT_VERSION="1.0",
                       BUILD_WORKSPACE_DIRECTORY=workspace)
            started.append(_start(manifest, runfiles, env))
        outcomes = _finish(started)
        codes = sorted(code for code, _, _ in outcomes)
        assert codes == [0, 3], outcomes
        owner = store.read("owner{}/app/bundle/.releasekit-owner".format(trial)).decode().strip()
        winner = ("//app:bundle", "@copy//app:bundle")[[code for code, _, _ in outcomes].index(0)]
        assert owner == winner, outcomes
        refused = [err for code, _, err in outcomes if code == 3][0]
        assert "DestinationOwnedError" in refused and "belongs to " + winner in refused
        assert store.read("owner{}/app/bundle/1.0/fleet-bundle.tar.gz".format(trial)) == winner.encode()


def _image(tmp_path, name, content):
    layout = str(tmp_path / (name + "-image"))
    return layout, make_layout(layout, {"/app/stamp": content, "/app/run": b"#!/bin/sh\n"}, entrypoint=["/app/run"])


def test_two_image_releases_at_once_leave_stable_at_the_newer_commit(history, registry, tmp_path, isolated_home):
    """Before: `stable` and its record were read, decided and written with no condition: the last writer won."""
    workspace, older, newer = history
    config = releases.write_config(str(tmp_path / "releasekit.yaml"), registry.host)
    for trial in range(TRIALS):
        repository = "races/stable{}".format(trial)
        started, digests = [], {}
        for commit in (older, newer):
            layout, digests[commit] = _image(tmp_path, "{}-{}".format(trial, commit[:7]), commit.encode())
            manifest, runfiles = releases.container_release(str(tmp_path / "{}-{}".format(trial, commit[:7])), layout,
                                                            repository, "ci", ["stable"])
            started.append(_start(manifest, runfiles, {"RELEASEKIT_CONFIG": config, "RELEASEKIT_COMMIT": commit,
                                                       "BUILD_WORKSPACE_DIRECTORY": workspace}))
        for code, _, err in _finish(started):
            assert code == 0, err
            assert "Traceback" not in err
        stable = registry.inspect("prod/{}:stable".format(repository))["Digest"]
        assert stable == digests[newer], "trial {}".format(trial)
        for commit in (older, newer):
            assert registry.inspect("prod/{}:{}".format(repository, commit))["Digest"] == digests[commit]


def test_two_first_image_releases_of_two_labels_at_once_leave_one_owner(history, registry, tmp_path, isolated_home):
    """Before: both claimed the new repository, and its commit tag and `stable` held different labels' images; the
    first pushes to a fresh namespace at once also failed creating the channel marker (HTTP 400)."""
    workspace, _, newer = history
    for trial in range(TRIALS):
        config = tmp_path / "o{}.yaml".format(trial)  # a fresh namespace: its channel marker is created at once too
        config.write_text("channels:\n  ci: {{registry: 'http://{0}/owner{1}'}}\n  dev: {{registry: 'http://{0}/owner{1}"
                          "-dev'}}\n".format(registry.host, trial))
        started, digests = [], {}
        for label in ("//app:app", "//copy:app"):
            layout, digests[label] = _image(tmp_path, "o{}-{}".format(trial, len(label)), label.encode())
            manifest, runfiles = releases.container_release(str(tmp_path / "o{}-{}".format(trial, len(label))), layout,
                                                            "races/owned", "ci", ["stable"])
            with open(manifest) as handle:
                data = json.load(handle)
            data.update(release=label, target=label + ".ci")
            with open(manifest, "w") as handle:
                json.dump(data, handle)
            started.append(_start(manifest, runfiles, {"RELEASEKIT_CONFIG": str(config), "RELEASEKIT_COMMIT": newer,
                                                       "BUILD_WORKSPACE_DIRECTORY": workspace}))
        outcomes = _finish(started)
        assert sorted(code for code, _, _ in outcomes) == [0, 3], outcomes
        winner = ("//app:app", "//copy:app")[[code for code, _, _ in outcomes].index(0)]
        refused = [err for code, _, err in outcomes if code == 3][0]
        assert "DestinationOwnedError" in refused and "belongs to " + winner in refused, refused
        for tag in (newer, "stable"):
            assert registry.inspect("owner{}/races/owned:{}".format(trial, tag))["Digest"] == digests[winner]
