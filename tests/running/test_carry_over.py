"""Nothing a run leaves undone is lost, with real Bazel, git, registry and run history: a quarantined test that failed
is run again at the next commit until it passes or is judged broken, and a release held back in a green run is
selected again until it publishes; from the history (`ci`) and from the previous run's reports (`collect`)."""

import json
import os
import socket

import pytest

from helpers.servers import REPO_ROOT
from helpers.workspace import git, rules_monorepo

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
LOAD = 'load("@rules_release//rules:defs.bzl", "container_release", "image_layout")\n\n'
WORKS = "#!/bin/sh\necho works\n"
FILES = {
    ".gitignore": "/bazel-*\n",
    "libs/q/BUILD.bazel": 'exports_files(["q.sh"])\n\n'
                          'sh_test(name = "q_test", srcs = ["q_test.sh"], data = ["q.sh"])\n',
    "libs/q/q.sh": WORKS,
    "libs/q/q_test.sh": '#!/bin/sh\ngrep -q works "$(dirname "$0")/q.sh"\n',
    # The release that packages what the quarantined test tests, and one that shares nothing with it.
    "apps/qapp/BUILD.bazel": LOAD + 'image_layout(name = "image", files = {"//libs/q:q.sh": "/q.sh", '
                                    '"run.sh": "/run.sh"})\n\ncontainer_release(name = "qapp", image = ":image", '
                                    'repository = "carry/qapp")\n',
    "apps/qapp/run.sh": "#!/bin/sh\n. /q.sh\n",
    "apps/other/BUILD.bazel": LOAD + 'image_layout(name = "image", files = {"run.sh": "/run.sh"})\n\n'
                                     'container_release(name = "other", image = ":image", '
                                     'repository = "carry/other")\n',
    "apps/other/run.sh": "#!/bin/sh\necho other\n",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    yield from rules_monorepo(tmp_path_factory, "carry", FILES)


def outcomes_of(report):
    return {t["label"]: t for t in json.load(open(report))["targets"]}


def test_what_a_green_run_left_undone_is_run_again_until_it_passes_or_is_broken(repo, registry, tmp_path):
    """Before: run N+1's base is run N, so a quarantined test that failed every attempt in N was not selected again,
    and a change to the release alone published the broken library; the release N held back was never selected
    again."""
    history = "file://{}".format(tmp_path / "history")
    stores = tmp_path / "stores"
    (tmp_path / "releasekit.yaml").write_text(
        "channels:\n  ci: {{registry: 'http://{0}/carry', files: 'file://{1}'}}\n  dev: {{registry: "
        "'http://{0}/carry-dev'}}\nhistory: '{2}'\n".format(registry.host, stores, history))
    (tmp_path / "quarantine.txt").write_text("//libs/q:q_test\n")
    env = {"RELEASEKIT_CONFIG": str(tmp_path / "releasekit.yaml")}

    def ci(name, base, *args):
        result = repo.releasekit("ci", "--base", base, "--head", "HEAD", "--quarantine",
                                 str(tmp_path / "quarantine.txt"), "--logs", str(tmp_path / name), *args, env=env)
        assert "Traceback" not in result.stderr, result.stderr
        return result, outcomes_of(tmp_path / name / "report.json")

    root = git(repo.path, "rev-parse", "HEAD").strip()
    # Run N: the library breaks; its test is quarantined, fails every attempt, and holds back both releases (gate
    # all). The run is green.
    broken = repo.change({"libs/q/q.sh": "#!/bin/sh\necho broke\n", "apps/other/run.sh": "#!/bin/sh\necho other 2\n"},
                         "break q, change the other app")
    result, outcomes = ci("run1", root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcomes["//libs/q:q_test"]["status"] == "failed" and outcomes["//libs/q:q_test"]["quarantined"]
    assert {outcomes[label]["status"] for label in ("//apps/qapp:qapp.ci", "//apps/other:other.ci")} == {"held back"}

    # Run N+1 changes the app alone: from the history, the quarantined test runs again, fails at a second
    # consecutive commit: broken, the run fails, and nothing publishes.
    touched = repo.change({"apps/qapp/run.sh": "#!/bin/sh\n. /q.sh\necho qapp 2\n"}, "change the app alone")
    result, outcomes = ci("run2", broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert outcomes["//libs/q:q_test"]["status"] == "failed" and not outcomes["//libs/q:q_test"]["quarantined"]
    assert outcomes["//libs/q:q_test"]["reason"].startswith("broken, not flaky: failed every attempt at 2 consecutive")
    assert {outcomes[label]["status"] for label in ("//apps/qapp:qapp.ci", "//apps/other:other.ci")} == {"held back"}
    assert "carried over from" in result.stdout and registry.tags("carry/carry/qapp") == []
    assert not [name for name in registry.catalog() if name.startswith("carry/")]

    # collect given run N's report selects both again, whatever its own change reaches, and says why.
    collected = repo.releasekit("collect", "--base", broken, "--head", "HEAD", "--previous-report",
                                str(tmp_path / "run1" / "report.json"), "--tests-out", str(tmp_path / "tests.json"),
                                "--releases-out", str(tmp_path / "releases.json"), env=env)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    tests = {t["label"]: t["reasons"] for t in json.load(open(tmp_path / "tests.json"))["targets"]}
    releases = {t["label"]: t["reasons"] for t in json.load(open(tmp_path / "releases.json"))["targets"]}
    assert tests == {"//libs/q:q_test": ["carried over from {}: failed (quarantined)".format(broken[:12])]}
    assert set(releases) == {"//apps/qapp:qapp.ci", "//apps/other:other.ci"}
    assert releases["//apps/other:other.ci"] == ["carried over from {}: held back".format(broken[:12])]

    # The fix: the test passes, and both releases, the one nothing of this change reaches too, publish.
    repo.change({"libs/q/q.sh": WORKS}, "mend q")
    result, outcomes = ci("run3", touched)
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcomes["//libs/q:q_test"]["status"] == "passed"
    assert {outcomes[label]["status"] for label in ("//apps/qapp:qapp.ci", "//apps/other:other.ci")} == {"published"}

    # Done: the next run carries nothing over.
    repo.change({"apps/qapp/run.sh": FILES["apps/qapp/run.sh"]}, "the app as it was")
    head = git(repo.path, "rev-parse", "HEAD").strip()
    collected = repo.releasekit("collect", "--base", "HEAD~1", "--head", head, "--history", history,
                                "--tests-out", str(tmp_path / "tests4.json"),
                                "--releases-out", str(tmp_path / "releases4.json"), env=env)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert [t["label"] for t in json.load(open(tmp_path / "releases4.json"))["targets"]] == ["//apps/qapp:qapp.ci"]
    assert json.load(open(tmp_path / "tests4.json"))["targets"] == []


def test_when_the_history_cannot_be_read_ci_publishes_nothing(repo, registry, tmp_path):
    """What the last run left undone is not known: every release is held back, and the run fails."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "releasekit.yaml").write_text(
        "channels:\n  ci: {{registry: 'http://{0}/carryx'}}\n  dev: {{registry: 'http://{0}/carryx-dev'}}\n"
        "history: 'http://127.0.0.1:{1}/history'\n".format(registry.host, port))
    base = git(repo.path, "rev-parse", "HEAD").strip()
    repo.change({"apps/other/run.sh": "#!/bin/sh\necho other 3\n"}, "change the other app")
    result = repo.releasekit("ci", "--base", base, "--head", "HEAD", "--logs", str(tmp_path / "logs"),
                             env={"RELEASEKIT_CONFIG": str(tmp_path / "releasekit.yaml")})
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stdout + result.stderr
    outcomes = outcomes_of(tmp_path / "logs" / "report.json")
    assert outcomes["//apps/other:other.ci"]["status"] == "held back"
    assert "what the last run of this branch left undone is not known: the run history" in \
        outcomes["//apps/other:other.ci"]["reason"]
    assert not [name for name in registry.catalog() if name.startswith("carryx/")]
    repo.change({"apps/other/run.sh": FILES["apps/other/run.sh"]}, "the other app as it was")
