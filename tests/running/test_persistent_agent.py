"""`releasekit ci` on a persistent agent: one home cache and Bazel server from run to run, the checkout moved by git or
cloned again at the same path, as warm runners do. What the last run left (collect's checkout of the base revision,
its worktree, its Bazel server) changes no selection; the base revision's server is kept warm, as the workspace's
is, and nothing piles up."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from helpers.servers import REPO_ROOT
from helpers.workspace import BAZEL, Workspace, git
from releasekit.core import usage

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")


def package(name, seconds="0"):
    return 'sh_test(name = "{}_test", srcs = ["//tools:ok.sh"], args = ["{}"])\n'.format(name, seconds)


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """A history: a BUILD edit (collect reads the base's rules), two WORKSPACE edits (a server of the base
    revision), two more BUILD edits."""
    repo = Workspace(str(tmp_path_factory.mktemp("agent") / "origin"))
    os.makedirs(repo.path)
    repo.write("WORKSPACE", 'workspace(name = "agent")\n')
    repo.write(".gitignore", "/bazel-*\n/releasekit-logs/\n")
    repo.write("tools/BUILD.bazel", 'exports_files(["ok.sh"])\n')
    repo.write("tools/ok.sh", "#!/bin/sh\nexit 0\n", executable=True)
    for name in ("a", "b"):
        repo.write("{}/BUILD.bazel".format(name), package(name))
    repo.init_git()
    commits = [git(repo.path, "rev-parse", "HEAD").strip()]
    repo.write("a/BUILD.bazel", package("a", "1"))
    commits.append(repo.commit("a: another argument"))
    for number in (1, 2):
        repo.write("WORKSPACE", 'workspace(name = "agent")\n\n# comment {}\n'.format(number))
        commits.append(repo.commit("WORKSPACE: comment {}".format(number)))
    repo.write("b/BUILD.bazel", package("b", "1"))
    commits.append(repo.commit("b: another argument"))
    repo.write("a/BUILD.bazel", package("a", "2"))
    commits.append(repo.commit("a: a third argument"))
    repo.commits = commits
    return repo


def last_command(server):
    """When the Bazel server last ran a command (its output base's command.log)."""
    with open("/proc/{}/cmdline".format(server.pid), "rb") as handle:
        arguments = [a.decode() for a in handle.read().split(b"\0")]
    output_base = next(a.split("=", 1)[1] for a in arguments if a.startswith("--output_base="))
    return os.path.getmtime(os.path.join(output_base, "command.log"))


def ci(checkout, base, cache, logs):
    env = dict(os.environ, RELEASEKIT_BAZEL=BAZEL, XDG_CACHE_HOME=cache, CI="true")
    result = subprocess.run([sys.executable, ENTRY, "ci", "--base", base, "--logs", logs, "--report",
                             os.path.join(logs, "report.json")], cwd=checkout, capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    with open(os.path.join(logs, "report.json")) as handle:
        return sorted(t["label"] for t in json.load(handle)["targets"])


def shutdown(checkout):
    if os.path.isdir(checkout):
        subprocess.run([BAZEL, "shutdown"], cwd=checkout, capture_output=True, timeout=120)


def test_leftovers_of_earlier_runs_change_no_selection_and_do_not_pile_up(origin, tmp_path):
    agent, cache = str(tmp_path / "checkout"), str(tmp_path / "home-cache")
    checkouts = os.path.join(cache, "releasekit", "base-checkouts")
    subprocess.run(["git", "clone", "-q", origin.path, agent], check=True)
    selected, base_servers, base = [], [], None
    try:
        for number in (1, 2, 3, 4):
            subprocess.run(["git", "checkout", "-q", "--force", origin.commits[number]], cwd=agent, check=True)
            began = time.time()
            selected.append(ci(agent, origin.commits[number - 1], cache, str(tmp_path / "logs{}".format(number))))
            assert len(os.listdir(checkouts)) == 1
            base = os.path.join(checkouts, os.listdir(checkouts)[0])
            base_servers.append(usage.bazel_server(base))
            assert git(agent, "worktree", "list", "--porcelain").count("worktree ") == 2
        assert selected == [["//a:a_test"], [], [], ["//b:b_test"]]  # a comment changes no repository
        # The first run (a fresh agent) read the base's rules with its own server, and started none for the base.
        # The WORKSPACE edits needed one: the agent keeps its workspace's server, so it keeps that one too, and the
        # next runs find it running; the last BUILD edit is read by it, not by the workspace's server.
        assert base_servers[0] is None and base_servers[1] is not None
        assert base_servers[3] is not None and base_servers[3].pid == base_servers[2].pid == base_servers[1].pid
        assert last_command(base_servers[3]) >= began

        # The runner clones its workspace again at the same path; the home cache and its base checkout stay.
        shutdown(agent)
        shutil.rmtree(agent)
        subprocess.run(["git", "clone", "-q", origin.path, agent], check=True)
        subprocess.run(["git", "checkout", "-q", "--force", origin.commits[5]], cwd=agent, check=True)
        persistent = ci(agent, origin.commits[4], cache, str(tmp_path / "logs5"))
        assert len(os.listdir(checkouts)) == 1
        assert git(agent, "worktree", "list", "--porcelain").count("worktree ") == 2
    finally:
        shutdown(agent)
        if base:
            shutdown(base)

    # What a fresh agent selects for the same commit.
    fresh = str(tmp_path / "fresh")
    subprocess.run(["git", "clone", "-q", origin.path, fresh], check=True)
    subprocess.run(["git", "checkout", "-q", "--force", origin.commits[5]], cwd=fresh, check=True)
    try:
        assert persistent == ci(fresh, origin.commits[4], str(tmp_path / "fresh-cache"), str(tmp_path / "logs6"))
        assert persistent == ["//a:a_test"]
    finally:
        shutdown(fresh)
