"""What dispatch, ci and pr share: the run context and settings, checked before anything runs, and the run of a
selection with its table printed."""

import sys
import threading

from releasekit.core.run_context import PUBLISHING, RUNNING, RunContext


def run_settings(args, cost, build_only=False):
    """Every option and releasekit.yaml checked once, before anything runs: a run that publishes checks the channels
    apart; a build-only run (pr) publishes nothing and does not. cost: the run's core.usage.RunCost, begun when the
    command began."""
    from releasekit.running.whole_run import RunSettings

    context = RunContext.load(RUNNING if build_only else PUBLISHING, workspace=args.workspace)
    settings = RunSettings.from_arguments(args, context, build_only)
    settings.cost = cost
    return settings


def run_selection(settings, tests, releases):
    """Run the selection and print its table; the exit code."""
    from releasekit.running.progress import Progress
    from releasekit.running.whole_run import run_selection as run

    code, lines = run(settings, tests, releases, Progress(sys.stdout))
    print("\n".join(lines))
    return code


def collect_and_run(args, head, build_only=False):
    """ci and pr: collect (against head, or the working tree), then run what it selected."""
    from releasekit.commands.collect import select
    from releasekit.core.usage import RunCost

    cost = RunCost(args.workspace)  # the Bazel servers as they are before collect's first query
    settings = run_settings(args, cost, build_only)
    # Imported while collect waits for Bazel's answer, not between it and the tests.
    threading.Thread(target=_import_what_runs_need, name="imports", daemon=True).start()
    stopping = []  # the base revision's server stops while the tests run
    try:
        selection = select(args, head, lambda: settings.context, stopping, cost,
                           carry=None if build_only else settings.carry_over)
        return run_selection(settings, [t.label for t in selection.tests], [t.label for t in selection.releases])
    finally:
        for thread in stopping:
            thread.join()


def _import_what_runs_need():
    try:
        import releasekit.insight.ci_runs  # noqa: F401  (imported for its cost, now: the run history's HTTP stack)
        import releasekit.running.progress  # noqa: F401  (imported for its cost, now)
        import releasekit.running.whole_run  # noqa: F401  (imported for its cost, now)
    except ImportError:
        pass  # the run imports them again, and says what is missing
