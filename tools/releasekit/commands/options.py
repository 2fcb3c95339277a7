"""Options several commands share, and add_option: a flag that an environment variable also sets names it in its
help, from the one table (core/environment.py). The flag wins over the variable, the variable over the file."""

import argparse

from releasekit.core import environment


def add_option(parser, *flags, variable=None, **kwargs):
    """parser.add_argument(*flags, **kwargs); variable: the environment.Variable the flag overrides, named in the
    help with what applies without either."""
    if variable is not None:
        kwargs["help"] = "{} (environment: {}; default: {})".format(kwargs.get("help", ""), variable.name,
                                                                   variable.default.replace("`", ""))
    return parser.add_argument(*flags, **kwargs)


def config_option(parser, help_text="releasekit.yaml to use"):
    add_option(parser, "--config", variable=environment.CONFIG, help=help_text)


def workspace_options(parser):
    parser.add_argument("--workspace", default=".", help="the Bazel workspace (default: the current directory)")
    add_option(parser, "--bazel", variable=environment.BAZEL, help="the Bazel command")


def selection_options(parser, head=True, everything=False):
    """--base (or, with everything, --everything instead), --head, and the workspace."""
    if everything:
        base = parser.add_mutually_exclusive_group(required=True)
        base.add_argument("--base", help="the revision the change starts from")
        base.add_argument("--everything", metavar="WHY", help="select every test and release, and say why (a first "
                          "push: no base commit)")
    else:
        parser.add_argument("--base", required=True, help="the revision the change starts from")
    if head:
        parser.add_argument("--head", default="HEAD", help="the revision it ends at, or WORKTREE (default HEAD)")
    workspace_options(parser)


def store_urls():
    """How --help shows a store URL: from the registry of schemes, imported only for the commands that take one."""
    from releasekit.core.stores.schemes import examples

    return examples()


def graph_options(parser):
    parser.add_argument("--target-graphs", metavar="URL",
                        help="read and record target graphs here, so that a change to source files alone needs no "
                             "query ({}; default: releasekit.yaml's target_graphs)".format(store_urls()))
    parser.add_argument("--record-target-graphs", action="store_true",
                        help="this run is on the main line: record the target graph it loads (never in a run the CI "
                             "engine says builds a pull request)")


def gate_options(parser):
    from releasekit.core.run_policy import GATE_MODES

    parser.add_argument("--gate", choices=sorted(GATE_MODES), help="all: a release needs every test of the run to "
                        "pass; deps: it needs every test that shares a dependency with it to pass (default: "
                        "releasekit.yaml's gate, then all)")
    parser.add_argument("--test-reports", metavar="DIR", help="the reports of the runs that tested this commit "
                        "(every test shard's): releases publish only when they say the tests passed")
    parser.add_argument("--tests-selection", metavar="FILE", help="with --test-reports: the tests selection "
                        "(collect's tests.json) they must have run, each test of it")


def run_options(parser):
    parser.add_argument("--workers", type=int, default=4, help="release executables run at once (default 4)")
    parser.add_argument("--report", help="JSON report (default: <logs>/report.json)")
    parser.add_argument("--junit", help="JUnit XML (default: <logs>/junit.xml)")
    parser.add_argument("--logs", help="directory for logs and build events (default: <workspace>/releasekit-logs)")
    parser.add_argument("--quarantine", action="append", metavar="FILE|auto",
                        help="tests that run but cannot fail the build: a file of labels, or auto (from the history); "
                             "both may be given, and the file wins")
    parser.add_argument("--history", metavar="URL", help="append this run's record to the run history here "
                        "({}; default: releasekit.yaml's history)".format(store_urls()))
    parser.add_argument("--profile", action="store_true",
                        help="record Bazel's JSON trace profile: the critical path and slowest actions")
    parser.add_argument("--flaky-test-attempts", type=int, help="passed to bazel test as --flaky_test_attempts")
    parser.add_argument("--shard", help="K/N: run only this deterministic, balanced share")
    parser.add_argument("--previous-report", metavar="FILE|DIR", help="the previous run's reports: their durations "
                        "balance the shards, and ci selects again what they left undone")
    parser.add_argument("bazel_flags", nargs=argparse.REMAINDER, help="after --: flags for bazel test and build")
