"""Why a target is selected (the changed files that reach it, and one dependency path), or why it is not."""

import os

from releasekit.core.errors import ReleasekitError, UsageError
from releasekit.selection.bazelquery import quote
from releasekit.selection.change_kinds import BUILD_FILE_NAMES
from releasekit.selection.selecting import EXCLUDING_TAGS, RELEASE_KIND


def explain(collector, base, head, label):
    """Lines that say why label is selected between base and head, or why not."""
    selection = collector.collect(base, head)
    label = label if label.startswith("//") else "//" + label.lstrip("/")
    entry = next((t for t in selection.tests + selection.releases if t.label == label), None)
    if entry is None:
        return ["{} is not selected: {}.".format(label, _why_not_selected(collector, selection, label))]
    lines = ["{} ({}) is selected because of: {}".format(label, entry.kind, ", ".join(entry.reasons) or "-")]
    if selection.everything:
        return lines + ["  " + "; ".join(selection.notes)]
    for reason in entry.reasons:
        package = collector.package_at_head(reason)
        if package is None or reason.endswith(".bzl"):
            continue
        if os.path.basename(reason) in BUILD_FILE_NAMES:
            lines.append("  {} changed the definition of a target it depends on".format(reason))
            continue
        source = "//{}:{}".format(package, reason[len(package) + 1:] if package else reason)
        try:
            path = collector.bazel.query_labels("somepath({}, {})".format(quote(label), quote(source)))
        except ReleasekitError:
            path = []
        if path:
            lines.append("  path: " + " -> ".join(reversed(path)))
            break
    return lines


def _why_not_selected(collector, selection, label):
    """It does not exist, is not a test or CI release, is kept out, or is unaffected."""
    try:
        targets = collector.bazel.query_targets(quote(label))
    except ReleasekitError as error:
        raise UsageError("{} is not a target of {} at head, so it cannot be selected ({}). Check the label with "
                         "`bazel query {}`.".format(label, collector.workspace, error, label)) from None
    target = targets.get(label)
    if target is None or not target.is_rule:
        return "it is a {}, not a test or a CI release".format(target.kind if target else "target of another kind")
    kept_out = sorted(EXCLUDING_TAGS & set(target.tags))
    if kept_out:
        return "it is tagged {}, which keeps it out of CI".format(" and ".join(kept_out))
    if not target.is_test and target.kind not in (RELEASE_KIND, "test_suite"):
        return "it is a {}, neither a test nor a CI release ({})".format(target.kind, RELEASE_KIND)
    if selection.everything:
        return "it is not reached by the change"
    return "none of the {} changed files is in its dependencies{}".format(
        len(selection.changed_files), "" if selection.changed_files else " (no file changed)")
