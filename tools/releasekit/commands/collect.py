"""releasekit collect: the tests and releases a commit range affects, as selection files (or JSON on stdout)."""

import json
import os

from releasekit.commands.options import graph_options, selection_options

NAME = "collect"
HELP = "select the tests and releases a change affects"


def add_arguments(parser):
    selection_options(parser, everything=True)
    graph_options(parser)
    parser.add_argument("--tests-out", help="write the selected tests here (JSON)")
    parser.add_argument("--releases-out", help="write the selected releases here (JSON)")
    parser.add_argument("--previous-report", metavar="FILE|DIR", help="the previous run's reports (every shard's): "
                        "the tests that did not pass and the releases that did not publish there are selected again")
    parser.add_argument("--history", metavar="URL", help="without --previous-report: select again what the last run "
                        "of this branch in this run history left undone")


def run(args):
    from releasekit.core.jsonio import write_json_atomic
    from releasekit.core.run_context import SELECTING, RunContext

    loaded = []

    def context():  # read by the target graphs' thread, while collect reads the change; once
        if not loaded:
            loaded.append(RunContext.load(SELECTING, workspace=args.workspace))
        return loaded[0]

    def carry(selection, bazel):  # what the branch's last run left undone (running/carry_over.py)
        from releasekit.insight.ci_runs import run_history
        from releasekit.running.carry_over import carry_into

        history = run_history(context(), args.history) if args.history else None
        return carry_into(selection, bazel, args.previous_report, history)

    selection = select(args, args.head, context, carry=carry)
    for kind, path in (("tests", args.tests_out), ("releases", args.releases_out)):
        if path:
            write_json_atomic(path, selection.report(kind), compact=True)
    if not (args.tests_out or args.releases_out):
        print(json.dumps({"tests": selection.report("tests"), "releases": selection.report("releases")}, indent=2))
    return 0


def select(args, head, context, stopping=None, cost=None, carry=None):
    """The selection, its notes and counts printed. context(): the command's RunContext (the target graphs' store),
    asked for only when the selection may read recorded target graphs. stopping: a list to put the thread stopping
    the base revision's Bazel server in, for a command that goes on working meanwhile (and joins it); without it, the
    server is stopped before returning. cost: the run's core.usage.RunCost, which counts that server's CPU and says
    whether the agent keeps its servers between runs. carry(selection, bazel): adds what the last run left undone."""
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

        explicit = getattr(args, "target_graphs", None)
        graphs = Prepared(lambda: context().target_graphs(explicit), bazel.command,
                          lambda destination, policy: context().open_store(destination, policy),
                          workspace=workspace, record=_may_record_graphs(args, os.environ))
    collector = Collector(workspace, bazel=bazel, graphs=graphs)
    try:
        selection = collector.collect(args.base, head, everything=getattr(args, "everything", None))
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
