"""releasekit insight: the figures and page of the CI runs in the run history."""

import os

from releasekit.commands.options import config_option, store_urls

NAME = "insight"
HELP = "P50/P90 of CI runs, slowest targets, flaky tests, lead time: from the history"


def add_arguments(parser):
    parser.add_argument("--history", metavar="URL", help="the run history ({}; default: releasekit.yaml's "
                        "history)".format(store_urls()))
    parser.add_argument("--out", help="write the HTML report here")
    parser.add_argument("--json", help="write the figures as JSON here")
    parser.add_argument("--charts", metavar="DIR", help="write each chart as its own SVG file here")
    parser.add_argument("--since", help="first day of the window, YYYY-MM-DD (default: 30 days ago)")
    parser.add_argument("--until", help="day after the window, YYYY-MM-DD (default: tomorrow)")
    parser.add_argument("--compare-at", metavar="DATE|COMMIT",
                        help="split the window here for a before/after comparison: a day or a commit")
    config_option(parser, "releasekit.yaml to read the history and quarantine thresholds from")


def run(args):
    from releasekit.core.run_context import RUNNING, RunContext
    from releasekit.insight.ci_runs import run_history
    from releasekit.insight.report import write_insight

    # It publishes nothing: the history and the thresholds are read, the channels not checked apart.
    context = RunContext.load(RUNNING, args.config, workspace=os.getcwd())
    print("\n".join(write_insight(run_history(context, args.history), args.since, args.until, args.compare_at,
                                  args.out, args.json, args.charts)))
    return 0
