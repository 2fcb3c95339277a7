"""A recorded target graph is read only where its key covers what could differ (graph_key.py), and recorded by the
main line only. Real git, real Bazel, a real store (nginx WebDAV).

Each test records the graph of the base commit's BUILD files, makes the agent's checkout differ in one way, and
collects a source change: where the difference could change the graph, Bazel answers (a `query` runs); where it
cannot, the recorded graph is read (no query).
"""

import glob
import gzip
import hashlib
import json
import os
import shutil
import subprocess

import pytest

from helpers.monorepo import (GRAPH_STORE_LOGIN, change, graph_collect, make_monorepo, record_the_base_graph, reset,
                              run_cli)
from helpers.workspace import BAZEL, Workspace, git


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory):
    yield from make_monorepo(tmp_path_factory)


@pytest.fixture
def repo(monorepo):
    return reset(monorepo)


@pytest.fixture
def store(repo, tmp_path, nginx):
    """The store's URL, with the base commit's graph recorded in it."""
    url = "{}/graphs-{}".format(nginx.url, os.path.basename(str(tmp_path)))
    record_the_base_graph(repo, tmp_path, url)
    return url


def _read_from_graph(selection, commands):
    return "query" not in commands and any(n.startswith("read the target graph recorded at") for n in selection.notes)


def _note(selection):
    return next((n for n in selection.notes if n.startswith("no target graph is read or recorded: ")), None)


# -- what the Bazel command reads: rc files, the wrapper --------------------------------------------------------------

def test_a_users_rc_file_that_changed_keeps_the_graph_unread(repo, tmp_path, nginx):
    """The user's command reads ~/team.bazelrc (--bazelrc); its `query --deleted_packages` changes what //... holds.
    Before: the key named the command only, so the graph recorded before the line was read."""
    url = "{}/graphs-{}".format(nginx.url, os.path.basename(str(tmp_path)))
    user_rc = tmp_path / "team.bazelrc"
    user_rc.write_text("build --verbose_failures\n")
    try:
        record_the_base_graph(repo, tmp_path, url, startup_options="--bazelrc={}".format(user_rc))
        change(repo, {"lib/a.py": "A = 31\n"})
        same, commands = graph_collect(repo, tmp_path, url, startup_options="--bazelrc={}".format(user_rc))
        assert _read_from_graph(same, commands)
        user_rc.write_text("build --verbose_failures\nquery --deleted_packages=oldlib\n")
        changed, commands = graph_collect(repo, tmp_path, url, startup_options="--bazelrc={}".format(user_rc))
        assert "query" in commands and not any(n.startswith("read the target graph") for n in changed.notes)
    finally:
        subprocess.run([BAZEL, "--bazelrc={}".format(user_rc), "shutdown"], cwd=repo.path, capture_output=True)


def test_a_wrapper_script_that_changed_keeps_the_graph_unread(repo, tmp_path, store):
    """The wrapper (here, the one that logs Bazel's commands) is part of the key: it may add options."""
    change(repo, {"lib/a.py": "A = 32\n"})
    wrapper = tmp_path / "bazel"
    wrapper.write_text(wrapper.read_text().replace("exec ", "# a wrapper that passes everything on\nexec "))
    from releasekit.core.http import RetryPolicy
    from releasekit.core.run_context import RunContext
    from releasekit.selection.bazelquery import Bazel
    from releasekit.selection.collect import Collector
    from releasekit.selection.target_graphs import Prepared

    context = RunContext(None, RetryPolicy(), dict(os.environ, **GRAPH_STORE_LOGIN))
    graphs = Prepared(lambda: context.target_graphs(store), [str(wrapper)], context.open_store,
                      workspace=repo.path, record=(False, "a test run"))
    collector = Collector(repo.path, bazel=Bazel(repo.path, command=str(wrapper)), graphs=graphs)
    try:
        selection = collector.collect(repo.base, "HEAD")
    finally:
        collector.close()
    assert not any(n.startswith("read the target graph") for n in selection.notes), selection.notes
    assert "the target graph is not recorded: a test run" in selection.notes


# -- the working tree against the tree at head ------------------------------------------------------------------------

def test_a_sparse_or_assume_unchanged_checkout_keeps_the_graph_unread(repo, tmp_path, store):
    """Before: a file git marks skip-worktree (a sparse checkout leaves it out) went unseen."""
    change(repo, {"lib/a.py": "A = 33\n"})
    git(repo.path, "update-index", "--skip-worktree", "suite/s2.sh")
    try:
        selection, commands = graph_collect(repo, tmp_path, store)
    finally:
        git(repo.path, "update-index", "--no-skip-worktree", "suite/s2.sh")
    assert "query" in commands
    assert _note(selection).startswith("no target graph is read or recorded: git marks files of the workspace "
                                       "skip-worktree or assume-unchanged (suite/s2.sh)")


def test_a_changed_file_of_a_package_the_record_lacks_is_answered_by_bazel(repo, tmp_path, store, nginx):
    """A record without //lib (valid, with its checksum): lib/a.py cannot be answered from it. Before: the change was
    dropped and nothing selected, with no query."""
    from releasekit.selection.query_answers import decode_query_proto

    [record] = glob.glob(nginx.path("graphs-{}/*.graph.gz".format(os.path.basename(str(tmp_path)))))
    with open(record, "rb") as handle:
        header, _, answer = gzip.decompress(handle.read()).partition(b"\n")
    kept = b"".join(chunk for chunk in _targets(answer)
                    if not any(label.startswith("//lib:") for label in decode_query_proto(chunk, True)))
    facts = dict(json.loads(header), sha256=hashlib.sha256(kept).hexdigest())
    with open(record, "wb") as handle:
        handle.write(gzip.compress(json.dumps(facts).encode() + b"\n" + kept))
    change(repo, {"lib/a.py": "A = 34\n"})
    selection, commands = graph_collect(repo, tmp_path, store)
    assert {t.label for t in selection.tests} == {"//app:app_test"} and "query" in commands
    assert "the recorded target graph holds no package //lib; Bazel loads the graph" in selection.notes


def _targets(answer):
    """The proto answer's top-level fields (one target each), as bytes."""
    from releasekit.selection.query_answers import _varint

    position = 0
    while position < len(answer):
        start = position
        _, position = _varint(answer, position)
        length, position = _varint(answer, position)
        position += length
        yield answer[start:position]


# -- untracked and ignored files: only those that can change the graph ------------------------------------------------

@pytest.mark.parametrize("leftovers,read", [
    ({"releasekit-logs/.gitignore": "*\n", "releasekit-logs/tests.log": "a log\n"}, True),  # in no package
    ({"lib/leftover.log": "x\n"}, True),          # //lib globs *.py only
    ({"bazel-leftover/notes.txt": "x\n"}, True),  # a real directory, in no package: nothing can take it
    ({"tree/sub/leftover.log": "x\n"}, False),    # //tree's glob(["**"]) takes it
    ({"untracked/BUILD": ""}, False),             # a package
    ({"bazel-leftover/BUILD": ""}, False),        # a package too, whatever its name
    ({"tools/local.bzl": "X = 1\n"}, False),      # a load() may name it
    ({"app/leftover.log": "x\n"}, False),         # //app loads another repository's Starlark: its globs are unknown
])
def test_only_untracked_files_that_can_change_the_graph_keep_it_unread(repo, tmp_path, store, leftovers, read):
    """Before: any untracked or ignored file (the default releasekit-logs/ on a persistent agent) kept every run's
    graph unread."""
    change(repo, {"lib/a.py": "A = 35\n"})
    for path, text in leftovers.items():
        repo.write(path, text)
    try:
        selection, commands = graph_collect(repo, tmp_path, store)
    finally:  # the fixture's clean keeps bazel-* (Bazel's links): a leftover of that name goes here
        shutil.rmtree(os.path.join(repo.path, "bazel-leftover"), ignore_errors=True)
    assert {t.label for t in selection.tests} == {"//app:app_test"}
    assert _read_from_graph(selection, commands) == read, selection.notes
    if not read:
        assert _note(selection).startswith("no target graph is read or recorded: files git does not track could "
                                           "change the graph: " + sorted(leftovers)[0].split("/")[0])


def test_bazels_own_convenience_links_do_not_count(repo, tmp_path, store):
    built = subprocess.run([BAZEL, "build", "//lib:lib"], cwd=repo.path, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    assert os.path.islink(os.path.join(repo.path, "bazel-bin"))
    change(repo, {"lib/a.py": "A = 36\n"})
    selection, commands = graph_collect(repo, tmp_path, store)
    assert _read_from_graph(selection, commands), selection.notes


# -- keys of small workspaces: submodules, local repositories, computed paths -----------------------------------------

def _key(workspace):
    from releasekit.selection import gitrepo, global_files
    from releasekit.selection.graph_key import identify, loading_key

    repo = gitrepo.Repository(workspace.path)
    files = global_files.find(repo.read_worktree, repo.read_worktree)
    return loading_key(repo, "HEAD", files, identify([BAZEL], workspace.path)[0])


@pytest.fixture
def with_submodule(tmp_path):
    library = Workspace(str(tmp_path / "library"))
    library.write("BUILD", 'filegroup(name = "lib", srcs = ["lib.txt"], visibility = ["//visibility:public"])\n')
    library.write("lib.txt", "1\n")
    library.init_git()
    workspace = Workspace(str(tmp_path / "ws"))
    workspace.write("WORKSPACE", "")
    workspace.write("BUILD", "")
    workspace.init_git()
    git(workspace.path, "-c", "protocol.file.allow=always", "submodule", "add", "-q", library.path,
        "third_party/library")
    workspace.commit("library")
    workspace.library = library
    return workspace


def test_a_submodules_checkout_is_part_of_the_key(with_submodule):
    """Before: only the commit the tree names was keyed: a submodule not checked out (no packages to Bazel), checked
    out at another commit, or holding an untracked BUILD file gave the key of a proper checkout."""
    checked_out, why = _key(with_submodule)
    assert checked_out and why is None
    submodule = os.path.join(with_submodule.path, "third_party/library")
    with open(os.path.join(submodule, "notes.txt"), "w") as handle:
        handle.write("a file in no package of the submodule's glob\n")
    assert _key(with_submodule) == (checked_out, None)
    os.unlink(os.path.join(submodule, "notes.txt"))
    os.makedirs(os.path.join(submodule, "extra"))
    open(os.path.join(submodule, "extra", "BUILD"), "w").close()
    key, why = _key(with_submodule)
    assert key is None and "third_party/library/extra/BUILD (a BUILD file)" in why, why
    git(with_submodule.path, "submodule", "deinit", "-q", "-f", "third_party/library")
    not_checked_out, why = _key(with_submodule)
    assert not_checked_out and not_checked_out != checked_out
    git(with_submodule.path, "-c", "protocol.file.allow=always", "submodule", "update", "-q", "--init")
    with_submodule.library.write("lib.txt", "2\n")
    newer = with_submodule.library.commit("two")
    git(submodule, "fetch", "-q", "origin")
    git(submodule, "checkout", "-q", newer)
    key, why = _key(with_submodule)
    assert key is None and why.startswith("submodule third_party/library is checked out at {}".format(newer[:12]))


def test_a_local_path_override_outside_the_workspace_is_keyed_by_its_build_files(tmp_path):
    """Before: only WORKSPACE-level files were read for local repositories; MODULE.bazel's overrides were not."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "BUILD").write_text("filegroup(name = 'x', srcs = ['x.txt'])\n")
    (outside / "MODULE.bazel").write_text('module(name = "outside")\n')
    workspace = Workspace(str(tmp_path / "ws"))
    workspace.write("WORKSPACE", "")
    workspace.write("MODULE.bazel", 'bazel_dep(name = "outside")\nlocal_path_override(module_name = "outside", '
                                    'path = "{}")\n'.format(outside))
    workspace.init_git()
    first = _key(workspace)[0]
    (outside / "x.txt").write_text("a source: its content is no part of the graph\n")
    assert _key(workspace)[0] == first
    (outside / "BUILD").write_text("filegroup(name = 'x', srcs = ['x.txt', 'y.txt'])\n")
    assert _key(workspace)[0] != first


def test_a_computed_repository_path_gives_no_key(tmp_path):
    workspace = Workspace(str(tmp_path / "ws"))
    workspace.write("WORKSPACE",
                    'VENDOR = "/srv/vendor"\n\nlocal_repository(name = "vendor", path = VENDOR + "/lib")\n')
    workspace.init_git()
    key, why = _key(workspace)
    assert key is None and why == "a repository `path` is computed (WORKSPACE:3), so what it holds cannot be keyed"


# -- who records ------------------------------------------------------------------------------------------------------

def test_only_a_main_line_run_records_the_graph(repo, tmp_path, nginx):
    """Before: every run with a store recorded, pull-request jobs too."""
    url = "{}/graphs-{}".format(nginx.url, os.path.basename(str(tmp_path)))
    change(repo, {"lib/a.py": "A = 37\n"})
    args = ("collect", "--base", repo.base, "--target-graphs", url)
    plain = run_cli(*args, cwd=repo.path, **GRAPH_STORE_LOGIN)
    assert plain.returncode == 0, plain.stderr
    assert "the target graph is not recorded: only a main-line run records it (--record-target-graphs)" in plain.stdout
    # What GitHub Actions sets in a pull_request job; the step passes the flag on the main line only, but a job that
    # passes it anyway is refused.
    pull_request = run_cli(*args, "--record-target-graphs", cwd=repo.path, GITHUB_ACTIONS="true",
                           GITHUB_EVENT_NAME="pull_request", GITHUB_REF="refs/pull/17/merge", **GRAPH_STORE_LOGIN)
    assert "the target graph is not recorded: the CI engine says this run builds a pull request (17)" in \
        pull_request.stdout, pull_request.stdout + pull_request.stderr
    assert not glob.glob(nginx.path("graphs-{}/*.graph.gz".format(os.path.basename(str(tmp_path)))))
    main_line = run_cli(*args, "--record-target-graphs", cwd=repo.path, GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="push",
                        GITHUB_REF="refs/heads/main", **GRAPH_STORE_LOGIN)
    assert "recorded the target graph at {}/".format(url) in main_line.stdout, main_line.stdout + main_line.stderr
    read = run_cli(*args, cwd=repo.path, GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="pull_request",
                   GITHUB_REF="refs/pull/17/merge", **GRAPH_STORE_LOGIN)
    assert "read the target graph recorded at" in read.stdout and "(0 bazel queries)" in read.stdout
