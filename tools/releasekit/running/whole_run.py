"""A whole run of dispatch, ci or pr: its shard of the selection, the tests, then the releases, the run report and
JUnit file, and the run's record in the history."""

import dataclasses
import os
import time

from releasekit.running import run_report, sharding
from releasekit.running.dispatch import DispatchOptions, Dispatcher
from releasekit.running.run_report import Outcome
from releasekit.selection.bazelquery import Bazel


@dataclasses.dataclass
class RunSettings:
    """What dispatch, ci and pr share: where, with what, and how the run reports."""

    workspace: str
    bazel_command: str = None
    options: DispatchOptions = dataclasses.field(default_factory=DispatchOptions)
    shard: str = None  # "K/N"
    previous_report: str = None
    report: str = None
    junit: str = None
    command: str = "dispatch"  # dispatch, ci or pr: what the history records
    base: str = None
    started: float = None  # when the command began (seconds since the epoch): a ci run's time includes collect
    history: object = None  # insight.ci_runs.RunHistory
    quarantine_decisions: list = dataclasses.field(default_factory=list)
    cost: object = None  # core.usage.RunCost, begun when the command began


def run_selection(settings, tests, releases, progress, gate_releases_on_tests=False):
    """Shard, run the tests, then the releases; write the reports. Returns (exit code, lines to show)."""
    from releasekit.insight import ci_runs

    lines, started = [], settings.started or time.time()
    marks = [("select", time.time())]  # (phase, when it ended); select: collect (ci, pr) or reading selection files
    if settings.shard:
        index, count = sharding.parse_shard(settings.shard)
        durations = sharding.durations_from_report(settings.previous_report)
        tests = sharding.shard(tests, index, count, durations)
        releases = sharding.shard(releases, index, count, durations)
        progress.note("shard {}: {} tests, {} releases".format(settings.shard, len(tests), len(releases)))
    workspace = os.path.abspath(settings.workspace)
    dispatcher = Dispatcher(workspace, bazel=Bazel(workspace, command=settings.bazel_command), options=settings.options,
                            progress=progress)
    try:
        outcomes = dispatcher.run_tests(tests, releases)
        marks.append(("tests", time.time()))
        if gate_releases_on_tests:
            failing_packages = {o.label.split(":")[0] for o in outcomes if o.failed and not o.quarantined}
            gated = [r for r in releases if r.split(":")[0] in failing_packages]
            releases = [r for r in releases if r not in gated]
            outcomes += [Outcome(label, "release", "skipped", reason="a test in its package failed") for label in gated]
        outcomes += dispatcher.run_releases(releases)
        marks.append(("releases", time.time()))
    finally:
        dispatcher.close()
    progress.close()
    cpu = settings.cost.figures() if settings.cost else None
    lines.append(run_report.summary_table(outcomes))
    report = settings.report or os.path.join(dispatcher.report_dir, "report.json")
    decisions = [dataclasses.asdict(d) for d in settings.quarantine_decisions]
    run_report.write_report(report, outcomes, {"shard": settings.shard, "build_only": settings.options.build_only,
                                               "quarantine": decisions, "cpu": cpu,
                                               "timings": run_report.timings(started, marks)})
    junit = settings.junit or os.path.join(dispatcher.report_dir, "junit.xml")
    run_report.write_junit(junit, outcomes)
    lines.append("report: {}  junit: {}".format(report, junit))
    code = run_report.exit_code(outcomes)
    if settings.history and settings.history.url:
        facts = {"start": started, "end": time.time(), "base": settings.base, "shard": settings.shard, "exit_code": code,
                 "build_only": settings.options.build_only, "quarantine": decisions}
        if cpu:
            facts["cpu"] = cpu
        lines.append(ci_runs.record_run(settings.history, settings.command, outcomes, dispatcher.report_dir,
                                        dispatcher.workspace_environ(), facts))
    return code, lines
