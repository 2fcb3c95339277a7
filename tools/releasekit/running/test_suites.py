"""A test_suite named in a tests selection runs as the tests it stands for.

`bazel test //pkg:suite` runs the suite's tests, and its build events report a result for each of them, none for the
suite: judged by its own label, a suite would be a test with no result, a failure that holds back every release.
A hand-written tests.json (or one collect wrote before it expanded suites) may name one, so a run replaces each
test_suite by its tests (`bazel query 'tests(...)'`: what `bazel test` runs) and says so. When the labels do not
load, they stay as given: `bazel test` reports each that does not.
"""

import re

from releasekit.core.errors import ReleasekitError
from releasekit.selection.bazelquery import quote


def expand(bazel, labels):
    """(labels, each test_suite replaced by its tests, in order and once each; notes to show)."""
    if not labels:
        return labels, []
    try:
        suites = _labels(bazel, "kind({}, set({}))".format(quote("^test_suite rule$"), _set(labels)))
        members = _labels(bazel, "tests(set({}))".format(_set(sorted(suites)))) if suites else []
    except ReleasekitError:
        return labels, []
    if not suites:
        return labels, []
    expanded = [label for label in labels if label not in suites]
    expanded += [label for label in members if label not in expanded]
    named = sorted(suites)
    return expanded, ["test_suite{} {} run{} as {} test{}: {}".format(
        "s" if len(named) > 1 else "", ", ".join(named), "" if len(named) > 1 else "s", len(members),
        "" if len(members) == 1 else "s", ", ".join(members[:5]) + (" and {} more".format(len(members) - 5)
                                                                    if len(members) > 5 else ""))]


def _labels(bazel, expression):
    return [re.sub(r"^@@?(?=//)", "", label) for label in bazel.query_labels(expression)]


def _set(labels):
    return " ".join(quote(label) for label in labels)
