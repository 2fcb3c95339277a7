"""The releasekit command line. It parses arguments, calls one library function, and prints what it returns."""

import argparse
import importlib.util
import json
import os
import sys

from releasekit import __version__
from releasekit.commandline import run_command
from releasekit.core import environment
from releasekit.core.errors import ReleasekitError
from releasekit.core.redact import redact

BAZEL_HELP = "the Bazel command (default: {}, then bazel)".format(environment.BAZEL)


def _require_runtime_packages():
    missing = []
    for module, package in (("requests", "requests"), ("yaml", "PyYAML")):
        # Found, not imported: a release started by dispatch never needs PyYAML loaded.
        if importlib.util.find_spec(module) is None:
            missing.append(package)
    if missing:
        raise ReleasekitError(
            "The Python running releasekit ({}) lacks {}. Install them with `{} -m pip install {}`, or point "
            "{} at an interpreter that has them.".format(
                sys.executable, ", ".join(missing), sys.executable, " ".join(missing), environment.PYTHON))


def _cmd_publish(args):
    _require_runtime_packages()
    from releasekit.core.startup import signal_started
    from releasekit.publishing.runner import PublishOptions, publish, summary_line

    signal_started(os.environ)
    runfiles = args.runfiles or os.environ.get("RUNFILES_DIR") or os.getcwd()
    dry_run = args.dry_run or environment.DRY_RUN.is_true(os.environ)
    record = publish(args.manifest, PublishOptions(runfiles_dir=runfiles, config_path=args.config, dry_run=dry_run,
                                                   workers=args.workers))
    print(redact(summary_line(record)))
    return 0


def _collect(args, head):
    from releasekit.selection.bazelquery import Bazel
    from releasekit.selection.collect import Collector

    workspace = os.path.abspath(args.workspace)
    collector = Collector(workspace, bazel=Bazel(workspace, command=args.bazel))
    try:
        selection = collector.collect(args.base, head)
    finally:
        collector.close()
    for note in selection.notes:
        print("note: " + note)
    print("{} changed files: {} tests, {} releases selected ({} bazel queries)".format(
        len(selection.changed_files), len(selection.tests), len(selection.releases), selection.queries))
    return selection


def _cmd_collect(args):
    from releasekit.core.jsonio import write_json_atomic

    selection = _collect(args, args.head)
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


def _run(args, tests, releases, build_only=False, gate_releases_on_tests=False):
    """dispatch, ci and pr: run the selection and print its table; the exit code."""
    from releasekit.running.dispatch import DispatchOptions, RunSettings, read_quarantine, run_selection
    from releasekit.running.progress import Progress

    options = DispatchOptions(workers=args.workers, bazel_flags=[f for f in (args.bazel_flags or []) if f != "--"],
                              quarantine=read_quarantine(args.quarantine), flaky_test_attempts=args.flaky_test_attempts,
                              build_only=build_only, report_dir=args.logs)
    settings = RunSettings(args.workspace, args.bazel, options, args.shard, args.previous_report, args.report, args.junit)
    code, lines = run_selection(settings, tests, releases, Progress(sys.stdout), gate_releases_on_tests)
    print("\n".join(lines))
    return code


def _cmd_dispatch(args):
    from releasekit.selection.selection_file import load_labels

    tests = load_labels(args.tests, "tests") if args.tests else []
    releases = load_labels(args.releases, "releases") if args.releases else []
    return _run(args, tests, releases)


def _cmd_ci(args):
    selection = _collect(args, args.head)
    return _run(args, [t.label for t in selection.tests], [t.label for t in selection.releases],
                gate_releases_on_tests=True)


def _cmd_pr(args):
    selection = _collect(args, "WORKTREE")
    return _run(args, [t.label for t in selection.tests], [t.label for t in selection.releases], build_only=True)


def _cmd_pipeline(args):
    from releasekit.running.pipeline import render

    print(render(args.format, args.shards, args.base, args.head, args.releasekit, args.install), end="")
    return 0


def _cmd_config(args):
    _require_runtime_packages()
    from releasekit.core import config as config_module

    config = config_module.load_config(args.config)
    print("config: {}".format(config.source))
    for channel, destinations in sorted(config.channels.items()):
        for kind, destination in sorted(destinations.items()):
            print("  {}.{}: {}{}".format(channel, kind, destination.text, " (insecure)" if destination.insecure else ""))
    return 0


def _cmd_deployed(args):
    _require_runtime_packages()
    from releasekit.core.config import load_config
    from releasekit.core.http import RetryPolicy
    from releasekit.publishing.deployed import deployed

    config, policy = load_config(args.config), RetryPolicy.from_environment()
    lines, complete = deployed(args.label, args.channel, args.version, config, policy, os.environ)
    print(redact("\n".join(lines)))
    return 0 if complete else 1


def build_parser():
    parser = argparse.ArgumentParser(prog="releasekit", description=__doc__)
    parser.add_argument("--version", action="version", version="releasekit " + __version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    # --verbose is accepted after the command too; SUPPRESS keeps a subcommand from resetting it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    def command(name, func, help_text):
        parsed = commands.add_parser(name, parents=[common], help=help_text)
        parsed.set_defaults(func=func)
        return parsed

    publish = command("publish", _cmd_publish, "publish one release (what a release target runs)")
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

    def run_arguments(parsed):
        parsed.add_argument("--workers", type=int, default=4, help="release executables run at once (default 4)")
        parsed.add_argument("--report", help="JSON report (default: <logs>/report.json)")
        parsed.add_argument("--junit", help="JUnit XML (default: <logs>/junit.xml)")
        parsed.add_argument("--logs", help="directory for logs and build events (default: <workspace>/releasekit-logs)")
        parsed.add_argument("--quarantine", help="file of test labels that run but cannot fail the build")
        parsed.add_argument("--flaky-test-attempts", type=int, help="passed to bazel test as --flaky_test_attempts")
        parsed.add_argument("--shard", help="K/N: run only this deterministic, balanced share")
        parsed.add_argument("--previous-report", help="a report whose durations balance the shards")
        parsed.add_argument("bazel_flags", nargs=argparse.REMAINDER, help="after --: flags for bazel test and build")

    collect = command("collect", _cmd_collect, "select the tests and releases a change affects")
    selection_arguments(collect)
    collect.add_argument("--tests-out", help="write the selected tests here (JSON)")
    collect.add_argument("--releases-out", help="write the selected releases here (JSON)")

    explain = command("explain", _cmd_explain, "say why a target is selected, or why not")
    explain.add_argument("label")
    selection_arguments(explain)

    dispatch = command("dispatch", _cmd_dispatch, "run selected tests and releases in parallel")
    dispatch.add_argument("--tests", help="tests JSON written by collect")
    dispatch.add_argument("--releases", help="releases JSON written by collect")
    workspace_arguments(dispatch)
    run_arguments(dispatch)

    ci = command("ci", _cmd_ci, "collect, test, then publish the affected CI releases")
    selection_arguments(ci)
    run_arguments(ci)

    pr = command("pr", _cmd_pr, "collect against the working tree, test, build releases; publish nothing")
    selection_arguments(pr, head=False)
    run_arguments(pr)

    pipeline = command("pipeline", _cmd_pipeline, "emit a sharded pipeline for Buildkite or GitHub Actions")
    pipeline.add_argument("--format", required=True, choices=["buildkite", "github-actions"])
    pipeline.add_argument("--shards", type=int, default=4)
    pipeline.add_argument("--base", default="$BASE_COMMIT", help="the base revision the steps collect from")
    pipeline.add_argument("--head", default="$HEAD_COMMIT", help="the head revision")
    pipeline.add_argument("--releasekit", default="releasekit", help="how the steps call releasekit")
    pipeline.add_argument("--install", default="python3 -m pip install releasekit",
                          help="the command that installs releasekit on a fresh agent")

    deployed = command("deployed", _cmd_deployed, "what a CD system reads for a deploy release, and if it is all there")
    deployed.add_argument("label", help="the deploy_release, //package:name")
    deployed.add_argument("--channel", default="ci", choices=["ci", "dev"])
    deployed.add_argument("--version", default="latest", help="a version, or latest (what the pointer names)")
    deployed.add_argument("--config", help="releasekit.yaml to read the destinations from")

    config = command("config", _cmd_config, "check releasekit.yaml and show its destinations")
    config.add_argument("--config", help="releasekit.yaml to check")
    return parser


def main(argv=None):
    """The process entry point (console script, `python -m releasekit`, releasekit_entry.py): the build actions
    the rules run go to actions.py; every other command is parsed here."""
    argv = sys.argv[1:] if argv is None else argv
    from releasekit import actions

    if any(arg in actions.ACTIONS for arg in argv[:2]):
        return actions.main(argv)
    return run_command(build_parser(), argv)
