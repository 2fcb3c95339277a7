"""releasekit ci: collect a commit range, test it, then publish the affected CI releases that passed the gate."""

from releasekit.commands.options import gate_options, graph_options, run_options, selection_options

NAME = "ci"
HELP = "collect, test, then publish the affected CI releases that passed the gate"


def add_arguments(parser):
    selection_options(parser, everything=True)
    graph_options(parser)
    gate_options(parser)
    run_options(parser)


def run(args):
    from releasekit.commands.runs import collect_and_run

    return collect_and_run(args, args.head)
