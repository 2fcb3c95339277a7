"""What a run left undone, carried into the next run's selection: nothing held back is lost, and a quarantined test
that failed is run again until it passes or is judged broken.

A test that did not pass (quarantined or not) and a release that did not publish (held back, refused, failed, or not
built) are outstanding. A run's report lists them among its targets, and so does its record in the run history. The
next run of the branch selects them again, whatever its own change reaches, each with the reason `carried over from
<commit>: <status>`; what that run leaves undone, the run after it carries on, until the test passes and the release
publishes. A label no longer in the workspace, or no longer a test or CI release, is dropped with a note.

Where collect and ci read them:
- `--previous-report FILE|DIR`: the previous run's reports, every shard's (the generated pipelines download those of
  the main line's last successful run, to balance the shards, and hand them to collect too);
- else the run history (collect: `--history`; ci: its history, `--history` or releasekit.yaml's): the records of the
  branch's last CI run at another commit than this run's, every shard's. When the history cannot be read, what it
  would carry is not known: `ci` publishes nothing (the gate's outcome is unknown) and collect stops (exit 1).
"""

import dataclasses
import datetime
import json
import os
import re

from releasekit.core.errors import ReleasekitError, UsageError
from releasekit.running.run_report import PASSED_STATES, report_files
from releasekit.selection import graph, selecting
from releasekit.selection.base_revision import has_build_file
from releasekit.selection.bazelquery import quote

DONE_RELEASE_STATES = ("published", "built")  # built: a pull request's run, which publishes nothing
_RUN_COMMANDS = ("ci", "dispatch")
_READ_RUNS = 200  # history records read, newest first, to find the branch's last run and all of its shards
_DAYS = 30


@dataclasses.dataclass
class Outstanding:
    """What runs left undone: {label: (the commit of the run that left it, its status there)}, and where it was read."""

    items: dict
    source: str


class UnknownOutstanding(ReleasekitError):
    """What the last run left undone could not be read; the message says why."""


def from_reports(path):
    """The Outstanding of the run reports at path (one report, or a directory of every shard's)."""
    items = {}
    for report_path in report_files(path):
        try:
            with open(report_path, encoding="utf-8") as handle:
                report = json.load(handle)
            targets = report["targets"] if not report.get("build_only") else []
            for target in targets:
                status = _outstanding_status(target["kind"], target["status"], target.get("quarantined"))
                if status:
                    items[target["label"]] = (report.get("commit"), status)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            raise UsageError("Cannot read the previous report {}: {}. Give a report that releasekit dispatch, ci or "
                             "collect's runs wrote (--report), or a directory of them.".format(report_path, error)) \
                from None
    return Outstanding(items, path)


def from_history(history, workspace, head_commit, now=None):
    """The Outstanding of the branch's last CI run at another commit than head_commit, from its history records
    (every shard's; a later record of a label wins). history: insight.ci_runs.RunHistory."""
    from releasekit.insight import history as history_store
    from releasekit.insight.run_record import STATUSES, where_it_ran

    now = now or datetime.datetime.now(datetime.timezone.utc)
    where = history.destination.text
    try:
        branch = where_it_ran(workspace, os.environ)["branch"]
        store = history_store.History(history.open(history_store.RUN_UPLOAD_POLICY))
        names = store.names(since=now - datetime.timedelta(days=_DAYS))[::-1][:_READ_RUNS]
        records = []
        for _, record, _ in store.read(names):  # newest first: the last run's shards, until a run before it
            if record and _of_the_branch(record, branch, head_commit):
                if records and record["commit"] != records[0]["commit"]:
                    break
                records.append(record)
    except ReleasekitError as error:
        raise UnknownOutstanding("the run history {} could not be read ({})".format(where, error)) from None
    if not records:
        return Outstanding({}, where)
    last = records[0]["commit"]
    items = {}
    for record in sorted((r for r in records if r["commit"] == last), key=lambda r: r["start"]):
        targets = record["targets"]
        others, marks = targets.get("other_statuses", {}), targets.get("quarantined") or ""
        for index, (label, kind) in enumerate(zip(targets["labels"], targets["kinds"])):
            letter = targets["statuses"][index]
            status = others.get(str(index), "?") if letter == "X" else STATUSES.get(letter, "?")
            status = _outstanding_status("test" if kind == "T" else "release", status, marks[index:index + 1] == "1")
            if status:
                items[label] = (last, status)
            else:
                items.pop(label, None)
    return Outstanding(items, "{} (the last run of {} at {})".format(where, branch or "this branch", last[:12]))


def _of_the_branch(record, branch, head_commit):
    return (record.get("command") in _RUN_COMMANDS and not record.get("build_only") and record.get("ci") is not False
            and record.get("branch") == branch and record.get("commit") and record["commit"] != head_commit)


def _outstanding_status(kind, status, quarantined):
    """How a target that was left undone is described, or None when it is done."""
    if kind == "test":
        return None if status in PASSED_STATES else status + (" (quarantined)" if quarantined else "")
    return None if status in DONE_RELEASE_STATES else status


def carry(bazel, selection, outstanding):
    """Add the outstanding tests and releases that are still tests and CI releases of the workspace to the
    selection, each with its reason; a note says what was carried over and what was dropped."""
    labels = sorted(label for label in outstanding.items if label.startswith("//"))
    if not labels:
        return selection
    packages = sorted({graph.package_of(label) for label in labels if has_build_file(bazel.workspace,
                                                                                     graph.package_of(label))})
    targets = {}
    if packages:
        regex = "^({})$".format("|".join(re.escape(label) for label in labels))
        targets = bazel.query_targets("filter({}, {})".format(quote(regex), graph.packages_expression(packages, "all")))
    reasons = {label: {"carried over from {}: {}".format((commit or "?")[:12], status)}
               for label, (commit, status) in outstanding.items.items()}
    selecting.add(bazel, selection, targets, reasons)
    tests = [label for label in labels if label in {entry.label for entry in selection.tests}]
    releases = [label for label in labels if label in {entry.label for entry in selection.releases}]
    dropped = [label for label in labels if label not in tests and label not in releases]
    selection.notes.append("carried over from {}: {} test{} that did not pass, {} release{} that did not publish{}"
                           .format(outstanding.source, len(tests), _plural(tests), len(releases), _plural(releases),
                                   " ({})".format(_listed(tests + releases)) if tests or releases else ""))
    if dropped:
        selection.notes.append("not carried over, no longer a test or CI release of the workspace: " + _listed(dropped))
    return selection


def carry_into(selection, bazel, previous_report, history):
    """Carry over what the previous run left undone: from its reports when given, else from the history (None: none).
    Raises UnknownOutstanding when the history cannot be read."""
    if previous_report:
        return carry(bazel, selection, from_reports(previous_report))
    if history is not None and history.destination:
        head = selection.head if selection.head != "WORKTREE" else None
        return carry(bazel, selection, from_history(history, bazel.workspace, head))
    return selection


def held_back_reason(error):
    """The reason every release of a run is held back for when what the last run left undone is not known."""
    return "what the last run of this branch left undone is not known: {}".format(error)


def _listed(labels, shown=5):
    return ", ".join(labels[:shown]) + (" and {} more".format(len(labels) - shown) if len(labels) > shown else "")


def _plural(items):
    return "" if len(items) == 1 else "s"
