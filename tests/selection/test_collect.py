"""releasekit collect on a fixture monorepo: one commit per change kind, exact selections.

Real git, real Bazel. Every test starts from the same base commit.
"""

import glob
import gzip
import json
import os
import subprocess

import pytest

from helpers.monorepo import (ALL_TESTS, FILES, GRAPH_STORE_LOGIN, change, entries, graph_collect, make_monorepo,
                              record_the_base_graph, reset, run_cli, selected)
from helpers.workspace import BAZEL, Workspace, git
from releasekit.selection.bazelquery import Bazel
from releasekit.selection.collect import Collector
from releasekit.selection.graph import selectable
from releasekit.core.errors import ReleasekitError, UsageError


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory):
    yield from make_monorepo(tmp_path_factory)


@pytest.fixture
def repo(monorepo):
    return reset(monorepo)


def test_source_file(repo):
    change(repo, {"lib/a.py": "A = 10\n"})
    selection, tests, releases = selected(repo)
    assert tests == {"//app:app_test"}
    assert releases == {"//app:app.ci"}
    assert selection.tests[0].reasons == ["lib/a.py"]


def test_a_build_file_added_below_a_package_selects_the_enclosing_package_that_lost_files(repo):
    """Before: missed ("no changed file belongs to a Bazel target"): tree_test's glob lost tree/sub/x.txt."""
    change(repo, {"tree/sub/BUILD": ""})
    selection, tests, releases = selected(repo)
    assert tests == {"//tree:tree_test"} and releases == set()
    assert selection.tests[0].reasons == ["tree/sub/BUILD"]


def test_a_build_file_removed_below_a_package_selects_the_enclosing_package_that_gained_files(repo):
    change(repo, deletes=["tree/split/BUILD"])
    _, tests, releases = selected(repo)
    assert tests == {"//tree:tree_test"} and releases == set()


def test_a_test_incompatible_with_the_platform_is_left_out(repo):
    """Before: selected, and `bazel test` of it by name fails on Bazel before 7."""
    change(repo, {"compat/t.sh": "#!/bin/sh\necho changed\n"})
    selection, tests, releases = selected(repo)
    assert tests == {"//compat:compatible_test"} and releases == set()
    assert ("left out, incompatible with the target platform (target_compatible_with): //compat:incompatible_test"
            in selection.notes)
    run = subprocess.run([BAZEL, "test", *sorted(tests)], cwd=repo.path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


def test_file_reachable_only_through_data(repo):
    change(repo, {"lib/data.txt": "new data\n"})
    _, tests, releases = selected(repo)
    assert tests == {"//app:app_test"} and releases == set()


def test_source_of_a_generated_file(repo):
    change(repo, {"gen/template.txt": "changed\n"})
    _, tests, releases = selected(repo)
    assert tests == {"//gen:gen_test"} and releases == set()


def test_build_file_edit_selects_only_the_changed_target(repo):
    text = FILES["suite/BUILD"].replace('srcs = ["s2.sh"]', 'srcs = ["s2.sh"], size = "small"')
    change(repo, {"suite/BUILD": text})
    selection, tests, releases = selected(repo)
    assert tests == {"//suite:s2"} and releases == set()
    assert selection.tests[0].reasons == ["suite/BUILD"]


def test_build_file_edit_reaches_reverse_dependencies(repo):
    change(repo, {"lib/BUILD": FILES["lib/BUILD"].replace('glob(["*.py"])', 'glob(["*.py"]), tags = ["core"]')})
    _, tests, releases = selected(repo)
    assert tests == {"//app:app_test"} and releases == {"//app:app.ci"}


def _collector_of_its_own(repo, tmp_path, bazel=BAZEL):
    return Collector(repo.path, bazel=Bazel(repo.path, command=bazel), base_checkout_dir=str(tmp_path / "base"))


def _suite_edit_and_new_test():
    return FILES["suite/BUILD"].replace('srcs = ["s2.sh"]', 'srcs = ["s2.sh"], size = "small"') + \
        '\nsh_test(name = "s3", srcs = ["s1.sh"])\n'


def test_build_and_bzl_edits_read_the_base_packages_through_the_workspace_server(repo, tmp_path):
    """Before: a second Bazel server, in the base revision's worktree, started for every BUILD or .bzl edit. The new
    test exists only at head: the queries after the base's read it, so they read head's packages again."""
    change(repo, {"suite/BUILD": _suite_edit_and_new_test(),
                  "tools/macros.bzl": FILES["tools/macros.bzl"].replace('deps = [":" + name]',
                                                                        'deps = [":" + name], size = "small"')})
    collector = _collector_of_its_own(repo, tmp_path)
    try:
        selection = collector.collect(repo.base, "HEAD")
    finally:
        collector.close()
    assert {t.label for t in selection.tests} == {"//suite:s2", "//suite:s3", "//macro:m_test"}
    assert collector.base_bazel is None


# Bazel wrappers: one that drops --package_path without a word, one that refuses it (as a Bazel without the option).
_IGNORES_PACKAGE_PATH = ('#!/bin/sh\nfor a in "$@"; do shift; case "$a" in --package_path=*) ;; *) set -- "$@" "$a";; '
                         'esac; done\nexec {} "$@"\n')
_REFUSES_PACKAGE_PATH = ('#!/bin/sh\ncase "$*" in *--package_path=*) echo "ERROR: Unrecognized option: --package_path" '
                         '>&2; exit 2;; esac\nexec {} "$@"\n')


@pytest.mark.parametrize("wrapper,rc_line", [
    (_IGNORES_PACKAGE_PATH, None),
    (_REFUSES_PACKAGE_PATH, None),
    (None, "build --verbose_failures\n"),  # a global file changed too: the workspace server reads head's
], ids=["bazel-ignores-package-path", "bazel-refuses-package-path", "bazelrc-changed-too"])
def test_the_base_revision_gets_a_server_of_its_own_when_the_workspace_server_cannot_read_it(repo, tmp_path, wrapper,
                                                                                              rc_line):
    edits = {"suite/BUILD": _suite_edit_and_new_test()}
    if rc_line:
        edits[".bazelrc"] = FILES[".bazelrc"] + rc_line
    change(repo, edits)
    bazel = BAZEL
    if wrapper:
        bazel = str(tmp_path / "bazel")
        with open(bazel, "w") as handle:
            handle.write(wrapper.format(BAZEL))
        os.chmod(bazel, 0o755)
    collector = _collector_of_its_own(repo, tmp_path, bazel)
    try:
        selection = collector.collect(repo.base, "HEAD")
    finally:
        collector.close()
    assert {t.label for t in selection.tests} == {"//suite:s2", "//suite:s3"}
    assert collector.base_bazel is not None


def test_changed_test_suite_selects_its_tests(repo):
    change(repo, {"suite/BUILD": FILES["suite/BUILD"].replace('tests = [":s1"]', 'tests = [":s1", ":s2"]')})
    _, tests, _ = selected(repo)
    assert tests == {"//suite:s1", "//suite:s2"}


@pytest.mark.parametrize("edits,deletes,renames", [
    ({"lib/c.py": "C = 3\n"}, (), ()),          # a glob gains a file
    ({}, ("lib/b.py",), ()),                     # a glob loses a file
    ({}, (), (("lib/b.py", "lib/b2.py"),)),      # a renamed file
])
def test_glob_changes(repo, edits, deletes, renames):
    change(repo, edits, deletes, renames)
    _, tests, releases = selected(repo)
    assert tests == {"//app:app_test"} and releases == {"//app:app.ci"}


def test_a_bzl_refactor_that_expands_the_same_selects_nothing(repo):
    """Before: every target of every package loading the file, here //macro's."""
    change(repo, {"tools/defs.bzl": FILES["tools/defs.bzl"] + "# a comment: the macro expands as before\n"})
    selection, tests, releases = selected(repo)
    assert tests == set() and releases == set()


def test_a_macro_change_selects_the_targets_whose_expansion_changed(repo):
    change(repo, {"tools/macros.bzl": FILES["tools/macros.bzl"].replace('deps = [":" + name]',
                                                                        'deps = [":" + name], size = "small"')})
    selection, tests, releases = selected(repo)
    assert tests == {"//macro:m_test"} and releases == set()
    assert selection.tests[0].reasons == ["tools/macros.bzl"]


def test_a_change_reaching_a_rule_implementation_selects_the_targets_of_that_rule(repo):
    """helper.bzl is loaded by rules.bzl, which defines stamp_file: every stamp_file target and its rdeps, nothing else
    of the package (other_test is not a stamp_file and does not depend on one)."""
    change(repo, {"tools/helper.bzl": FILES["tools/helper.bzl"].replace('"stamp "', '"stamped "')})
    selection, tests, releases = selected(repo)
    assert tests == {"//ruled:ruled_test"} and releases == set()
    assert selection.tests[0].reasons == ["tools/helper.bzl"]


def test_deleted_package_selects_its_former_dependents(repo):
    change(repo, {"app/BUILD": FILES["app/BUILD"].replace(', "//oldlib"', "")}, deletes=("oldlib",))
    _, tests, releases = selected(repo)
    assert tests == {"//app:app_test"} and releases == set()


def test_moved_file_between_packages(repo):
    change(repo, {"gen/BUILD": FILES["gen/BUILD"].replace('srcs = ["template.txt"]', 'srcs = ["//lib:template.txt"]'),
                  "lib/BUILD": FILES["lib/BUILD"].replace('"unused.txt"]', '"unused.txt", "template.txt"]')},
           renames=(("gen/template.txt", "lib/template.txt"),))
    _, tests, releases = selected(repo)
    assert tests == {"//gen:gen_test"} and releases == set()


@pytest.mark.parametrize("path,text", [
    ("WORKSPACE", FILES["WORKSPACE"] + "\n# touched\n"),
    ("third_party/repos.bzl", FILES["third_party/repos.bzl"].replace("(name", "(\n        name") + "# touched\n"),
    ("third_party/deps.json", '{\n  "alpha": "1.0",\n  "beta": "2.0",\n  "gamma": "3.0"\n}\n'),
])
def test_a_workspace_refactor_that_changes_no_repository_selects_nothing(repo, path, text):
    """Before: any change to WORKSPACE or a file it loads or names selected everything."""
    change(repo, {path: text})
    selection, tests, releases = selected(repo)
    assert tests == set() and releases == set() and not selection.everything
    assert "{} changed no registration, repository or external target".format(path) in selection.notes


def test_a_bumped_library_in_a_lock_file_selects_only_its_dependents(repo):
    change(repo, {"third_party/deps.json": FILES["third_party/deps.json"].replace('"alpha": "1.0"', '"alpha": "1.1"')})
    selection, tests, releases = selected(repo)
    assert tests == {"//uses_deps:alpha_test"} and releases == set() and not selection.everything
    assert selection.tests[0].reasons == ["third_party/deps.json: external target @deps//:alpha.txt changed"]


def test_a_changed_repository_rule_selects_the_dependents_of_what_it_fetches_differently(repo):
    """The definitions of @deps are the same; what its rule writes for alpha is not."""
    patched = '(version + "-patched" if name == "alpha" else version) + "\\n"'
    change(repo, {"third_party/lock.bzl": FILES["third_party/lock.bzl"].replace('version + "\\n"', patched)})
    _, tests, releases = selected(repo)
    assert tests == {"//uses_deps:alpha_test"} and releases == set()


def test_a_changed_external_target_nothing_depends_on_selects_everything(repo):
    """gamma is used by no target through attributes: it could be a toolchain's, which query does not show."""
    change(repo, {"third_party/deps.json": FILES["third_party/deps.json"].replace('"gamma": "3.0"', '"gamma": "3.1"')})
    selection, tests, _ = selected(repo)
    assert selection.everything and tests == ALL_TESTS
    assert "@deps//:gamma.txt changed, and no target of the workspace depends on it" in selection.notes[0]


@pytest.mark.parametrize("path,text", [
    ("WORKSPACE", FILES["WORKSPACE"] + 'register_toolchains("//platform:all")\n'),
    ("third_party/repos.bzl",
     FILES["third_party/repos.bzl"] + '    native.register_execution_platforms("//platform:all")\n'),
])
def test_a_registration_change_selects_everything(repo, path, text):
    change(repo, {path: text})
    selection, tests, releases = selected(repo)
    assert selection.everything and tests == ALL_TESTS and releases == {"//app:app.ci"}
    assert "a toolchain or platform registration, or workspace(), changed" in selection.notes[0]


MODULE_BEFORE = 'module(name = "fixture")\n\nbazel_dep(name = "rules_cc", version = "0.0.9")\n'
LOCK_BEFORE = '{"lockFileVersion": 13, "registryFileHashes": {"https://bcr/rules_cc/0.0.9/MODULE.bazel": "1a"}}\n'


@pytest.mark.parametrize("path, before, after, everything", [
    ("MODULE.bazel", MODULE_BEFORE,
     "# The fixture's module.\nmodule(\n    name = 'fixture',\n)\n\nbazel_dep(name = 'rules_cc', version = '0.0.9')  # "
     "C++\n",
     False),
    ("MODULE.bazel", MODULE_BEFORE, MODULE_BEFORE.replace("0.0.9", "0.0.10"), True),
    ("MODULE.bazel.lock", LOCK_BEFORE,
     '{\n  "registryFileHashes": {\n    "https://bcr/rules_cc/0.0.9/MODULE.bazel": "1a"\n  },\n  "lockFileVersion": '
     '13\n}\n',
     False),
    ("MODULE.bazel.lock", LOCK_BEFORE, LOCK_BEFORE.replace("1a", "2b"), True),
])
def test_bzlmod_files_are_judged_by_what_they_say(repo, path, before, after, everything):
    """A MODULE.bazel whose statements are the same (comments, layout, quoting), or a lock file whose data is the
    same (key order, indentation), selects nothing; any other change still selects everything."""
    change(repo, {path: before})
    first = git(repo.path, "rev-parse", "HEAD").strip()
    change(repo, {path: after})
    selection = repo.collector.collect(first, "HEAD")
    if everything:
        assert selection.everything and {t.label for t in selection.tests} == ALL_TESTS and path in selection.notes[0]
    else:
        assert not selection.everything and selection.tests == [] and selection.releases == []
        assert "{} changed no statement or value".format(path) in selection.notes


@pytest.mark.parametrize("path,text", [
    ("MODULE.bazel", 'module(name = "fixture")\n'),
    (".bazelignore", "docs\n"),
])
def test_global_files_judged_whole_select_everything(repo, path, text):
    change(repo, {path: text})
    selection, tests, releases = selected(repo)
    assert selection.everything and path in selection.notes[0]
    assert tests == ALL_TESTS and releases == {"//app:app.ci"}


def test_an_attribute_written_out_with_its_default_value_is_not_a_change(repo):
    text = FILES["suite/BUILD"].replace('srcs = ["s2.sh"]', 'srcs = ["s2.sh"], flaky = False, local = False')
    change(repo, {"suite/BUILD": text})
    _, tests, releases = selected(repo)
    assert tests == set() and releases == set()


@pytest.mark.parametrize("text", [
    "build --announce_rc\n# a comment, and options that change no result:\nbuild --verbose_failures --color=yes\n",
    "build --announce_rc\ntry-import %workspace%/user.bazelrc\n",
    "query --output=label\nbuild --announce_rc\n",
])
def test_bazelrc_changes_that_change_no_result_select_nothing(repo, text):
    """Before: any .bazelrc change selected everything."""
    change(repo, {".bazelrc": text})
    selection, tests, releases = selected(repo)
    assert tests == set() and releases == set() and not selection.everything


def test_a_language_option_selects_that_languages_targets_and_their_rdeps(repo):
    change(repo, {".bazelrc": "build --announce_rc\nbuild --copt=-O2\n"})
    selection, tests, releases = selected(repo)
    # Query knows no configurations: the tool built only in the exec configuration is taken too (recall first).
    assert tests == {"//native:native_test", "//hosttool:made_test"} and releases == set() and not selection.everything
    reasons = {t.label: t.reasons for t in selection.tests}
    assert reasons["//native:native_test"] == ["`.bazelrc` option `--copt` changed: cc targets in the target "
                                               "configuration"]


def test_an_exec_configuration_option_selects_what_the_tools_it_builds_make(repo):
    """Before: `--host_copt` selected everything. Now one cquery finds the C++ targets built as tools, and their
    rdeps are selected: the genrule's gen_tool, and Bazel's own launcher (Bazel 4.2 builds it from C++ in the host
    configuration for every sh, py and java binary and test), but not the C++ test and library built in the target
    configuration."""
    change(repo, {".bazelrc": "build --announce_rc\nbuild --host_copt=-O2\n"})
    selection, tests, releases = selected(repo)
    assert not selection.everything and "//hosttool:made_test" in tests and "//native:native_test" not in tests
    reasons = {t.label: t.reasons for t in selection.tests}
    assert reasons["//hosttool:made_test"] == [
        "`.bazelrc` option `--host_copt` changed: cc targets built as tools in the exec configuration "
        "(//hosttool:gen_tool, @bazel_tools//src/tools/launcher:launcher)"]


def test_an_exec_configuration_option_reaching_no_tool_selects_nothing(repo):
    change(repo, {".bazelrc": "build --announce_rc\nbuild --host_javacopt=-g\n"})
    selection, tests, releases = selected(repo)
    assert tests == set() and releases == set() and not selection.everything
    assert ("`.bazelrc` option --host_javacopt changed; no java target is built in the exec "
            "configuration") in selection.notes


def test_an_exec_configuration_option_reaching_a_toolchain_selects_everything(repo):
    """Toolchain resolution hands a toolchain's tools to targets that query shows no edge from: everything."""
    change(repo, {
        ".bazelrc": "build --announce_rc\nbuild --host_copt=-O2\n",
        "tc/defs.bzl": 'def _impl(ctx):\n    return [platform_common.ToolchainInfo(tool = ctx.executable.tool)]\n\n'
                       'tool_info = rule(implementation = _impl, attrs = {"tool": attr.label(executable = True, cfg = '
                       '"exec")})\n',
        "tc/BUILD": 'load(":defs.bzl", "tool_info")\n\ncc_binary(name = "tc_tool", srcs = ["tool.cc"])\n\n'
                    'tool_info(name = "impl", tool = ":tc_tool")\n\ntoolchain_type(name = "tool_type")\n\n'
                    'toolchain(name = "tc", toolchain = ":impl", toolchain_type = ":tool_type")\n',
        "tc/tool.cc": "int main() { return 0; }\n",
    })
    selection, tests, releases = selected(repo)
    assert selection.everything and tests == ALL_TESTS and releases == {"//app:app.ci"}
    assert "`.bazelrc` option --host_copt changes tools that toolchain resolution hands out through //tc:impl" in \
        selection.notes[0]


def test_a_test_option_selects_the_tests_only(repo):
    change(repo, {".bazelrc": "build --announce_rc\ntest --test_env=LANG=C\n"})
    selection, tests, releases = selected(repo)
    assert tests == ALL_TESTS and releases == set() and not selection.everything


def test_an_option_not_understood_selects_everything_and_names_it(repo):
    change(repo, {".bazelrc": "build --announce_rc\nbuild --compilation_mode=opt\n"})
    selection, tests, releases = selected(repo)
    assert selection.everything and tests == ALL_TESTS and releases == {"//app:app.ci"}
    assert "`.bazelrc` option --compilation_mode changed" in selection.notes[0]


def test_explain_names_the_bazelrc_option(repo):
    change(repo, {".bazelrc": "build --announce_rc\nbuild --cxxopt=-std=c++17\n"})
    result = run_cli("explain", "//native:native_test", "--base", repo.base, cwd=repo.path)
    assert result.returncode == 0, result.stderr
    assert "`.bazelrc` option `--cxxopt` changed: cc targets in the target configuration" in result.stdout


@pytest.mark.parametrize("path", ["docs/notes.md", "lib/unused.txt"])
def test_files_used_by_nothing_select_nothing(repo, path):
    change(repo, {path: "changed\n"})
    _, tests, releases = selected(repo)
    assert tests == set() and releases == set()


def test_no_ci_and_manual_targets_are_left_out(repo):
    change(repo, {"noci/t.sh": "#!/bin/sh\necho changed\n"})
    _, tests, releases = selected(repo)
    assert tests == {"//noci:ok_test"} and releases == set()


def test_worktree_head_sees_uncommitted_changes(repo):
    repo.write("macro/m.py", "M = 2\n")
    _, tests, _ = selected(repo, head="WORKTREE")
    assert tests == {"//macro:m_test"}


def test_query_count_does_not_grow_with_changed_files(repo):
    edits = {"lib/a.py": "A = 5\n", "lib/data.txt": "x\n", "gen/template.txt": "y\n", "macro/m.py": "M = 9\n",
             "suite/s1.sh": "#!/bin/sh\n# edit\n", "noci/t.sh": "#!/bin/sh\n# edit\n"}
    change(repo, edits)
    collector = Collector(repo.path, bazel=Bazel(repo.path, command=BAZEL))
    try:
        selection = collector.collect(repo.base, "HEAD")
    finally:
        collector.close()
    assert selection.queries == 1
    assert {t.label for t in selection.tests} == {"//app:app_test", "//gen:gen_test", "//macro:m_test", "//suite:s1",
                                                  "//noci:ok_test"}


def test_cli_writes_the_documented_json(repo, tmp_path):
    change(repo, {"lib/a.py": "A = 11\n"})
    result = run_cli("collect", "--base", repo.base, "--head", "HEAD", "--tests-out", str(tmp_path / "t.json"),
                     "--releases-out", str(tmp_path / "r.json"), cwd=repo.path)
    assert result.returncode == 0, result.stderr
    tests = json.load(open(tmp_path / "t.json"))
    releases = json.load(open(tmp_path / "r.json"))
    head = git(repo.path, "rev-parse", "HEAD").strip()
    assert tests["format_version"] == 1 and tests["base"] == repo.base and tests["head"] == head
    assert tests["targets"] == [{"label": "//app:app_test", "kind": "py_test", "reasons": ["lib/a.py"]}]
    assert releases["targets"] == [{"label": "//app:app.ci", "kind": "artifact_ci_release", "reasons": ["lib/a.py"]}]


def test_collect_everything_selects_every_test_and_release_and_says_why(repo, tmp_path):
    """A first push has no base commit: the pipelines pass --everything with the reason."""
    change(repo, {"lib/a.py": "A = 16\n"})
    result = run_cli("collect", "--everything", "no base commit: a first push", "--tests-out", str(tmp_path / "t.json"),
                     "--releases-out", str(tmp_path / "r.json"), cwd=repo.path)
    assert result.returncode == 0, result.stderr
    tests, releases = json.load(open(tmp_path / "t.json")), json.load(open(tmp_path / "r.json"))
    assert tests["everything"] and tests["base"] is None
    assert tests["notes"][0] == "every test and release is selected: no base commit: a first push"
    assert {t["label"] for t in tests["targets"]} == ALL_TESTS
    assert {t["label"] for t in releases["targets"]} == {"//app:app.ci"}
    both = run_cli("collect", "--everything", "why", "--base", repo.base, cwd=repo.path)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_explain_names_the_file_and_a_path(repo):
    change(repo, {"lib/a.py": "A = 12\n"})
    result = run_cli("explain", "//app:app.ci", "--base", repo.base, cwd=repo.path)
    assert result.returncode == 0, result.stderr
    assert "because of: lib/a.py" in result.stdout
    assert "path: //lib:a.py -> //lib:lib" in result.stdout and "//app:app.ci" in result.stdout
    result = run_cli("explain", "//gen:gen_test", "--base", repo.base, cwd=repo.path)
    assert "//gen:gen_test is not selected: none of the 1 changed files is in its dependencies." in result.stdout


@pytest.mark.parametrize("label,expected", [
    ("//noci:manual_test", "//noci:manual_test is not selected: it is tagged manual, which keeps it out of CI."),
    ("//noci:noci_test", "//noci:noci_test is not selected: it is tagged no-ci, which keeps it out of CI."),
    ("//noci:rel.ci", "//noci:rel.ci is not selected: it is tagged no-ci, which keeps it out of CI."),
    ("//lib:lib",
     "//lib:lib is not selected: it is a py_library, neither a test nor a CI release (artifact_ci_release)."),
    # Before: "it is a artifact_dev_release", "it is a image_layout".
    ("//app:app.dev", "//app:app.dev is not selected: it is an artifact_dev_release, neither a test nor a CI release "
                      "(artifact_ci_release)."),
    ("//app:image", "//app:image is not selected: it is an image_layout, neither a test nor a CI release"),
])
def test_explain_says_why_a_target_is_kept_out(repo, label, expected):
    """Before: every one of these said "none of the changed files is in its dependencies", though they were."""
    change(repo, {"noci/t.sh": "#!/bin/sh\necho explained\n", "lib/a.py": "A = 14\n"})
    result = run_cli("explain", label, "--base", repo.base, cwd=repo.path)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_explain_of_a_label_that_does_not_exist_is_an_error(repo):
    change(repo, {"lib/a.py": "A = 15\n"})
    result = run_cli("explain", "//lib:no_such_target", "--base", repo.base, cwd=repo.path)
    assert result.returncode == 2
    assert "//lib:no_such_target is not a target of" in result.stderr and "Traceback" not in result.stderr
    assert "neither at head nor at the base " + repo.base[:12] in result.stderr, result.stderr
    assert "Fix the workspace" not in result.stderr  # it loads; the label names nothing


def test_explain_of_a_target_the_change_removed_says_so(repo):
    """Before: an error, "... is not a target of <workspace> at head ... Fix the workspace so that it loads"."""
    change(repo, {"suite/BUILD": FILES["suite/BUILD"].replace('sh_test(name = "s2", srcs = ["s2.sh"])', "")})
    result = run_cli("explain", "//suite:s2", "--base", repo.base, cwd=repo.path)
    assert result.returncode == 0, result.stderr
    assert ("//suite:s2 is not selected: the change removed it: it is a target at the base {}, not at head, so there "
            "is nothing to run.".format(repo.base[:12])) in result.stdout, result.stdout


@pytest.mark.parametrize("option,label,expected", [
    ("build --verbose_failures", "//app:app_test", "`.bazelrc` option --verbose_failures changed; it cannot change a "
                                                   "build or test result, nor what collect's queries answer"),
    ("test --test_env=LANG=C", "//app:app.ci", "`.bazelrc` option `--test_env` changed: the tests"),
])
def test_explain_names_the_option_after_an_rc_only_change_that_does_not_reach_the_target(repo, option, label, expected):
    """Before: "none of the 1 changed files is in its dependencies.", naming no option."""
    change(repo, {".bazelrc": "build --announce_rc\n{}\n".format(option)})
    result = run_cli("explain", label, "--base", repo.base, cwd=repo.path)
    assert result.returncode == 0, result.stderr
    assert ("{} is not selected: none of the 1 changed files is in its dependencies, and the changed `.bazelrc` "
            "options do not reach it: {}".format(label, expected)) in result.stdout, result.stdout


def test_worktree_head_ignores_releasekit_logs(repo, tmp_path):
    """Before: `pr` and `collect --head WORKTREE` counted their own releasekit-logs/ as changed files."""
    from releasekit.running.dispatch import Dispatcher

    Dispatcher(repo.path)  # as `pr` and `ci` make their log directory
    repo.write("releasekit-logs/tests.log", "a log\n")
    result = run_cli("collect", "--base", repo.base, "--head", "WORKTREE", cwd=repo.path)
    assert result.returncode == 0, result.stderr
    assert "releasekit-logs" not in result.stdout


@pytest.mark.parametrize("args,expected", [
    (("--base", "no-such-rev"), "--base 'no-such-rev' is not a commit"),
    (("--base", "HEAD", "--head", "nope"), "--head 'nope' is not a commit"),
])
def test_bad_revisions(repo, args, expected):
    result = run_cli("collect", *args, cwd=repo.path)
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_not_a_git_repository(tmp_path):
    result = run_cli("collect", "--base", "HEAD", "--workspace", str(tmp_path), cwd=str(tmp_path))
    assert result.returncode == 2
    assert "is not inside a git repository" in result.stderr


def test_workspace_that_does_not_load_at_head(repo):
    change(repo, {"lib/a.py": "A = 13\n", "lib/BUILD": "py_library(name = \n"})
    result = run_cli("collect", "--base", repo.base, cwd=repo.path)
    assert result.returncode == 2
    assert "BazelError" in result.stderr and "lib/BUILD" in result.stderr


def test_bazel_missing(repo):
    change(repo, {"lib/a.py": "A = 14\n"})
    result = run_cli("collect", "--base", repo.base, "--bazel", "/nonexistent/bazel", cwd=repo.path)
    assert result.returncode == 2
    assert "Bazel is not installed" in result.stderr


def test_head_must_be_checked_out(repo):
    change(repo, {"lib/a.py": "A = 15\n"})
    with pytest.raises(UsageError, match="not the checked-out commit"):
        repo.collector.collect(repo.base, repo.base)


def test_proto_reader_agrees_with_a_full_xml_parse(repo):
    from releasekit.selection.query_answers import decode_query_proto, parse_query_xml_tree

    expression = "//...:* + tests(//...) + deps(//app:app.ci)"
    decoded = decode_query_proto(repo.collector.bazel.query(expression, "proto"))
    parsed = parse_query_xml_tree(repo.collector.bazel.query(expression, "xml"))
    assert decoded.keys() == parsed.keys() and len(decoded) > 40
    for label, target in parsed.items():
        fast = decoded[label]
        local_inputs = tuple(i for i in target.inputs if not i.startswith("@"))  # the reader leaves external ones out
        # The XML writes out a rule class's default tags (constraint_setting's "manual"); the reader reads the
        # tags written in BUILD files, which are all a test rule or a release has.
        tags = target.tags if selectable(target) or target.tags != ("manual",) else ()
        assert (fast.kind, fast.tags, fast.inputs, fast.test_suite_tests) == (
            target.kind, tags, local_inputs, target.test_suite_tests), label
    assert decoded["//noci:noci_test"].tags == ("no-ci",)
    assert decoded["//suite:suite"].test_suite_tests == ("//suite:s1",)
    assert {t.kind for t in decoded.values()} >= {"source file", "generated file", "genrule", "py_test", "test_suite"}


def test_a_cut_proto_answer_is_an_error_not_an_empty_selection(repo):
    from releasekit.selection.query_answers import decode_query_proto

    data = repo.collector.bazel.query("//...", "proto")
    with pytest.raises(ReleasekitError, match="proto output"):
        decode_query_proto(data[: len(data) // 2])


# -- target graphs recorded by one run, read by the next (target_graphs.py) ------------------------------------------

SOURCE_CHANGES = [
    {"lib/a.py": "A = 21\n"},                       # rdeps through a library, into a container release
    {"lib/data.txt": "changed\n"},                  # through data
    {"gen/template.txt": "changed\n"},              # through a generated file
    {"compat/t.sh": "#!/bin/sh\n# changed\n"},      # a test incompatible with the platform is left out (cquery)
    {"hosttool/tool.cc": "int main() { return 3; }\n"},  # a tool built in the exec configuration
    {"native/n.cc": "int native() { return 2; }\n"},
    {"tree/sub/x.txt": "changed\n"},                # taken by a recursive glob
    {"suite/s1.sh": "#!/bin/sh\n# changed\n"},
    {"macro/m.py": "M = 3\n", "noci/t.sh": "#!/bin/sh\n# changed\n", "docs/notes.md": "changed\n"},
    {"lib/unused.txt": "still unused\n"},
]


def test_a_source_change_reads_the_recorded_graph_and_selects_what_bazel_selects(repo, tmp_path, nginx):
    """Before: every run on a fresh agent loaded //... in a new Bazel server (about 2 s here, more in a large
    monorepo). The recorded graph must answer exactly as Bazel's own rdeps: same targets, same reasons."""
    store_url = "{}/graphs-{}".format(nginx.url, os.path.basename(str(tmp_path)))
    record_the_base_graph(repo, tmp_path, store_url)
    selecting = 0
    for edits in SOURCE_CHANGES:
        git(repo.path, "reset", "-q", "--hard", repo.base)
        change(repo, edits)
        from_graph, commands = graph_collect(repo, tmp_path, store_url)
        from_bazel = repo.collector.collect(repo.base, "HEAD")
        assert entries(from_graph) == entries(from_bazel), edits
        assert any(note.startswith("read the target graph recorded at") for note in from_graph.notes), from_graph.notes
        assert "query" not in commands, (edits, commands)
        assert from_graph.queries == 0 or "compat/t.sh" in edits
        selecting += bool(entries(from_bazel))
    assert selecting == len(SOURCE_CHANGES) - 1  # all but lib/unused.txt: not a comparison of empty selections


@pytest.mark.parametrize("first,then,expected", [
    # A file added where a glob takes it: the next commit's edit of it reaches tree_test only in head's graph.
    ({"tree/sub/new.txt": "new\n"}, {"tree/sub/new.txt": "edited\n"}, {"//tree:tree_test"}),
    # A BUILD edit that adds an edge: the next commit's edit of lib/unused.txt reaches gen_test only in head's graph.
    ({"gen/BUILD": FILES["gen/BUILD"].replace('data = [":gen.txt"]', 'data = [":gen.txt", "//lib:unused.txt"]')},
     {"lib/unused.txt": "used now\n"}, {"//gen:gen_test"}),
    # A .bzl edit that adds an edge the same way, through the macro.
    ({"tools/macros.bzl": FILES["tools/macros.bzl"].replace('deps = [":" + name]',
                                                            'deps = [":" + name], data = ["//lib:unused.txt"]')},
     {"lib/unused.txt": "used by the macro's test\n"}, {"//macro:m_test"}),
], ids=["file-added", "build-edit", "bzl-edit"])
def test_a_graph_recorded_for_other_build_files_is_never_read(repo, tmp_path, nginx, first, then, expected):
    store_url = "{}/graphs-{}".format(nginx.url, os.path.basename(str(tmp_path)))
    record_the_base_graph(repo, tmp_path, store_url)
    change(repo, first)
    middle = git(repo.path, "rev-parse", "HEAD").strip()
    change(repo, then)
    selection, commands = graph_collect(repo, tmp_path, store_url, base=middle)
    assert {t.label for t in selection.tests} == expected
    assert "query" in commands
    assert not any(note.startswith("read the target graph") for note in selection.notes)
    # Bazel loaded head's graph for this answer, and recorded it: the next run with these BUILD files reads it.
    assert any(note.startswith("recorded the target graph") for note in selection.notes), selection.notes
    again, commands = graph_collect(repo, tmp_path, store_url, base=middle)
    assert entries(again) == entries(selection) and "query" not in commands


def test_untracked_files_keep_the_recorded_graph_unread(repo, tmp_path, nginx):
    """An untracked BUILD file adds a test on lib/data.txt that no recorded graph knows of: Bazel must answer."""
    store_url = "{}/graphs-{}".format(nginx.url, os.path.basename(str(tmp_path)))
    record_the_base_graph(repo, tmp_path, store_url)
    change(repo, {"lib/data.txt": "changed again\n"})
    repo.write("untracked/BUILD", 'sh_test(name = "u_test", srcs = ["t.sh"], data = ["//lib:data.txt"])\n')
    repo.write("untracked/t.sh", "#!/bin/sh\n", executable=True)
    selection, commands = graph_collect(repo, tmp_path, store_url)
    assert {t.label for t in selection.tests} == {"//app:app_test", "//untracked:u_test"}
    assert "query" in commands
    assert "no target graph is read or recorded: files git does not track could change the graph: untracked/BUILD (a " \
        "BUILD file)" in selection.notes


def test_a_damaged_graph_record_is_not_read(repo, tmp_path, nginx):
    store_url = "{}/graphs-{}".format(nginx.url, os.path.basename(str(tmp_path)))
    record_the_base_graph(repo, tmp_path, store_url)
    [record] = glob.glob(nginx.path("graphs-{}/*.graph.gz".format(os.path.basename(str(tmp_path)))))
    with open(record, "rb") as handle:
        content = gzip.decompress(handle.read())
    # A record whose graph lost the edge from app_test's library to lib: the checksum no longer matches.
    with open(record, "wb") as handle:
        handle.write(gzip.compress(content.replace(b"//lib:lib", b"//lib:xxx")))
    change(repo, {"lib/a.py": "A = 22\n"})
    selection, commands = graph_collect(repo, tmp_path, store_url)
    assert {t.label for t in selection.tests} == {"//app:app_test"} and "query" in commands
    assert any("is not usable (its content does not match its checksum)" in note for note in selection.notes)


def test_collect_takes_the_store_from_releasekit_yaml_or_the_flag(repo, tmp_path, nginx):
    store_url = "{}/graphs-{}".format(nginx.url, os.path.basename(str(tmp_path)))
    config = tmp_path / "releasekit.yaml"
    config.write_text("channels:\n  ci: {{registry: 'http://127.0.0.1:1/ci'}}\ntarget_graphs: '{}'\n".format(store_url))
    change(repo, {"lib/a.py": "A = 23\n"})
    runs = [run_cli("collect", "--base", repo.base, "--record-target-graphs", cwd=repo.path,
                    RELEASEKIT_CONFIG=str(config),
                    **GRAPH_STORE_LOGIN) for _ in range(2)]
    assert all(run.returncode == 0 for run in runs), runs[-1].stderr
    assert "recorded the target graph at {}/".format(store_url) in runs[0].stdout
    assert "read the target graph recorded at" in runs[1].stdout and "(0 bazel queries)" in runs[1].stdout
    assert json.loads(runs[1].stdout[runs[1].stdout.index("{"):])["tests"]["targets"] == [
        {"label": "//app:app_test", "kind": "py_test", "reasons": ["lib/a.py"]}]
    # The rest of the file is for the runs that publish: a selection reads only its target_graphs entry.
    config.write_text("channels:\n  prod: {{registry: 'r.example.com'}}\ntarget_graphs: '{}'\n".format(store_url))
    run = run_cli("collect", "--base", repo.base, cwd=repo.path, RELEASEKIT_CONFIG=str(config), **GRAPH_STORE_LOGIN)
    assert run.returncode == 0 and "read the target graph recorded at" in run.stdout, run.stderr
    bad = run_cli("collect", "--base", repo.base, "--target-graphs", "ftp://example.com/graphs", cwd=repo.path)
    assert bad.returncode == 2 and "--target-graphs: target_graphs 'ftp://example.com/graphs' is not a store URL" \
        in bad.stderr and "Traceback" not in bad.stderr


def test_the_graph_key_follows_the_build_files_of_a_local_repository_outside_the_workspace(tmp_path):
    """Its BUILD and .bzl files can give its targets edges into the workspace; its other files cannot."""
    from releasekit.selection import gitrepo, global_files
    from releasekit.selection.graph_key import identify, loading_key

    outside = tmp_path / "outside"
    for name, text in {"WORKSPACE": "", "BUILD": "filegroup(name = 'x', srcs = ['x.txt'])\n", "x.txt": "x\n"}.items():
        (outside / name).parent.mkdir(parents=True, exist_ok=True)
        (outside / name).write_text(text)
    workspace = Workspace(str(tmp_path / "ws"))
    workspace.write("WORKSPACE", 'local_repository(name = "outside", path = "{}")\n'.format(outside))
    workspace.write("BUILD", "")
    workspace.init_git()
    repo = gitrepo.Repository(workspace.path)

    files = global_files.find(repo.read_worktree, repo.read_worktree)
    identity = identify([BAZEL], workspace.path)[0]

    def key():
        return loading_key(repo, "HEAD", files, identity)[0]

    first = key()
    (outside / "x.txt").write_text("another source\n")
    assert key() == first
    (outside / "BUILD").write_text("filegroup(name = 'x', srcs = ['x.txt', '@//:BUILD'])\n")
    assert key() != first
