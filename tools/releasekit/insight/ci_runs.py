"""What a CI run (dispatch, ci, pr) takes from the history and gives back: the quarantine set, then its record."""

import dataclasses
import glob
import os

from releasekit.core.errors import ReleasekitError, UsageError
from releasekit.core.run_policy import AutoQuarantine
from releasekit.insight import bazel_profile, quarantine, run_record


@dataclasses.dataclass
class RunHistory:
    """Where a run's record goes (a Destination; None: nowhere), how `--quarantine auto` decides, and how the
    history's store is opened (the run context's open_store: its credentials and TLS settings)."""

    destination: object = None
    auto_quarantine: AutoQuarantine = AutoQuarantine()
    opener: object = None  # opener(destination, policy) -> Store

    def open(self, policy=None):
        return self.opener(self.destination, policy)


def run_history(context, explicit_url=None):
    """The history of a run: --history wins over releasekit.yaml's `history` (both parsed once by the run context,
    TLS settings and all); the thresholds come from releasekit.yaml."""
    return RunHistory(context.history(explicit_url), context.auto_quarantine, context.open_store)


@dataclasses.dataclass
class QuarantinePlan:
    """A run's quarantine: the labels, each decision with its evidence, the lines to show, and the history runs of
    the quarantined tests, which judge() needs once the tests have run."""

    labels: set = dataclasses.field(default_factory=set)
    decisions: list = dataclasses.field(default_factory=list)
    lines: list = dataclasses.field(default_factory=list)
    runs: dict = dataclasses.field(default_factory=dict)
    policy: AutoQuarantine = AutoQuarantine()

    def judge(self, outcomes, commit):
        """After the tests: a quarantined test that failed every attempt at this commit, as at the commits before
        it, reaches broken_after consecutive commits: broken, out of quarantine (its failure fails the run). The
        lines to show."""
        lines = []
        by_label = {d.label: d for d in self.decisions}
        for outcome in outcomes:
            if not (outcome.quarantined and outcome.status in quarantine.ALL_ATTEMPTS_FAILED):
                continue
            streak = quarantine.failing_streak(self.runs.get(outcome.label, []))
            if commit and commit not in [c for c, _ in streak]:
                streak.insert(0, (commit, None))  # this run's failure
            decision = by_label.get(outcome.label) or quarantine.Decision(outcome.label, True, "file", "quarantined")
            verdict = quarantine.broken(decision, streak, self.policy)
            if verdict is None:
                lines.append("quarantine: {} failed every attempt, at {} consecutive commit{} (broken at {}): a "
                             "failure that holds back the releases it gates; quarantined, it does not fail the "
                             "run".format(outcome.label, len(streak), "" if len(streak) == 1 else "s",
                                          self.policy.broken_after))
                continue
            outcome.quarantined = False
            outcome.reason = verdict.reason
            self.labels.discard(outcome.label)
            self.decisions = [d for d in self.decisions if d.label != outcome.label] + [verdict]
            lines.append("quarantine: " + quarantine.describe(verdict))
        return lines


def quarantine_for_run(sources, settings, tests):
    """The QuarantinePlan of a run of tests (the whole selection). The history is read when a quarantine is asked
    for and there is one: for --quarantine auto's flakes, and for any quarantined test's failures at earlier commits.
    An unreachable history quarantines nothing automatically and says so; it never fails the run."""
    sources = list(sources or [])
    plan = QuarantinePlan(policy=settings.auto_quarantine)
    if quarantine.AUTO in sources and not settings.destination:
        raise UsageError("--quarantine auto reads the run history, and none is set: pass --history URL or set "
                         "`history:` in releasekit.yaml.")
    if sources and settings.destination and tests:
        from releasekit.insight import history  # the HTTP stack: only a run that reads or writes its history

        try:
            store = history.History(settings.open(history.RUN_UPLOAD_POLICY))
            plan.runs, note = store.runs_by_test(tests, settings.auto_quarantine.window)
            if note:
                plan.lines.append("quarantine: " + note)
        except ReleasekitError as error:
            plan.lines.append("quarantine: the history could not be read ({}); {}".format(error, (
                "no test is quarantined by it" if quarantine.AUTO in sources else
                "failures at earlier commits are not known")))
    plan.labels, plan.decisions = quarantine.resolve(sources, plan.runs, settings.auto_quarantine)
    plan.lines += ["quarantine: " + quarantine.describe(d) for d in plan.decisions]
    return plan


def record_run(settings, command, outcomes, report_dir, environ, facts):
    """Append the run's record to the history; the line to show. facts: start, end, base, shard, exit_code..."""
    try:
        where = run_record.where_it_ran(environ["BUILD_WORKSPACE_DIRECTORY"], environ)
        where.update(facts)
        record = run_record.new_record(command, outcomes, where)
        profiles = sorted(glob.glob(os.path.join(report_dir, "bazel-*.profile.json")), reverse=True)  # tests first
        if profiles:
            record["profile"] = bazel_profile.merge_profiles(bazel_profile.read_profile(p) for p in profiles)
    except ReleasekitError as error:
        return "history: not written: {}".format(error)
    from releasekit.insight import history

    return history.record_run(lambda: settings.open(history.RUN_UPLOAD_POLICY), record, report_dir)
