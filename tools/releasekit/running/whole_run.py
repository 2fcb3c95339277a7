"""A whole run of dispatch, ci or pr: its shard of the selection, the tests, the gate, then the releases, the run
report and JUnit file, and the run's record in the history."""

import dataclasses
import os
import time

from releasekit.core.errors import ReleasekitError, UsageError
from releasekit.running import gate, run_report, sharding, test_suites, tests_outcome
from releasekit.running.dispatch import DispatchOptions, Dispatcher
from releasekit.selection.bazelquery import Bazel


@dataclasses.dataclass
class RunSettings:
    """What dispatch, ci and pr share: where, with what, and how the run reports."""

    workspace: str
    context: object = None  # core.run_context.RunContext: releasekit.yaml read once, the retry policy, credentials
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
    quarantine: list = dataclasses.field(default_factory=list)  # --quarantine: files and auto
    gate: object = None  # run_policy.GateChoice; None: nothing is published (pr)
    test_reports: str = None  # reports of the runs that tested this commit (a sharded pipeline's test shards)
    cost: object = None  # core.usage.RunCost, begun when the command began
    tests_selection: str = None  # the tests selection file --test-reports must be the reports of
    outstanding_unknown: str = None  # why what the last run left undone is not known (every release is held back)

    @classmethod
    def from_arguments(cls, args, context, build_only=False):
        """The settings of dispatch, ci or pr, from their arguments and the command's run context (releasekit.yaml
        read once: the history, the quarantine thresholds and the gate). Every option is checked here, before
        anything runs."""
        from releasekit.insight import quarantine
        from releasekit.insight.ci_runs import run_history

        if args.flaky_test_attempts is not None and args.flaky_test_attempts < 1:
            raise UsageError("--flaky-test-attempts {} must be at least 1 (the attempts Bazel gives each test).".format(
                args.flaky_test_attempts))
        if args.shard:
            sharding.parse_shard(args.shard)
        for source in args.quarantine or []:
            if source != quarantine.AUTO:
                quarantine.read_quarantine_file(source)
        history = run_history(context, args.history)
        if quarantine.AUTO in (args.quarantine or []) and not history.destination:
            raise UsageError("--quarantine auto reads the run history, and none is set: pass --history URL or set "
                             "`history:` in releasekit.yaml.")
        options = DispatchOptions(workers=args.workers, bazel_flags=[f for f in (args.bazel_flags or []) if f != "--"],
                                  flaky_test_attempts=args.flaky_test_attempts, build_only=build_only,
                                  report_dir=args.logs, profile=args.profile)
        return cls(workspace=args.workspace, context=context, bazel_command=args.bazel, options=options,
                   shard=args.shard, previous_report=args.previous_report, report=args.report, junit=args.junit,
                   command=args.command, base=getattr(args, "base", None), started=args.started, history=history,
                   quarantine=list(args.quarantine or []), test_reports=getattr(args, "test_reports", None),
                   gate=None if build_only else context.gate(getattr(args, "gate", None)),
                   tests_selection=getattr(args, "tests_selection", None))

    def carry_over(self, selection, bazel):
        """ci: add to its selection what the branch's last run left undone (carry_over.py). When that cannot be
        read, the run goes on and publishes nothing."""
        from releasekit.running import carry_over

        try:
            return carry_over.carry_into(selection, bazel, self.previous_report, self.history)
        except carry_over.UnknownOutstanding as error:
            self.outstanding_unknown = carry_over.held_back_reason(error)
            selection.notes.append(self.outstanding_unknown)
            return selection


def _check_the_gate_can_learn(settings, tests, releases):
    """A run that publishes must learn the tests' outcome of its commit: from its own tests, all of them (not a
    shard of them), or from --test-reports. Refused before anything runs when it cannot."""
    if not releases or settings.gate is None:
        return
    if settings.test_reports:
        if tests is None and not settings.tests_selection:
            raise UsageError("--test-reports {} tells the outcome of a test selection, and this run has none to "
                             "check it against: pass --tests-selection FILE, the tests selection collect wrote for "
                             "this commit (the reports must have run each of its tests). Nothing was run.".format(
                                 settings.test_reports))
        return
    if settings.shard:
        raise UsageError("--shard {} runs a share of the releases, and a share of the tests says nothing of the "
                         "others: pass --test-reports DIR, the reports of every test shard of this commit (the "
                         "pipelines `releasekit pipeline` writes do). Nothing was run.".format(settings.shard))
    if tests is None:
        raise UsageError("dispatch --releases publishes only what passed its tests: pass --tests (the selection "
                         "collect wrote; this run tests it first) or --test-reports DIR (reports of the runs that "
                         "tested this commit). Nothing was run.")


def run_selection(settings, tests, releases, progress):
    """Shard, run the tests, gate, then run the releases; write the reports. tests: the tests selection (None when
    the run was given none). Returns (exit code, lines to show)."""
    from releasekit.core.versioning import read_source_version
    from releasekit.insight import ci_runs

    _check_the_gate_can_learn(settings, tests, releases)
    started = settings.started or time.time()
    marks = [("select", time.time())]  # (phase, when it ended); select: collect (ci, pr) or reading selection files
    workspace = os.path.abspath(settings.workspace)
    bazel = Bazel(workspace, command=settings.bazel_command)
    gated = _gated_selection(settings, bazel) if settings.test_reports else None
    if tests and settings.command == "dispatch":  # a tests file may name a test_suite; collect selects none
        tests, notes = test_suites.expand(bazel, tests)
        for note in notes:
            progress.note(note)
    dispatcher = Dispatcher(workspace, bazel=bazel, options=settings.options, progress=progress,
                            context=settings.context)
    try:
        version = read_source_version(dispatcher.workspace_environ())
    except ReleasekitError:
        version = None
    commit = version.commit if version else None
    test_run = None if tests is None else tests_outcome.facts_of_test_run(tests, settings.shard, version)
    tests = tests or []
    plan = ci_runs.quarantine_for_run(settings.quarantine, settings.history, tests)
    for line in plan.lines:
        progress.note(line)
    settings.options.quarantine = plan.labels
    if settings.shard:
        tests, releases = _shard(settings, bazel, tests, releases, progress)
    decision = None
    try:
        outcomes = dispatcher.run_tests(tests, releases)
        marks.append(("tests", time.time()))
        for line in plan.judge(outcomes, commit):
            progress.note(line)
        if settings.gate is not None:
            decision = _decide(settings, outcomes, releases, bazel, commit, gated)
        marks.append(("gate", time.time()))
        outcomes += dispatcher.run_releases(releases, decision.held_back if decision else None)
        marks.append(("releases", time.time()))
    finally:
        dispatcher.close()
    progress.close()
    cpu = settings.cost.figures() if settings.cost else None
    lines = [run_report.summary_table(outcomes)]
    if decision is not None and (releases or decision.notes):
        lines += decision.lines(outcomes)
    code = run_report.exit_code(outcomes) or (1 if decision is not None and decision.fails_run(outcomes) else 0)
    run = {"commit": commit, "test_run": test_run, "exit_code": code, "timings": run_report.timings(started, marks),
           "cpu": cpu, "started": started}
    return code, lines + _write_reports(settings, dispatcher, outcomes, decision, plan, run)


def _write_reports(settings, dispatcher, outcomes, decision, plan, run):
    """The run report, JUnit, and the run's record in the history; the lines to show. run: commit, test_run,
    exit_code, timings, cpu (or None) and started."""
    from releasekit.insight import ci_runs

    report = settings.report or os.path.join(dispatcher.report_dir, "report.json")
    decisions = [dataclasses.asdict(d) for d in plan.decisions]
    facts = {"shard": settings.shard, "build_only": settings.options.build_only, "quarantine": decisions,
             "gate": decision.report(outcomes, full=False) if decision else None}
    if run["cpu"]:
        facts["cpu"] = run["cpu"]
    run_report.write_report(report, outcomes, dict(facts, gate=decision.report(outcomes) if decision else None,
                                                   commit=run["commit"], test_run=run["test_run"],
                                                   exit_code=run["exit_code"], timings=run["timings"]))
    junit = settings.junit or os.path.join(dispatcher.report_dir, "junit.xml")
    run_report.write_junit(junit, outcomes)
    lines = ["report: {}  junit: {}".format(report, junit)]
    if settings.history and settings.history.destination:
        from releasekit.insight.run_record import flags_digest

        facts.update({"start": run["started"], "end": time.time(), "base": settings.base,
                      "exit_code": run["exit_code"], "flags": flags_digest(settings.options.bazel_flags)})
        lines.append(ci_runs.record_run(settings.history, settings.command, outcomes, dispatcher.report_dir,
                                        dispatcher.workspace_environ(), facts))
    return lines


def _shard(settings, bazel, tests, releases, progress):
    """This shard's tests and releases: a release lands in the shard of the releases it depends on."""
    index, count = sharding.parse_shard(settings.shard)
    durations = sharding.durations_from_report(settings.previous_report)
    tests = sharding.shard(tests, index, count, durations)
    groups, note = [[release] for release in releases], None
    if not settings.options.build_only:
        groups, note = gate.release_groups(bazel, releases)
    if note:
        progress.note(note)
    releases = sharding.shard_groups(groups, index, count, durations)
    progress.note("shard {}: {} test{}, {} release{}".format(settings.shard, len(tests), "" if len(tests) == 1 else "s",
                                                          len(releases), "" if len(releases) == 1 else "s"))
    return tests, releases


def _decide(settings, outcomes, releases, bazel, commit, gated):
    """The gate's decision on this run's releases, from its own tests and the reports it was handed. gated: (the
    labels of the test selection the run gates, where they were read)."""
    tests, unknown = [o for o in outcomes if o.kind == "test"], settings.outstanding_unknown
    if settings.test_reports:
        try:
            tests += tests_outcome.read_test_reports(settings.test_reports, commit, gated)
        except tests_outcome.UnknownOutcome as error:
            unknown = unknown or "--test-reports: {}".format(error)
    return gate.decide(settings.gate, tests, releases, bazel, unknown, settings.options.bazel_flags)


def _gated_selection(settings, bazel):
    """(test labels, where they were read) of the selection --test-reports must cover (--tests-selection, a test_suite
    as its tests), or None: a run that tests its own selection gates by its own tests."""
    from releasekit.selection.selection_file import load_labels

    if not settings.tests_selection:
        return None
    labels = test_suites.expand(bazel, load_labels(settings.tests_selection, "tests"))[0]
    return labels, "--tests-selection " + settings.tests_selection
