"""The releasekit command line. It parses arguments, calls one library function, and prints what it returns."""

import json
import os
import sys
import threading
import time

from releasekit.commandline import require_runtime_packages, run_command
from releasekit.core import environment
from releasekit.core.redact import redact


def _cmd_publish(args):
    require_runtime_packages()
    from releasekit.core.startup import signal_started
    from releasekit.publishing.runner import PublishOptions, publish, summary_line

    signal_started(os.environ)
    runfiles = args.runfiles or os.environ.get("RUNFILES_DIR") or os.getcwd()
    dry_run = args.dry_run or environment.DRY_RUN.is_true(os.environ)
    record = publish(args.manifest, PublishOptions(runfiles_dir=runfiles, config_path=args.config, dry_run=dry_run,
                                                   workers=args.workers))
    print(redact(summary_line(record)))
    return 0


def _collect(args, head, stopping=None, cost=None, carry=None):
    """The selection. stopping: a list to put the thread stopping the base revision's Bazel server in, for a
    command that goes on working meanwhile (and joins it); without it, the server is stopped before returning.
    cost: the run's core.usage.RunCost, which counts that server's CPU and says whether the agent keeps its servers
    between runs. carry(selection, bazel): adds what the last run left undone (running/carry_over.py)."""
    from releasekit.selection.bazelquery import Bazel
    from releasekit.selection.collect import Collector

    # On an agent that keeps its workspace's server between runs, the base revision's server is kept too: the next
    # run that needs it finds it warm, and it reads the base's packages. Elsewhere it stops, while the run goes on.
    keep_base_server = cost is not None and cost.persistent_agent
    workspace = os.path.abspath(args.workspace)
    bazel = Bazel(workspace, command=args.bazel, reads_other_checkouts=not keep_base_server)
    graphs = None
    if head != "WORKTREE":
        from releasekit.selection.target_graphs import Prepared

        graphs = Prepared(lambda: _target_graphs_destination(args.target_graphs, workspace), bazel.command,
                          workspace=workspace, record=_may_record_graphs(args, os.environ))
    collector = Collector(workspace, bazel=bazel, graphs=graphs)
    try:
        selection = collector.collect(args.base, head)
        if carry is not None:
            carry(selection, bazel)
    finally:
        if cost is not None and collector.base_bazel is not None:
            cost.counted(collector.base_bazel.workspace)
        if not keep_base_server:
            thread = collector.close(wait=stopping is None)
            if thread is not None:
                stopping.append(thread)
    for note in selection.notes:
        print("note: " + note)
    print("{} changed files: {} tests, {} releases selected ({} bazel queries)".format(
        len(selection.changed_files), len(selection.tests), len(selection.releases), selection.queries))
    return selection


def _may_record_graphs(args, environ):
    """(whether this run may record target graphs, why not): main-line runs only."""
    from releasekit.core.ci_context import pull_request

    if not getattr(args, "record_target_graphs", False):
        return False, "only a main-line run records it (--record-target-graphs)"
    if pull_request(environ):
        return False, "the CI engine says this run builds a pull request ({})".format(pull_request(environ))
    return True, None


def _target_graphs_destination(explicit_url, workspace):
    """--target-graphs, else releasekit.yaml's target_graphs (if there is a releasekit.yaml), else None."""
    from releasekit.core import config

    if explicit_url:
        return config.parse_target_graphs(explicit_url, "--target-graphs")
    path, chosen_by = config.find_config_path(None, dict(os.environ, BUILD_WORKSPACE_DIRECTORY=workspace))
    return config.target_graphs_of(path, chosen_by) if os.path.exists(path) else None


def _cmd_collect(args):
    from releasekit.core.jsonio import write_json_atomic
    from releasekit.insight.ci_runs import history_settings
    from releasekit.running.carry_over import carry_into

    history = history_settings(args.history, None)
    selection = _collect(args, args.head, carry=lambda selected, bazel: carry_into(
        selected, bazel, args.previous_report, history, os.environ))
    for kind, path in (("tests", args.tests_out), ("releases", args.releases_out)):
        if path:
            write_json_atomic(path, selection.report(kind), compact=True)
    if not (args.tests_out or args.releases_out):
        print(json.dumps({"tests": selection.report("tests"), "releases": selection.report("releases")}, indent=2))
    return 0


def _cmd_explain(args):
    from releasekit.selection.bazelquery import Bazel
    from releasekit.selection.collect import Collector
    from releasekit.selection.explain import explain

    workspace = os.path.abspath(args.workspace)
    collector = Collector(workspace, bazel=Bazel(workspace, command=args.bazel))
    try:
        print("\n".join(explain(collector, args.base, args.head, args.label)))
    finally:
        collector.close()
    return 0


def _run(args, tests, releases, settings):
    """dispatch, ci and pr: run the selection and print its table; the exit code."""
    from releasekit.running.progress import Progress
    from releasekit.running.whole_run import run_selection

    code, lines = run_selection(settings, tests, releases, Progress(sys.stdout))
    print("\n".join(lines))
    return code


def _run_settings(args, cost, build_only=False):
    """Every option and releasekit.yaml checked once, before anything runs. cost: the run's core.usage.RunCost,
    begun when the command began."""
    from releasekit.running.whole_run import RunSettings

    settings = RunSettings.from_arguments(args, os.environ, build_only)
    settings.cost = cost
    return settings


def _cmd_dispatch(args):
    from releasekit.core.usage import RunCost
    from releasekit.selection.selection_file import load_labels

    cost = RunCost(args.workspace)  # before anything is read: the run's CPU is counted from here
    tests = load_labels(args.tests, "tests") if args.tests else None
    releases = load_labels(args.releases, "releases") if args.releases else []
    return _run(args, tests, releases, _run_settings(args, cost))


def _cmd_ci(args):
    return _collect_and_run(args, args.head)


def _cmd_pr(args):
    return _collect_and_run(args, "WORKTREE", build_only=True)


def _import_what_runs_need():
    try:
        import releasekit.insight.ci_runs  # noqa: F401  (the HTTP stack, for the run history)
        import releasekit.running.whole_run  # noqa: F401
        import releasekit.running.progress  # noqa: F401
    except ImportError:
        pass  # the run imports them again, and says what is missing


def _collect_and_run(args, head, build_only=False):
    from releasekit.core.usage import RunCost

    cost = RunCost(args.workspace)  # the Bazel servers as they are before collect's first query
    settings = _run_settings(args, cost, build_only)
    # Imported while collect waits for Bazel's answer, not between it and the tests.
    threading.Thread(target=_import_what_runs_need, name="imports", daemon=True).start()
    stopping = []  # the base revision's server stops while the tests run
    try:
        selection = _collect(args, head, stopping, cost, carry=None if build_only else settings.carry_over)
        return _run(args, [t.label for t in selection.tests], [t.label for t in selection.releases], settings)
    finally:
        for thread in stopping:
            thread.join()


def _cmd_pipeline(args):
    from releasekit.running.pipeline import render

    print(render(args.format, args.shards, args.base, args.head, args.releasekit, args.install), end="")
    return 0


def _cmd_config(args):
    require_runtime_packages()
    from releasekit.core import config as config_module

    config = config_module.load_config(args.config)
    print("config: {}".format(config.source))
    for channel, destinations in sorted(config.channels.items()):
        for kind, destination in sorted(destinations.items()):
            print("  {}.{}: {}{}".format(channel, kind, destination.text, " (insecure)" if destination.insecure else ""))
    return 0


def _cmd_insight(args):
    from releasekit.core.config import load_config_if_present
    from releasekit.insight.ci_runs import history_settings
    from releasekit.insight.report import write_insight

    environ = dict(os.environ, BUILD_WORKSPACE_DIRECTORY=os.getcwd())
    settings = history_settings(args.history, load_config_if_present(args.config, environ))
    print("\n".join(write_insight(settings, args.since, args.until, args.compare_at, args.out, args.json, os.environ,
                                   args.charts)))
    return 0


def _cmd_deployed(args):
    require_runtime_packages()
    from releasekit.core.config import load_config
    from releasekit.core.http import RetryPolicy
    from releasekit.publishing.deployed import deployed

    config, policy = load_config(args.config), RetryPolicy.from_environment()
    lines, complete = deployed(args.label, args.channel, args.version, config, policy, os.environ, args.source)
    print(redact("\n".join(lines)))
    return 0 if complete else 1


def _cmd_verify(args):
    from releasekit.publishing.verify import command
    print(redact("\n".join(command(args, os.environ))))
    return 0


def main(argv=None):
    """The process entry point (console script, `python -m releasekit`, releasekit_entry.py): the build actions
    the rules run go to actions.py; every other command is parsed here."""
    argv = sys.argv[1:] if argv is None else argv
    started = time.time()  # a CI run's wall time starts here, collect included
    from releasekit import actions

    if any(arg in actions.ACTIONS for arg in argv[:2]):
        return actions.main(argv)
    from releasekit.arguments import build_parser

    handlers = {name[len("_cmd_"):]: func for name, func in globals().items() if name.startswith("_cmd_")}
    return run_command(build_parser(handlers), argv, started=started)
