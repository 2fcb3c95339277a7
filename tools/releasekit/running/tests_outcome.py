"""What a run that did not run the tests itself learns of them: the reports of the runs that did.

A sharded pipeline's release shard runs after every test shard and is given their reports (`--test-reports DIR`).
Every run that tests writes, in its report, what the tests' outcome is the outcome of (`test_run`): the commit,
whether the tree was clean, a digest of the whole test selection (before sharding) and its shard. The reports
tell this commit's outcome only when every report is such a report, of this commit and a clean tree, all of one
selection, and, for shards, all N of them, once each; and they ran every test of the selection the release run
gates (`--tests-selection`, the tests.json its own collect wrote). Anything less and read_test_reports says why, and
the gate holds every release back.
"""

import hashlib
import json
import os

from releasekit.core.errors import ReleasekitError
from releasekit.running.run_report import REPORT_VERSION, Outcome
from releasekit.running.sharding import parse_shard


class UnknownOutcome(Exception):
    """The reports do not tell the tests' outcome; the message says why."""


def facts_of_test_run(tests, shard, version):
    """The report's `test_run` entry of a run that tests: tests is its whole selection, before sharding; version:
    the source version (core.versioning) of its tree, or None when it could not be read."""
    digest = hashlib.sha256("\n".join(sorted(tests)).encode("utf-8")).hexdigest()
    return {"commit": version.commit if version else None, "dirty": version.dirty if version else None,
            "selection": digest, "selected": len(tests), "shard": shard}


def read_test_reports(path, commit, gated=None):
    """The test Outcomes of the reports at path (a directory of them, or one report) of the tests of commit.
    gated: (the test labels of the selection the run gates, where it was read); the reports must have run each of
    them. Raises UnknownOutcome with the reason when they do not tell it."""
    if not commit:
        raise UnknownOutcome("this run's commit could not be read, so no report can be matched to it")
    if os.path.isdir(path):
        names = sorted(name for name in os.listdir(path) if name.endswith(".json"))
        if not names:
            raise UnknownOutcome("{} holds no report".format(path))
        paths = [os.path.join(path, name) for name in names]
    elif os.path.isfile(path):
        paths = [path]
    else:
        raise UnknownOutcome("{} does not exist: the test shards' reports were not handed to this run".format(path))
    runs, outcomes = [], []
    for report_path in paths:
        run, tests = _read_one(report_path, commit)
        runs.append((report_path, run))
        outcomes += tests
    _check_complete(runs, len(outcomes))
    if gated is not None:
        _check_covered(outcomes, *gated)
    return outcomes


def _check_covered(outcomes, labels, source):
    """Reports of another test selection at this commit (a narrower one) say nothing of the tests they did not run."""
    missing = sorted(set(labels) - {outcome.label for outcome in outcomes})
    if missing:
        raise UnknownOutcome("the reports did not run {} of the {} test{} of {}: {}{}".format(
            len(missing), len(set(labels)), "" if len(set(labels)) == 1 else "s", source, ", ".join(missing[:3]),
            " and {} more".format(len(missing) - 3) if len(missing) > 3 else ""))


def _read_one(path, commit):
    try:
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
        run = report["test_run"]
        version_ok = report.get("format_version") == REPORT_VERSION
        targets = report["targets"]
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise UnknownOutcome("{} is not the report of a run that tested ({})".format(path, error)) from None
    if not version_ok:
        raise UnknownOutcome("{} has report format {} (this releasekit reads {})".format(
            path, report.get("format_version"), REPORT_VERSION))
    if not isinstance(run, dict):  # a release run's report, or one written before reports said what they tested
        raise UnknownOutcome("{} is not the report of a run that tested (it has no test_run)".format(path))
    if run.get("commit") != commit:
        raise UnknownOutcome("{} tested commit {}, not this run's {}".format(path, run.get("commit"), commit))
    if run.get("dirty") is not False:
        raise UnknownOutcome("{} tested a tree with uncommitted changes, not commit {}".format(path, commit))
    try:
        tests = [Outcome(t["label"], "test", t["status"], quarantined=bool(t.get("quarantined")),
                         attempts=t.get("attempts", 1), reason=t.get("reason")) for t in targets if t["kind"] == "test"]
    except (TypeError, KeyError) as error:
        raise UnknownOutcome("{} lists a target without {}".format(path, error)) from None
    return run, tests


def _check_complete(runs, tests):
    selections = {run.get("selection") for _, run in runs}
    if len(selections) != 1:
        raise UnknownOutcome("the reports are of different test selections: {}".format(", ".join(p for p, _ in runs)))
    shards = [run.get("shard") for _, run in runs]
    if shards == [None]:
        expected = runs[0][1].get("selected")
    else:
        try:
            parsed = [parse_shard(shard) for shard in shards]
        except (ReleasekitError, AttributeError):  # None among shards, or not K/N: not one sharded run's reports
            raise UnknownOutcome("the reports are not the shards of one run: {}".format(shards)) from None
        count = parsed[0][1]
        indices = sorted(index for index, _ in parsed)
        if any(n != count for _, n in parsed) or indices != list(range(1, count + 1)):
            missing = sorted(set(range(1, count + 1)) - set(indices))
            raise UnknownOutcome("the reports are shards {} of {}{}; every shard's report is needed, once".format(
                ", ".join(str(i) for i in indices), count,
                " (missing: {})".format(", ".join(str(i) for i in missing)) if missing else ""))
        expected = runs[0][1].get("selected")
    if expected != tests:
        raise UnknownOutcome("the reports list {} tests; their selection has {}".format(tests, expected))
