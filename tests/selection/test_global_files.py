"""Global files: what MODULE.bazel and WORKSPACE's repositories name, the Bazel a workspace chooses, and `.scl` files.

Real git, real Bazel 4.2.3 (which reads no MODULE.bazel: collect reads its text). The `.scl` test needs a Bazel that
loads `.scl` files (7 and later) and is skipped, saying so, where the Bazel here cannot; the judging of `.scl` files
is tested here with real git.
"""

import subprocess

import pytest

from helpers.monorepo import ALL_TESTS, FILES, change, make_monorepo, reset
from helpers.workspace import BAZEL, Workspace, git


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory):
    yield from make_monorepo(tmp_path_factory)


@pytest.fixture
def repo(monorepo):
    return reset(monorepo)


def _head(repo):
    return git(repo.path, "rev-parse", "HEAD").strip()


MODULE = ('module(name = "fixture")\n\n'
          'go_deps = use_extension("@gazelle//:extensions.bzl", "go_deps")\n'
          'go_deps.from_file(go_mod = "//third_party:go.mod")\n\n'
          'include("//third_party:deps.MODULE.bazel")\n')
SEGMENT = 'bazel_dep(name = "rules_cc", version = "0.0.9")\n'


@pytest.mark.parametrize("path,text,named", [
    ("third_party/go.mod", "module example.com/fixture\n\ngo 1.22\n\nrequire example.com/lib v1.1.0\n",
     "third_party/go.mod"),
    ("third_party/deps.MODULE.bazel", SEGMENT.replace("0.0.9", "0.0.10"), "third_party/deps.MODULE.bazel"),
])
def test_a_file_module_bazel_names_selects_everything_and_is_named(repo, path, text, named):
    """A module extension reads go.mod; an include()d segment is MODULE.bazel itself. Before: both were plain
    source files of //third_party, which no target uses: nothing was selected."""
    change(repo, {"MODULE.bazel": MODULE, "third_party/go.mod": "module example.com/fixture\n\ngo 1.22\n",
                  "third_party/deps.MODULE.bazel": SEGMENT})
    before = _head(repo)
    change(repo, {path: text})
    selection = repo.collector.collect(before, "HEAD")
    assert selection.everything and {t.label for t in selection.tests} == ALL_TESTS
    assert named in selection.notes[0]


def test_a_segment_whose_statements_stay_the_same_selects_nothing(repo):
    change(repo, {"MODULE.bazel": MODULE, "third_party/deps.MODULE.bazel": SEGMENT})
    before = _head(repo)
    change(repo, {"third_party/deps.MODULE.bazel": "# rules_cc, for the native rules\n" + SEGMENT.replace('"', "'")})
    selection = repo.collector.collect(before, "HEAD")
    assert not selection.everything and selection.tests == []
    assert "third_party/deps.MODULE.bazel changed no statement or value" in selection.notes


@pytest.mark.parametrize("path,text", [
    (".bazeliskrc", "USE_BAZEL_VERSION=7.4.1\n"),          # bazelisk runs another Bazel
    ("tools/bazel", "#!/bin/sh\nexec \"$BAZEL_REAL\" \"$@\" --config=ci\n"),  # the wrapper bazelisk runs instead
])
def test_what_chooses_the_bazel_that_runs_selects_everything(repo, path, text):
    """Before: .bazeliskrc lay in no package, tools/bazel was an unused file of //tools: nothing was selected."""
    change(repo, {path: text})
    selection = repo.collector.collect(repo.base, "HEAD")
    assert selection.everything and {t.label for t in selection.tests} == ALL_TESTS and path in selection.notes[0]


VENDORED = ('\nnew_local_repository(name = "vendored", path = "vendor/lib", build_file_content = '
            '\'filegroup(name = "files", srcs = glob(["**"]), visibility = ["//visibility:public"])\')\n')


def test_a_file_in_a_local_repository_the_workspace_names_selects_the_dependents_of_its_targets(repo):
    """vendor/lib is @vendored, not a package: its files are targets of that repository. Before: "no changed file
    belongs to a Bazel target", and the test that uses them was missed."""
    change(repo, {"WORKSPACE": FILES["WORKSPACE"] + VENDORED, "vendor/lib/data.txt": "one\n",
                  "uses_vendored/BUILD": 'sh_test(name = "vendored_test", srcs = ["t.sh"], data = '
                                         '["@vendored//:files"])\n',
                  "uses_vendored/t.sh": "#!/bin/sh\n"})
    before = _head(repo)
    change(repo, {"vendor/lib/data.txt": "two\n"})
    selection = repo.collector.collect(before, "HEAD")
    assert not selection.everything
    assert {t.label for t in selection.tests} == {"//uses_vendored:vendored_test"}, selection.notes


# -- .scl files, judged as .bzl files are -----------------------------------------------------------------------------

SCL_FILES = {
    "WORKSPACE": "",
    "rules/BUILD": "",
    "rules/consts.scl": 'SIZE = "small"\n',
    "rules/names.scl": 'load(":consts.scl", "SIZE")\n\nTEST_SIZE = SIZE\n',
    "rules/defs.bzl": 'load(":names.scl", "TEST_SIZE")\n\n'
                      'def _note_impl(ctx):\n    out = ctx.actions.declare_file(ctx.label.name + ".txt")\n'
                      '    ctx.actions.write(out, TEST_SIZE)\n    return [DefaultInfo(files = depset([out]))]\n\n'
                      'size_note = rule(implementation = _note_impl)\n\n'
                      'def sized_test(name, **kwargs):\n    native.sh_test(name = name, size = TEST_SIZE, **kwargs)\n',
    "pkg/BUILD": 'load("//rules:defs.bzl", "size_note", "sized_test")\n\nsize_note(name = "note")\n\n'
                 'sized_test(name = "sized_test", srcs = ["t.sh"])\n\n'
                 'sh_test(name = "noted_test", srcs = ["t.sh"], data = [":note"])\n\n'
                 'sh_test(name = "plain_test", srcs = ["t.sh"])\n',
    "pkg/t.sh": "#!/bin/sh\n",
}


@pytest.fixture
def scl_workspace(tmp_path):
    workspace = Workspace(str(tmp_path / "scl"))
    for name, text in SCL_FILES.items():
        workspace.write(name, text, executable=name.endswith(".sh"))
    workspace.init_git()
    workspace.base = _head(workspace)
    return workspace


def test_a_changed_scl_file_reaches_the_starlark_that_loads_it(scl_workspace):
    """The judging of .scl files, with real git: a .scl file loaded by a .scl file loaded by the .bzl file that
    defines a rule reaches that rule class; and collect sorts a changed .scl with the changed Starlark, not the source
    files. Before: only .bzl files were read for loads, so consts.scl reached no rule."""
    from releasekit.selection import bzl_files, change_kinds, gitrepo

    repo = gitrepo.Repository(scl_workspace.path)
    assert bzl_files.reach(repo, ["rules/consts.scl"]) == {"rules/consts.scl", "rules/names.scl", "rules/defs.bzl"}
    assert bzl_files.rule_classes_reached(repo, ["rules/consts.scl"]) == {"size_note"}
    scl_workspace.write("rules/consts.scl", 'SIZE = "medium"\n')
    scl_workspace.commit("medium")
    kinds = change_kinds.sort_changes(repo.changes(scl_workspace.base, "HEAD"), lambda path: "rules",
                                      lambda path: "rules")
    assert kinds.changed_starlark == ["rules/consts.scl"]


def test_a_changed_scl_file_selects_what_it_changes(scl_workspace, tmp_path):
    """End to end: the macro's test whose size the .scl file sets, and the test of the rule whose action writes it.
    Runs where Bazel loads .scl files (Bazel 7 and later); unchanged there."""
    from releasekit.selection.bazelquery import Bazel
    from releasekit.selection.collect import Collector

    loads = subprocess.run([BAZEL, "query", "//pkg:all"], cwd=scl_workspace.path, capture_output=True, text=True)
    try:
        if loads.returncode != 0:
            version = subprocess.run([BAZEL, "--version"], capture_output=True, text=True).stdout.strip()
            pytest.skip("the Bazel here ({}) cannot load .scl files; Bazel 7 and later can: {}".format(
                version,
                next((line for line in loads.stderr.splitlines() if "ERROR" in line), loads.stderr.strip())[:300]))
        scl_workspace.write("rules/consts.scl", 'SIZE = "medium"\n')
        scl_workspace.commit("medium")
        collector = Collector(scl_workspace.path, bazel=Bazel(scl_workspace.path, command=BAZEL),
                              base_checkout_dir=str(tmp_path / "base"))
        try:
            selection = collector.collect(scl_workspace.base, "HEAD")
        finally:
            collector.close()
        assert {t.label for t in selection.tests} == {"//pkg:sized_test", "//pkg:noted_test"}
    finally:
        scl_workspace.shutdown()
