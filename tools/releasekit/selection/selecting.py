"""From the targets a change reaches to the selection: the tests and CI releases among them, each with its reasons,
without those incompatible with the target platform."""

import re

from releasekit.selection import graph
from releasekit.selection.bazelquery import quote
from releasekit.selection.selection_file import Selected, Selection

RELEASE_KIND = graph.RELEASE_KIND
EXCLUDING_TAGS = frozenset(["manual", "no-ci"])


def fill(selection, targets, reasons):
    """Add the selectable targets among targets, with their reasons."""
    for label, target in targets.items():
        if label.startswith("//external") or label.startswith("@") or EXCLUDING_TAGS.intersection(target.tags):
            continue
        if not graph.selectable(target):
            continue
        entry = Selected(label, target.kind, sorted(reasons.get(label, ())))
        if target.kind == RELEASE_KIND:
            selection.releases.append(entry)
        else:
            selection.tests.append(entry)


def leave_out_incompatible(bazel, selection, targets):
    """Targets incompatible with the target platform are never handed to Bazel by name (it fails on them)."""
    constrained = sorted(t.label for t in selection.tests + selection.releases if targets[t.label].constrained)
    if not constrained:
        return
    packages = sorted({graph.package_of(label) for label in constrained})
    regex = "^({})$".format("|".join(re.escape(label) for label in constrained))
    incompatible = bazel.incompatible("filter({}, {})".format(quote(regex), graph.packages_expression(packages, "all")))
    if incompatible:
        selection.tests = [t for t in selection.tests if t.label not in incompatible]
        selection.releases = [t for t in selection.releases if t.label not in incompatible]
        selection.notes.append("left out, incompatible with the target platform (target_compatible_with): {}".format(
            ", ".join(sorted(incompatible))))


def add(bazel, selection, targets, reasons, tests_only=False):
    """Add the selectable targets among targets to a selection, merging reasons with entries it has."""
    partial = Selection(selection.base, selection.head, False, [], [], selection.changed_files)
    fill(partial, targets, reasons)
    leave_out_incompatible(bazel, partial, targets)
    selection.notes += [note for note in partial.notes if note not in selection.notes]
    existing = {entry.label: entry for entry in selection.tests + selection.releases}
    for entry in partial.tests + ([] if tests_only else partial.releases):
        if entry.label in existing:
            existing[entry.label].reasons = sorted(set(existing[entry.label].reasons) | set(entry.reasons))
        else:
            (selection.releases if entry.kind == RELEASE_KIND else selection.tests).append(entry)


def everything(bazel, selection, hits, why=None):
    """Every test and release, each for the global files that changed (hits), and why."""
    selection.everything = True
    selection.notes.append("{} changed{}: every test and release is selected".format(
        ", ".join(hits), " ({})".format(why) if why else ""))
    targets = bazel.query_targets("tests(//...) + kind({}, //...)".format(RELEASE_KIND))
    fill(selection, targets, {label: set(hits) for label in targets})
    leave_out_incompatible(bazel, selection, targets)
    return selection


def reaching(targets, seeds):
    """The labels of targets that reach one of the seeds (the seeds among them included): along rule inputs, and from
    a test_suite to its tests."""
    dependents = {}
    for label, target in targets.items():
        for source in target.inputs:
            dependents.setdefault(source, []).append(label)
        for test in target.test_suite_tests:
            dependents.setdefault(label, []).append(test)
    reached = {label for label in seeds if label in targets}
    pending = list(reached)
    while pending:
        for dependent in dependents.get(pending.pop(), ()):
            if dependent not in reached and dependent in targets:
                reached.add(dependent)
                pending.append(dependent)
    return reached
