"""releasekit dispatch: run the tests and releases selection files name, in parallel."""

from releasekit.commands.options import gate_options, run_options, workspace_options

NAME = "dispatch"
HELP = "run selected tests and releases in parallel"


def add_arguments(parser):
    parser.add_argument("--tests", help="tests JSON written by collect")
    parser.add_argument("--releases", help="releases JSON written by collect")
    workspace_options(parser)
    gate_options(parser)
    run_options(parser)


def run(args):
    from releasekit.commands.runs import run_selection, run_settings
    from releasekit.core.usage import RunCost
    from releasekit.selection.selection_file import load_labels

    cost = RunCost(args.workspace)  # before anything is read: the run's CPU is counted from here
    tests = load_labels(args.tests, "tests") if args.tests else None
    releases = load_labels(args.releases, "releases") if args.releases else []
    return run_selection(run_settings(args, cost), tests, releases)
