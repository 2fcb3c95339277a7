"""What a changed `.bazelrc` option selects, asked of Bazel: its reach (bazelrc.reach) turned into targets.

Apart from bazelrc.py, which only reads rc files: dispatch reads them too (to know whether `bazel test` builds as
`bazel build` would) and needs none of the queries here.
"""

from releasekit.core.errors import BazelError
from releasekit.selection import externals
from releasekit.selection.bazelquery import quote
from releasekit.selection.bazelrc import LANGUAGE_KINDS


# How every note and reason about a changed rc option begins (explain finds them by it).
RC_OPTION = "`.bazelrc` option"


class Reached:
    """What one changed option selects: targets (with their edges), the reason they carry, whether only the tests
    among them, and a note for the selection."""

    def __init__(self, targets, reason, tests_only=False, note=None):
        self.targets, self.reason, self.tests_only, self.note = targets, reason, tests_only, note


def resolve(bazel, reach_of_option, name):
    """The Reached of one changed option, from its reach(); externals.Unjudged when it cannot be judged."""
    if reach_of_option == "none":
        return Reached({}, None, note=RC_OPTION + " --{} changed; it cannot change a build or test result, nor what "
                                      "collect's queries answer".format(name))
    if reach_of_option == "tests":
        return Reached(bazel.query_targets("tests(//...)", universe_scope="//..."),
                       RC_OPTION + " `--{}` changed: the tests".format(name), True)
    kind, language, tests_only = reach_of_option
    under_test = ", under `test`" if tests_only else ""
    if kind == "language":
        expression = "let seeds = kind({}, //...) in rdeps(//..., $seeds) + tests($seeds)".format(
            quote(LANGUAGE_KINDS[language]))
        return Reached(bazel.query_targets(expression, universe_scope="//..."), RC_OPTION + " `--{}` changed: {} "
                       "targets in the target configuration{}".format(name, language, under_test), tests_only)
    tools = _built_as_tools(bazel, language, name)
    if not tools:
        return Reached({}, None, note=RC_OPTION + " --{} changed; no {} target is built in the exec "
                                      "configuration".format(name, language))
    targets = externals.dependents(bazel, {label: set() for label in tools})
    # A toolchain() names its implementation by a label query does not follow: ask for them apart.
    handed_out = set(bazel.query_labels("labels(toolchain, kind('^toolchain rule$', //...))"))
    wrapping = sorted(label for label, target in targets.items() if label in handed_out or target.kind == "toolchain")
    if wrapping:
        raise externals.Unjudged(RC_OPTION + " --{} changes tools that toolchain resolution hands out through "
                                 "{}".format(name, ", ".join(wrapping[:3])))
    named = ", ".join(sorted(tools)[:3]) + (", ..." if len(tools) > 3 else "")
    return Reached(targets, RC_OPTION + " `--{}` changed: {} targets built as tools in the exec configuration "
                   "({}){}".format(name, language, named, under_test), tests_only)


def _built_as_tools(bazel, language, name):
    """A language's targets the build builds in the exec configuration, from the configured graph (one cquery,
    which also follows toolchain edges). A tool that no target of the workspace depends on through attributes is
    Unjudged later (externals.dependents): toolchain resolution may hand it to anything."""
    try:
        return bazel.built_for_execution("kind({}, deps(//...))".format(quote(LANGUAGE_KINDS[language])))
    except BazelError as error:
        raise externals.Unjudged(RC_OPTION + " --{} changed, and the targets built as tools could not be "
                                 "found: {}".format(name, error)) from None
