"""Why a target is selected (the changed files that reach it, and one dependency path), or why it is not."""

import os

from releasekit.core.errors import BazelError, ReleasekitError, UsageError
from releasekit.selection.bazelquery import quote
from releasekit.selection.bazelrc_reach import RC_OPTION
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
    missing = collector.bazel.not_a_target(label)
    if missing is not None:
        if _is_a_target_at_base(collector, selection.base, label):
            return "the change removed it: it is a target at the base {}, not at head, so there is nothing to " \
                   "run".format(selection.base[:12])
        raise UsageError("{} is not a target of {}, neither at head nor at the base {} ({}). Check the label with "
                         "`bazel query {}`.".format(label, collector.workspace, selection.base[:12], missing, label))
    try:
        targets = collector.bazel.query_targets(quote(label))
    except ReleasekitError as error:
        raise UsageError("{} cannot be read at head, so it cannot be selected ({}).".format(label, error)) from None
    target = targets.get(label)
    if target is None or not target.is_rule:
        return "it is {}, not a test or a CI release".format(
            _with_article(target.kind) if target else "a target of another kind")
    kept_out = sorted(EXCLUDING_TAGS & set(target.tags))
    if kept_out:
        return "it is tagged {}, which keeps it out of CI".format(" and ".join(kept_out))
    if not target.is_test and target.kind not in (RELEASE_KIND, "test_suite"):
        return "it is {}, neither a test nor a CI release ({})".format(_with_article(target.kind), RELEASE_KIND)
    if selection.everything:
        return "it is not reached by the change"
    unreached = "none of the {} changed files is in its dependencies{}".format(
        len(selection.changed_files), "" if selection.changed_files else " (no file changed)")
    # What the changed rc options reach, as collect said it (notes, and the reasons of what they selected).
    said = [n for n in selection.notes if n.startswith(RC_OPTION)] + sorted(
        {r for t in selection.tests + selection.releases for r in t.reasons if r.startswith(RC_OPTION)})
    if said:
        return "{}, and the changed `.bazelrc` options do not reach it: {}".format(unreached, "; ".join(said))
    return unreached


def _with_article(noun):
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _is_a_target_at_base(collector, base_commit, label):
    """Whether label names a target at the base revision: read through this workspace's server where it can be
    trusted to, else by the base's own."""
    definitions = collector.bazel.base_package_definitions(quote(label), collector.base.workspace(base_commit))
    if definitions and label in definitions:
        return True
    try:
        return collector.base.own_bazel(base_commit).not_a_target(label) is None
    except BazelError:  # the base revision does not load: it cannot say
        return False
