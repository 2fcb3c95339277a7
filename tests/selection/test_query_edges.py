"""Collect's queries ask for every edge they follow, whatever an rc file says; rc files are judged by their options.

Real git, real Bazel: a `query --notool_deps` line (in the workspace's .bazelrc, or in a user's rc file passed with
--bazelrc as a user's Bazel command would) must not hide the tool a genrule runs from rdeps.
"""

import pytest

from helpers.monorepo import FILES, change, make_monorepo, reset
from helpers.workspace import BAZEL, git
from releasekit.selection.bazelquery import Bazel
from releasekit.selection.collect import Collector

TOOL_EDIT = {"hosttool/tool.cc": "#include <cstdio>\nint main() { std::puts(\"made again\"); return 0; }\n"}


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory):
    yield from make_monorepo(tmp_path_factory)


@pytest.fixture
def repo(monorepo):
    return reset(monorepo)


def _tests(selection):
    return {t.label for t in selection.tests}


def test_a_query_rc_line_that_drops_tool_edges_then_a_tool_edit_selects_what_the_tool_makes(repo):
    """Before: the tool edit selected nothing: rdeps ran with the workspace's `query --notool_deps`."""
    change(repo, {".bazelrc": FILES[".bazelrc"] + "query --notool_deps --noimplicit_deps\n"})
    with_the_line = git(repo.path, "rev-parse", "HEAD").strip()
    added = repo.collector.collect(repo.base, "HEAD")
    assert added.tests == [] and added.releases == [] and not added.everything  # collect asks for those edges itself
    assert "`.bazelrc` option --notool_deps changed; it cannot change a build or test result, nor what collect's " \
           "queries answer" in added.notes
    change(repo, TOOL_EDIT)
    selection = repo.collector.collect(with_the_line, "HEAD")
    assert _tests(selection) == {"//hosttool:made_test"}
    assert selection.tests[0].reasons == ["hosttool/tool.cc"]


def test_a_users_rc_file_cannot_drop_the_tool_edges_of_collects_queries(repo, tmp_path):
    """The user's Bazel command reads their own rc file (`bazel --bazelrc=~/team.bazelrc`, as a wrapper or an alias
    passes it). Before: the tool edit selected nothing."""
    user_rc = tmp_path / "team.bazelrc"
    user_rc.write_text("query --notool_deps\nquery --noimplicit_deps\ncquery --notool_deps\n")
    change(repo, TOOL_EDIT)
    collector = Collector(repo.path, bazel=Bazel(repo.path, command="{} --bazelrc={}".format(BAZEL, user_rc)),
                          base_checkout_dir=str(tmp_path / "base"))
    try:
        selection = collector.collect(repo.base, "HEAD")
    finally:
        collector.close()
        collector.bazel.shutdown()  # its startup options differ from the module's server: a server of its own
    assert _tests(selection) == {"//hosttool:made_test"}


def test_a_cquery_rc_line_cannot_hide_the_tools_an_exec_option_reaches(repo):
    """`cquery --notool_deps` made the cquery that finds tools built in the exec configuration find none. Before:
    `--host_copt` then selected nothing ("no cc target is built in the exec configuration")."""
    change(repo, {".bazelrc": FILES[".bazelrc"] + "cquery --notool_deps\n"})
    with_the_line = git(repo.path, "rev-parse", "HEAD").strip()
    change(repo, {".bazelrc": FILES[".bazelrc"] + "cquery --notool_deps\nbuild --host_copt=-O2\n"})
    selection = repo.collector.collect(with_the_line, "HEAD")
    assert "//hosttool:made_test" in _tests(selection) and not selection.everything


def test_a_query_rc_line_collect_does_not_override_selects_everything_and_names_it(repo):
    """A `query` line changes no build, but --deleted_packages changes what every query answers. Before: nothing."""
    change(repo, {".bazelrc": FILES[".bazelrc"] + "query --deleted_packages=suite\n"})
    selection = repo.collector.collect(repo.base, "HEAD")
    assert selection.everything and "//app:app_test" in _tests(selection)
    assert "`.bazelrc` option --deleted_packages changed" in selection.notes[0]


IMPORTING_RC = FILES[".bazelrc"] + "import %workspace%/config/mandatory\ntry-import %workspace%/config/optional\n"


@pytest.mark.parametrize("path", ["config/mandatory", "config/optional"])
def test_an_option_in_an_imported_rc_file_is_judged_as_bazelrcs_own(repo, path):
    """Before: a file .bazelrc imports was judged as a WORKSPACE-level file, and any change to it selected
    everything."""
    change(repo, {".bazelrc": IMPORTING_RC, "config/mandatory": "build --verbose_failures\n",
                  "config/optional": "build --announce_rc\n"})
    importing = git(repo.path, "rev-parse", "HEAD").strip()
    change(repo, {path: "build --verbose_failures\nbuild --copt=-O2\n"})
    selection = repo.collector.collect(importing, "HEAD")
    assert not selection.everything
    assert _tests(selection) == {"//native:native_test", "//hosttool:made_test"} and selection.releases == []
    change(repo, {path: "build --verbose_failures\nbuild --copt=-O2\n# the same options\n"})
    again = repo.collector.collect(git(repo.path, "rev-parse", "HEAD~1").strip(), "HEAD")
    assert again.tests == [] and not again.everything


def test_an_empty_try_imported_rc_file_selects_nothing(repo):
    """target-determinator's emptyTryImportInBazelrc, here. Before: everything."""
    change(repo, {".bazelrc": FILES[".bazelrc"] + "try-import %workspace%/.bazelrc.user\n", ".bazelrc.user": ""})
    selection = repo.collector.collect(repo.base, "HEAD")
    assert selection.tests == [] and selection.releases == [] and not selection.everything


def test_every_query_carries_the_edge_options(repo, tmp_path):
    """Every query, cquery and aquery collect runs asks for the edges itself (the Bazel command logs its arguments)."""
    from releasekit.selection.bazelquery import EDGE_OPTIONS

    log = tmp_path / "bazel.log"
    wrapper = tmp_path / "bazel"
    wrapper.write_text('#!/bin/sh\necho "$@" >> {}\nexec {} "$@"\n'.format(log, BAZEL))
    wrapper.chmod(0o755)
    change(repo, {"compat/t.sh": "#!/bin/sh\n# edited\n", "suite/BUILD": FILES["suite/BUILD"] + "# edited\n",
                  "tools/helper.bzl": FILES["tools/helper.bzl"].replace('"stamp "', '"stamped "')})
    collector = Collector(repo.path, bazel=Bazel(repo.path, command=str(wrapper)),
                          base_checkout_dir=str(tmp_path / "b"))
    try:
        collector.collect(repo.base, "HEAD")
    finally:
        collector.close()
    commands = [line.split() for line in log.read_text().splitlines()]
    asked = [c for c in commands if c and c[0] in ("query", "cquery", "aquery")]
    assert {c[0] for c in asked} == {"query", "cquery", "aquery"}
    assert all(set(EDGE_OPTIONS) <= set(c) for c in asked), asked
