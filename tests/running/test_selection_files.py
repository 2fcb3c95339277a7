"""dispatch given hand-written selection files, with real Bazel 4.2, git and registry: a test_suite runs as its tests,
a label that does not exist is named plainly, and the summary reads well (counts, columns)."""

import json
import os
import subprocess
import sys

import pytest

from helpers.servers import REPO_ROOT
from helpers.workspace import BAZEL, rules_monorepo

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
FILES = {
    ".gitignore": "/bazel-*\n",
    "libs/BUILD.bazel": 'exports_files(["lib.txt"])\n\n'
                        'sh_test(name = "a_test", srcs = ["ok.sh"], data = ["lib.txt"])\n\n'
                        'sh_test(name = "b_test", srcs = ["ok.sh"])\n\n'
                        'sh_test(name = "broken_test", srcs = ["fail.sh"])\n\n'
                        'test_suite(name = "suite", tests = [":a_test", ":b_test"])\n',
    "libs/lib.txt": "lib\n",
    "libs/ok.sh": "#!/bin/sh\ntrue\n",
    "libs/fail.sh": "#!/bin/sh\nexit 1\n",
    "apps/BUILD.bazel": 'load("@rules_release//rules:defs.bzl", "file_release")\n\n'
                        'file_release(name = "app", src = "//libs:lib.txt")\n\n'
                        'file_release(name = "other", src = "other.txt")\n',
    "apps/other.txt": "other\n",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    yield from rules_monorepo(tmp_path_factory, "files", FILES)


def dispatch(repo, tmp_path, name, tests, releases, *args):
    paths = []
    for kind, labels in (("tests", tests), ("releases", releases)):
        path = tmp_path / "{}-{}.json".format(name, kind)
        path.write_text(json.dumps({"format_version": 1, "kind": kind, "targets": [
            {"label": label, "kind": "sh_test" if kind == "tests" else "file_release", "reasons": []}
            for label in labels]}))
        paths.append(str(path))
    (tmp_path / "releasekit.yaml").write_text("channels:\n  ci: {{files: 'file://{}'}}\n".format(tmp_path / "files"))
    result = subprocess.run([sys.executable, ENTRY, "dispatch", "--tests", paths[0], "--releases", paths[1], "--logs",
                             str(tmp_path / name), *args], cwd=repo.path, capture_output=True, text=True, timeout=900,
                            env=dict(os.environ, RELEASEKIT_BAZEL=BAZEL, XDG_CACHE_HOME=repo.cache, CI="true",
                                     RELEASEKIT_CONFIG=str(tmp_path / "releasekit.yaml")))
    assert "Traceback" not in result.stderr, result.stderr
    report = tmp_path / name / "report.json"
    return result, ({t["label"]: t for t in json.load(open(report))["targets"]} if report.exists() else {})


def test_a_test_suite_runs_as_its_tests(repo, tmp_path):
    """Before: `failed - Bazel reported no result` for the suite, and every release held back."""
    result, outcomes = dispatch(repo, tmp_path, "suite", ["//libs:suite"], ["//apps:app.ci"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert {label: o["status"] for label, o in outcomes.items()} == {
        "//libs:a_test": "passed", "//libs:b_test": "passed", "//apps:app.ci": "published"}
    assert "test_suite //libs:suite runs as 2 tests: //libs:a_test, //libs:b_test" in result.stdout


def test_the_summary_counts_and_columns_read_well(repo, tmp_path):
    """Before: `shard 1/1: 1 tests, 0 releases`, and `failed (quarantined)` pushed its row's columns out of line."""
    (tmp_path / "quarantine.txt").write_text("//libs:broken_test\n")
    result, outcomes = dispatch(repo, tmp_path, "columns", ["//libs:broken_test", "//libs:a_test"], [],
                                "--quarantine", str(tmp_path / "quarantine.txt"), "--shard", "1/1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "shard 1/1: 2 tests, 0 releases" in result.stdout
    table = [line for line in result.stdout.splitlines() if line.startswith(("kind ", "test "))]
    header = table[0]
    assert len(table) == 3 and "failed (quarantined)" in result.stdout
    for row in table[1:]:  # the seconds column ends where the header's does
        assert row.index("  //") == header.index("  target"), table
    result, _ = dispatch(repo, tmp_path, "one", ["//libs:a_test"], [], "--shard", "1/1")
    assert result.returncode == 0 and "shard 1/1: 1 test, 0 releases" in result.stdout, result.stdout + result.stderr


def test_a_test_that_does_not_exist_is_named_plainly(repo, tmp_path):
    """Before: the deps gate's fallback note said "Fix the workspace ... `bazel query //...` shows the same error"."""
    result, outcomes = dispatch(repo, tmp_path, "missing", ["//libs:missing_test", "//libs:a_test"],
                                ["//apps:other.ci"], "--gate", "deps")
    assert result.returncode == 1, result.stdout + result.stderr
    assert outcomes["//libs:missing_test"]["status"] != "passed"
    assert "Fix the workspace" not in result.stdout and "bazel query //..." not in result.stdout, result.stdout
    assert "//libs:missing_test" in result.stdout
