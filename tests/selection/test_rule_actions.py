"""A change that reaches a rule's implementation selects what its actions change, at both revisions (aquery).

Real git, real Bazel. tools/rules.bzl defines stamp_file (loading tools/helper.bzl); //ruled:stamp is one, and
//ruled:ruled_test depends on it.
"""

import pytest

from helpers.monorepo import FILES, change, make_monorepo, reset
from helpers.workspace import git


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory):
    yield from make_monorepo(tmp_path_factory)


@pytest.fixture
def repo(monorepo):
    return reset(monorepo)


REFACTORED = ('load(":helper.bzl", "stamp_text")\n\n'
              'def _output(ctx):\n    """The file a stamp writes."""\n'
              '    return ctx.actions.declare_file("{}.txt".format(ctx.label.name))\n\n'
              'def _stamp_impl(ctx):\n    stamp = _output(ctx)\n    text = stamp_text(ctx.label.name)\n'
              '    ctx.actions.write(output = stamp, content = text)\n    return [DefaultInfo(files = '
              'depset([stamp]))]\n\nstamp_file = rule(implementation = _stamp_impl, doc = "A file that names its '
              'target.")\n')


def _tests(selection):
    return {t.label for t in selection.tests}


def test_a_rule_implementation_refactored_to_the_same_actions_selects_nothing(repo):
    """Before: every stamp_file target and its rdeps (//ruled:ruled_test)."""
    change(repo, {"tools/rules.bzl": REFACTORED})
    selection = repo.collector.collect(repo.base, "HEAD")
    assert selection.tests == [] and selection.releases == [] and not selection.everything
    assert "tools/rules.bzl: 2 of 2 targets of the rule classes it reaches, or depending on them, have the same " \
           "actions at both revisions" in selection.notes


def test_a_rule_implementation_that_writes_something_else_selects_its_targets_dependents(repo):
    change(repo, {"tools/helper.bzl": FILES["tools/helper.bzl"].replace('"stamp "', '"stamped "')})
    selection = repo.collector.collect(repo.base, "HEAD")
    assert _tests(selection) == {"//ruled:ruled_test"}
    assert selection.tests[0].reasons == ["tools/helper.bzl"]


def test_a_provider_change_with_the_same_own_actions_selects_the_dependents_whose_actions_change(repo):
    """stamp's own action is the same; it now hands its file over as runfiles, so ruled_test's runfiles (its own
    actions) differ: it is selected."""
    change(repo, {"tools/rules.bzl": FILES["tools/rules.bzl"].replace(
        "return [DefaultInfo(files = depset([out]))]",
        "return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [ctx.file._extra]))]").replace(
        "stamp_file = rule(implementation = _stamp_impl)",
        'stamp_file = rule(implementation = _stamp_impl, attrs = {"_extra": attr.label(default = "//lib:data.txt", '
        'allow_single_file = True)})')})
    selection = repo.collector.collect(repo.base, "HEAD")
    assert _tests(selection) == {"//ruled:ruled_test"}


def test_a_bzl_file_a_target_takes_as_data_selects_that_target(repo):
    """A .bzl file is also a file: a test may take it as data (bzl_library, documentation checks). Before: only what
    loads it was judged, and the test that reads it was missed."""
    change(repo, {"bzldoc/BUILD": 'sh_test(name = "doc_test", srcs = ["t.sh"], data = ["//tools:helper.bzl"])\n',
                  "bzldoc/t.sh": "#!/bin/sh\n", "tools/BUILD": 'exports_files(["helper.bzl"])\n'})
    before = git(repo.path, "rev-parse", "HEAD").strip()
    change(repo, {"tools/helper.bzl": "# Text the stamps write.\n" + FILES["tools/helper.bzl"]})
    selection = repo.collector.collect(before, "HEAD")
    assert _tests(selection) == {"//bzldoc:doc_test"}  # ruled_test's actions are the same: a comment changed


def test_too_many_targets_to_compare_keeps_every_target_of_the_rule(repo, monkeypatch):
    from releasekit.selection import rule_actions

    monkeypatch.setattr(rule_actions, "LIMIT", 1)
    change(repo, {"tools/rules.bzl": REFACTORED})
    selection = repo.collector.collect(repo.base, "HEAD")
    assert _tests(selection) == {"//ruled:ruled_test"}
    assert any("every target of the rule classes it reaches is selected: 2 targets would be compared, more than 1" in n
               for n in selection.notes), selection.notes
