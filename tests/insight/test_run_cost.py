"""What a run costs, on real runs: dispatch measures its CPU (its own processes, each release's, and the Bazel
server's share), writes it to its report and its history record with where its wall time went, and insight shows
CPU per run and per release, reading older records that carry none."""

import glob
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
    assert set(timings) == {"started", "select", "tests", "gate", "releases"}
    assert all(timings[phase] >= 0 for phase in ("select", "tests", "gate", "releases")) and timings["tests"] > 0

    # A warm server: the second run is charged what the server spent for it, not what it spent since it started.
    second = dispatch(workspace, tmp_path / "second")
    server = usage.bazel_server(workspace.path)
    assert server is not None
    assert 0 < second["cpu"]["bazel"] < server.cpu_seconds - cpu["bazel"] / 2


def test_insight_shows_cpu_per_run_and_per_release_and_reads_records_without_it(workspace, tmp_path):
    dispatch(workspace, tmp_path / "one")
    dispatch(workspace, tmp_path / "two")
    records = sorted(glob.glob(os.path.join(workspace.history, "runs", "*", "*.json")))
    newest = json.load(open(records[-1]))
    assert newest["cpu"]["bazel"] is not None and newest["cpu"]["seconds"] > 0
    labels = newest["targets"]["labels"]
    cpu_column = newest["targets"]["cpu_seconds"]
    assert cpu_column[labels.index(RELEASE)] > 0 and cpu_column[labels.index("//apps:ok_test")] is None

    history = tmp_path / "history"
    for number, path in enumerate(records):
        record = json.load(open(path))
        if number == 0:  # as releasekit wrote records before it measured CPU
            record.pop("cpu", None)
            record["targets"].pop("cpu_seconds", None)
        target = history / os.path.relpath(path, workspace.history)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(record))
    out, page = tmp_path / "insight.json", tmp_path / "insight.html"
    result = subprocess.run([sys.executable, ENTRY, "insight", "--history", "file://{}".format(history), "--json",
                             str(out), "--out", str(page)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.load(open(out))
    assert figures["runs"] == len(records) and figures["skipped_objects"] == []
    cpu = figures["cpu"]
    assert cpu["runs"] == len(records) - 1 and cpu["p50_seconds"] > 0
    assert [g["command"] for g in cpu["per_command"]] == ["dispatch"]
    assert cpu["per_command"][0]["mean_bazel_seconds"] > 0
    assert [t["label"] for t in cpu["targets"]] == [RELEASE] and cpu["targets"][0]["runs"] == len(records) - 1
    assert "CPU per run: P50" in result.stdout
    text = page.read_text()
    assert "<h2>CPU</h2>" in text and "id='cpu-per-run'" in text and RELEASE in text.split("<h2>CPU</h2>")[1]
