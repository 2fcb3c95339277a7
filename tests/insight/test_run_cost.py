"""What a run costs, on real runs: dispatch measures its CPU (its own processes, each release's, and the Bazel
server's share) and writes it to its report and its history record with where its wall time went."""

import json
import os
import subprocess
import sys

import pytest

from helpers.servers import REPO_ROOT
from helpers.workspace import BAZEL, Workspace
from releasekit.core import usage
from releasekit.selection.selection_file import Selected, Selection

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
RELEASE = "//apps:app.ci"
BUILD = """load("@rules_release//rules:defs.bzl", "container_release", "image_layout")

sh_test(name = "ok_test", srcs = ["ok.sh"])

image_layout(name = "image", files = {"run.sh": "/run.sh"}, entrypoint = ["/run.sh"])

container_release(name = "app", image = ":image", repository = "cost/app")
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, registry):
    root = tmp_path_factory.mktemp("cost")
    repo = Workspace(str(root / "repo"))
    os.makedirs(repo.path)
    repo.write("WORKSPACE", 'local_repository(name = "rules_release", path = "{}")\n'.format(REPO_ROOT))
    repo.write(".gitignore", "/bazel-*\n")
    repo.write("apps/BUILD.bazel", BUILD)
    repo.write("apps/ok.sh", "#!/bin/sh\nexit 0\n", executable=True)
    repo.write("apps/run.sh", "#!/bin/sh\necho app\n", executable=True)
    repo.history = str(root / "history")
    repo.write("releasekit.yaml", "channels:\n  ci: {{registry: 'http://{}/prod'}}\nhistory: 'file://{}'\n".format(
        registry.host, repo.history))
    repo.init_git()
    repo.cache = str(root / "cache")
    selection = Selection("base", "head", False, [Selected("//apps:ok_test", "sh_test", [])],
                          [Selected(RELEASE, "artifact_ci_release", [])], [])
    repo.selection = {}
    for kind in ("tests", "releases"):
        repo.selection[kind] = str(root / "{}.json".format(kind))
        with open(repo.selection[kind], "w") as handle:
            json.dump(selection.report(kind), handle)
    try:
        yield repo
    finally:
        repo.shutdown()


def dispatch(repo, logs):
    run_env = dict(os.environ, RELEASEKIT_BAZEL=BAZEL, XDG_CACHE_HOME=repo.cache, CI="true")
    result = subprocess.run([sys.executable, ENTRY, "dispatch", "--tests", repo.selection["tests"], "--releases",
                             repo.selection["releases"], "--logs", str(logs)], cwd=repo.path, capture_output=True,
                            text=True, env=run_env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    with open(os.path.join(str(logs), "report.json")) as handle:
        return json.load(handle)


def test_a_run_counts_its_own_cpu_each_release_and_the_bazel_server(workspace, tmp_path):
    first = dispatch(workspace, tmp_path / "first")
    cpu = first["cpu"]
    # The server started in this run: its start-up alone is seconds of CPU; the run's own processes cost some too.
    assert cpu["bazel"] > 1.0 and cpu["releasekit"] > 0.1
    assert cpu["seconds"] == pytest.approx(cpu["bazel"] + cpu["releasekit"], abs=0.01)
    targets = {t["label"]: t for t in first["targets"]}
    assert targets[RELEASE]["status"] == "published" and targets[RELEASE]["cpu_seconds"] > 0
    assert targets["//apps:ok_test"]["cpu_seconds"] is None  # Bazel's build events give no CPU per test
    timings = first["timings"]
    assert set(timings) == {"started", "select", "tests", "releases"}
    assert all(timings[phase] >= 0 for phase in ("select", "tests", "releases")) and timings["tests"] > 0

    # A warm server: the second run is charged what the server spent for it, not what it spent since it started.
    second = dispatch(workspace, tmp_path / "second")
    server = usage.bazel_server(workspace.path)
    assert server is not None
    assert 0 < second["cpu"]["bazel"] < server.cpu_seconds - cpu["bazel"] / 2
