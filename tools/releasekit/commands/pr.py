"""releasekit pr: collect against the working tree, test, and build the releases; publish nothing."""

from releasekit.commands.options import run_options, selection_options

NAME = "pr"
HELP = "collect against the working tree, test, build releases; publish nothing"


def add_arguments(parser):
    selection_options(parser, head=False)
    run_options(parser)


def run(args):
    from releasekit.commands.runs import collect_and_run

    return collect_and_run(args, "WORKTREE", build_only=True)
