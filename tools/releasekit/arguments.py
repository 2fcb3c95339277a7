"""The arguments of every user command (cli.py runs them)."""

import argparse

from releasekit import __version__
from releasekit.core import environment
from releasekit.core.run_policy import GATE_MODES

BAZEL_HELP = "the Bazel command (default: {}, then bazel)".format(environment.BAZEL)


def build_parser(handlers):
    """The parser of every user command; handlers maps each command to the function that runs it."""
    parser = argparse.ArgumentParser(prog="releasekit", description="Select, run and publish what a change affects; see how CI runs.")
    parser.add_argument("--version", action="version", version="releasekit " + __version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    # --verbose is accepted after the command too; SUPPRESS keeps a subcommand from resetting it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    def command(name, help_text):
        parsed = commands.add_parser(name, parents=[common], help=help_text)
        parsed.set_defaults(func=handlers[name])
        return parsed

    publish = command("publish", "publish one release (what a release target runs)")
    publish.add_argument("--manifest", required=True, help="the release manifest the target's build wrote")
    publish.add_argument("--runfiles", help="runfiles directory the manifest's paths are relative to")
    publish.add_argument("--config", help="releasekit.yaml to use (default: {}, then the workspace root)".format(
        environment.CONFIG))
    publish.add_argument("--dry-run", action="store_true", help="check everything, publish nothing")
    publish.add_argument("--workers", type=int, default=4, help="blobs uploaded at once (default 4)")

    def workspace_arguments(parsed):
        parsed.add_argument("--workspace", default=".", help="the Bazel workspace (default: the current directory)")
        parsed.add_argument("--bazel", help=BAZEL_HELP)

    def selection_arguments(parsed, head=True):
        parsed.add_argument("--base", required=True, help="the revision the change starts from")
        if head:
            parsed.add_argument("--head", default="HEAD", help="the revision it ends at, or WORKTREE (default HEAD)")
        workspace_arguments(parsed)

    def graph_arguments(parsed):
        parsed.add_argument("--target-graphs", metavar="URL",
                            help="read and record target graphs here, so that a change to source files alone needs "
                                 "no query (directory, http(s) or s3 URL; default: releasekit.yaml's target_graphs)")
        parsed.add_argument("--record-target-graphs", action="store_true",
                            help="this run is on the main line: record the target graph it loads (never in a run the "
                                 "CI engine says builds a pull request)")

    def run_arguments(parsed):
        parsed.add_argument("--workers", type=int, default=4, help="release executables run at once (default 4)")
        parsed.add_argument("--report", help="JSON report (default: <logs>/report.json)")
        parsed.add_argument("--junit", help="JUnit XML (default: <logs>/junit.xml)")
        parsed.add_argument("--logs", help="directory for logs and build events (default: <workspace>/releasekit-logs)")
        parsed.add_argument("--quarantine", action="append", metavar="FILE|auto",
                            help="tests that run but cannot fail the build: a file of labels, or auto (from the "
                                 "history); both may be given, and the file wins")
        parsed.add_argument("--history", metavar="URL", help="append this run's record to the run history here "
                            "(directory, http(s) or s3 URL; default: releasekit.yaml's history)")
        parsed.add_argument("--profile", action="store_true",
                            help="record Bazel's JSON trace profile: the critical path and slowest actions")
        parsed.add_argument("--flaky-test-attempts", type=int, help="passed to bazel test as --flaky_test_attempts")
        parsed.add_argument("--shard", help="K/N: run only this deterministic, balanced share")
        parsed.add_argument("--previous-report", metavar="FILE|DIR", help="the previous run's reports: their "
                            "durations balance the shards, and ci selects again what they left undone")
        parsed.add_argument("bazel_flags", nargs=argparse.REMAINDER, help="after --: flags for bazel test and build")

    collect = command("collect", "select the tests and releases a change affects")
    selection_arguments(collect)
    graph_arguments(collect)
    collect.add_argument("--tests-out", help="write the selected tests here (JSON)")
    collect.add_argument("--releases-out", help="write the selected releases here (JSON)")
    collect.add_argument("--previous-report", metavar="FILE|DIR", help="the previous run's reports (every shard's): "
                         "the tests that did not pass and the releases that did not publish there are selected again")
    collect.add_argument("--history", metavar="URL", help="without --previous-report: select again what the last run "
                         "of this branch in this run history left undone")

    explain = command("explain", "say why a target is selected, or why not")
    explain.add_argument("label")
    selection_arguments(explain)

    def gate_arguments(parsed):
        parsed.add_argument("--gate", choices=sorted(GATE_MODES), help="all: a release needs every test of the run "
                            "to pass; deps: it needs every test that shares a dependency with it to pass (default: "
                            "releasekit.yaml's gate, then all)")
        parsed.add_argument("--test-reports", metavar="DIR", help="the reports of the runs that tested this commit "
                            "(every test shard's): releases publish only when they say the tests passed")
        parsed.add_argument("--tests-selection", metavar="FILE", help="with --test-reports: the tests selection "
                            "(collect's tests.json) they must have run, each test of it")

    dispatch = command("dispatch", "run selected tests and releases in parallel")
    dispatch.add_argument("--tests", help="tests JSON written by collect")
    dispatch.add_argument("--releases", help="releases JSON written by collect")
    workspace_arguments(dispatch)
    gate_arguments(dispatch)
    run_arguments(dispatch)

    ci = command("ci", "collect, test, then publish the affected CI releases that passed the gate")
    selection_arguments(ci)
    graph_arguments(ci)
    gate_arguments(ci)
    run_arguments(ci)

    pr = command("pr", "collect against the working tree, test, build releases; publish nothing")
    selection_arguments(pr, head=False)
    run_arguments(pr)

    pipeline = command("pipeline", "emit a sharded pipeline for Buildkite or GitHub Actions")
    pipeline.add_argument("--format", required=True, choices=["buildkite", "github-actions"])
    pipeline.add_argument("--shards", type=int, default=4)
    pipeline.add_argument("--base", default="$BASE_COMMIT", help="the base revision the steps collect from")
    pipeline.add_argument("--head", default="$HEAD_COMMIT", help="the head revision")
    pipeline.add_argument("--releasekit", default="releasekit", help="how the steps call releasekit")
    pipeline.add_argument("--install", default="python3 -m pip install releasekit",
                          help="the command that installs releasekit on a fresh agent")

    deployed = command("deployed", "what a CD system reads for a deploy release, and if it is all there")
    deployed.add_argument("label", help="the deploy_release, //package:name")
    deployed.add_argument("--channel", default="ci", choices=["ci", "dev"])
    deployed.add_argument("--version", default="latest", help="a version, or latest (what the pointer names)")
    deployed.add_argument("--config", help="releasekit.yaml to read the destinations from")

    deployed.add_argument("--from", dest="source", default="store", choices=["store", "registry"],
                          help="read the deploy store (default) or the channel's deploy_registry (the OCI artifact)")

    verify = command("verify", "check a release's signed provenance before rolling it out: exit 0, or why not")
    verify.add_argument("release", help="an image reference (host/repository:tag or @sha256:...), a Maven coordinate "
                        "group:artifact:version, or a deploy or file release's label //package:name")
    verify.add_argument("--key", required=True, help="the public key (PEM) CI releases are signed with")
    verify.add_argument("--repository", required=True, help="the repository releases must come from (its URL)")
    verify.add_argument("--branch", required=True, help="the branch releases must come from")
    verify.add_argument("--channel", default="ci", choices=["ci", "dev"], help="whose stores a label is read from")
    verify.add_argument("--version", default="latest", help="a label's version, or latest (what the pointer names)")
    verify.add_argument("--from", dest="source", default="store", choices=["store", "registry"],
                        help="a deploy release's YAML from its store (default) or the channel's deploy_registry")
    verify.add_argument("--config", help="releasekit.yaml to read the destinations from")

    insight = command("insight", "P50/P90 of CI runs, slowest targets, flaky tests, lead time: from the history")
    insight.add_argument("--history", metavar="URL", help="the run history (default: releasekit.yaml's history)")
    insight.add_argument("--out", help="write the HTML report here")
    insight.add_argument("--json", help="write the figures as JSON here")
    insight.add_argument("--charts", metavar="DIR", help="write each chart as its own SVG file here")
    insight.add_argument("--since", help="first day of the window, YYYY-MM-DD (default: 30 days ago)")
    insight.add_argument("--until", help="day after the window, YYYY-MM-DD (default: tomorrow)")
    insight.add_argument("--compare-at", metavar="DATE|COMMIT",
                         help="split the window here for a before/after comparison: a day or a commit")
    insight.add_argument("--config", help="releasekit.yaml to read the history and quarantine thresholds from")

    config = command("config", "check releasekit.yaml and show its destinations")
    config.add_argument("--config", help="releasekit.yaml to check")
    return parser
