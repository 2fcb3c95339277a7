"""The releasekit command line. It only parses arguments and reports; the work is in the library."""

import argparse
import gc
import importlib.util
import json
import logging
import os
import sys

from releasekit import __version__
from releasekit.core.errors import ReleasekitError, UsageError
from releasekit.core.redact import redact
from releasekit.core import environment


class _RedactingFormatter(logging.Formatter):
    def format(self, record):
        return redact(super().format(record))


def _configure_logging(verbose):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("releasekit: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


BAZEL_HELP = "the Bazel command (default: {}, then bazel)".format(environment.BAZEL)


def _require_runtime_packages():
    missing = []
    for module, package in (("urllib3", "urllib3"), ("yaml", "PyYAML")):
        # Found, not imported: a release started by dispatch never needs PyYAML loaded.
        if importlib.util.find_spec(module) is None:
            missing.append(package)
    if missing:
        raise ReleasekitError(
            "The Python running releasekit ({}) lacks {}. Install them with `{} -m pip install {}`, or point "
            "{} at an interpreter that has them.".format(
                sys.executable, ", ".join(missing), sys.executable, " ".join(missing), environment.PYTHON
            )
        )


def _cmd_publish(args):
    _require_runtime_packages()
    from releasekit.publishing.runner import PublishOptions, publish, summary_line
    from releasekit.core.startup import signal_started

    signal_started(os.environ)

    runfiles = args.runfiles or os.environ.get("RUNFILES_DIR") or os.getcwd()
    dry_run = args.dry_run or environment.DRY_RUN.is_true(os.environ)
    record = publish(
        args.manifest,
        PublishOptions(runfiles_dir=runfiles, config_path=args.config, dry_run=dry_run, workers=args.workers),
    )
    print(redact(summary_line(record)))
    return 0


def _collector(args):
    from releasekit.selection.bazelquery import Bazel
    from releasekit.selection.collect import Collector

    workspace = os.path.abspath(args.workspace)
    return Collector(workspace, bazel=Bazel(workspace, command=args.bazel))


def _cmd_collect(args):
    from releasekit.core.jsonio import write_json_atomic

    collector = _collector(args)
    try:
        selection = collector.collect(args.base, args.head)
    finally:
        collector.close()
    for kind, path in (("tests", args.tests_out), ("releases", args.releases_out)):
        if path:
            write_json_atomic(path, selection.report(kind), compact=True)
    for note in selection.notes:
        print("note: " + note)
    print("{} changed files: {} tests, {} releases selected ({} bazel queries)".format(
        len(selection.changed_files), len(selection.tests), len(selection.releases), selection.queries))
    if not (args.tests_out or args.releases_out):
        print(json.dumps({"tests": selection.report("tests"), "releases": selection.report("releases")}, indent=2))
    return 0


def _cmd_explain(args):
    from releasekit.selection.bazelquery import quote

    collector = _collector(args)
    try:
        selection = collector.collect(args.base, args.head)
        label = args.label if args.label.startswith("//") else "//" + args.label.lstrip("/")
        entry = next((t for t in selection.tests + selection.releases if t.label == label), None)
        if entry is None:
            print("{} is not selected: {}.".format(label, _why_not_selected(collector, selection, label)))
            return 0
        print("{} ({}) is selected because of: {}".format(label, entry.kind, ", ".join(entry.reasons) or "-"))
        if selection.everything:
            print("  " + "; ".join(selection.notes))
            return 0
        for reason in entry.reasons:
            package = collector._package_at_head(reason)
            if package is None or reason.endswith(".bzl"):
                continue
            source = "//{}:{}".format(package, reason[len(package) + 1:] if package else reason)
            if os.path.basename(reason) in ("BUILD", "BUILD.bazel"):
                print("  {} changed the definition of a target it depends on".format(reason))
                continue
            try:
                path = collector.bazel.query_labels("somepath({}, {})".format(quote(label), quote(source)))
            except ReleasekitError:
                path = []
            if path:
                print("  path: " + " -> ".join(reversed(path)))
                break
        return 0
    finally:
        collector.close()


def _why_not_selected(collector, selection, label):
    """Why a label is in neither selection: it does not exist, is not a test or CI release, is kept out, or is unaffected."""
    from releasekit.selection.bazelquery import quote
    from releasekit.selection.collect import EXCLUDING_TAGS, RELEASE_KIND

    try:
        targets = collector.bazel.query_targets(quote(label))
    except ReleasekitError as error:
        raise UsageError("{} is not a target of {} at head, so it cannot be selected ({}). Check the label with "
                         "`bazel query {}`.".format(label, collector.workspace, error, label)) from None
    target = targets.get(label)
    if target is None or not target.is_rule:
        return "it is a {}, not a test or a CI release".format(target.kind if target else "target of another kind")
    kept_out = sorted(EXCLUDING_TAGS & set(target.tags))
    if kept_out:
        return "it is tagged {}, which keeps it out of CI".format(" and ".join(kept_out))
    if not target.is_test and target.kind not in (RELEASE_KIND, "test_suite"):
        return "it is a {}, neither a test nor a CI release ({})".format(target.kind, RELEASE_KIND)
    if selection.everything:
        return "it is not reached by the change"
    return "none of the {} changed files is in its dependencies{}".format(
        len(selection.changed_files), "" if selection.changed_files else " (no file changed)")


def _read_quarantine(path):
    if not path:
        return set()
    with open(path, encoding="utf-8") as handle:
        return {line.strip() for line in handle if line.strip() and not line.startswith("#")}


def _run_selection(args, tests, releases, build_only=False, gate_releases_on_tests=False):
    """Shared by dispatch, ci and pr: shard, run tests, then releases; reports; the exit code."""
    from releasekit.running import dispatch
    from releasekit.selection.bazelquery import Bazel

    if args.shard:
        index, count = dispatch.parse_shard(args.shard)
        durations = dispatch.durations_from_report(args.previous_report)
        tests = dispatch.shard(tests, index, count, durations)
        releases = dispatch.shard(releases, index, count, durations)
        print("shard {}: {} tests, {} releases".format(args.shard, len(tests), len(releases)))
    workspace = os.path.abspath(args.workspace)
    bazel_flags = [f for f in (args.bazel_flags or []) if f != "--"]
    options = dispatch.DispatchOptions(workers=args.workers, bazel_flags=bazel_flags,
                                       quarantine=_read_quarantine(args.quarantine),
                                       flaky_test_attempts=args.flaky_test_attempts, build_only=build_only,
                                       report_dir=args.logs)
    dispatcher = dispatch.Dispatcher(workspace, bazel=Bazel(workspace, command=args.bazel), options=options)
    outcomes = dispatcher.run_tests(tests)
    if gate_releases_on_tests:
        failing_packages = {o.label.split(":")[0] for o in outcomes if o.failed and not o.quarantined}
        gated = [r for r in releases if r.split(":")[0] in failing_packages]
        releases = [r for r in releases if r not in gated]
        for label in gated:
            outcomes.append(dispatch.Outcome(label, "release", "skipped", reason="a test in its package failed"))
    outcomes += dispatcher.run_releases(releases)
    dispatcher.progress.close()
    print(dispatch.summary_table(outcomes))
    report = args.report or os.path.join(dispatcher.report_dir, "report.json")
    dispatch.write_report(report, outcomes, {"shard": args.shard, "build_only": build_only})
    junit = args.junit or os.path.join(dispatcher.report_dir, "junit.xml")
    dispatch.write_junit(junit, outcomes)
    print("report: {}  junit: {}".format(report, junit))
    return dispatch.exit_code(outcomes)


def _cmd_dispatch(args):
    from releasekit.running.dispatch import load_selection

    tests = load_selection(args.tests, "tests") if args.tests else []
    releases = load_selection(args.releases, "releases") if args.releases else []
    return _run_selection(args, tests, releases)


def _collect_for(args, head):
    collector = _collector(args)
    try:
        selection = collector.collect(args.base, head)
    finally:
        collector.close()
    for note in selection.notes:
        print("note: " + note)
    print("{} changed files: {} tests, {} releases selected".format(
        len(selection.changed_files), len(selection.tests), len(selection.releases)))
    return [t.label for t in selection.tests], [t.label for t in selection.releases]


def _cmd_ci(args):
    tests, releases = _collect_for(args, args.head)
    return _run_selection(args, tests, releases, gate_releases_on_tests=True)


def _cmd_pr(args):
    tests, releases = _collect_for(args, "WORKTREE")
    return _run_selection(args, tests, releases, build_only=True)


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
            extra = " (insecure)" if destination.insecure else ""
            print("  {}.{}: {}{}".format(channel, kind, destination.text, extra))
    return 0


def _cmd_image_plan(args):
    from releasekit.publishing.image import build_plan
    from releasekit.core.jsonio import write_json_atomic

    if args.layers_out:
        os.makedirs(args.layers_out, exist_ok=True)  # a Bazel tree artifact: it exists even when empty
    plan = build_plan(args.image, source_path=args.image_rlocation, display="{} (attribute image)".format(args.label),
                      layers_dir=args.layers_out)
    write_json_atomic(args.out, plan)
    return 0


def _cmd_jar_check(args):
    import zipfile

    from releasekit.core.errors import UsageError
    from releasekit.core.jsonio import write_json_atomic

    checked = []
    for path in args.jar:
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as error:
            raise UsageError("{}: {} is not a readable jar ({}). Rebuild it.".format(args.label, os.path.basename(path), error)) from None
        checked.append({"jar": os.path.basename(path), "entries": len(names)})
    write_json_atomic(args.out, {"label": args.label, "jars": checked})
    return 0


def _cmd_deploy_check(args):
    from releasekit.publishing.deploy import check
    from releasekit.core.jsonio import write_json_atomic

    files = []
    for path, display in zip(args.manifest, args.display):
        with open(path, encoding="utf-8") as handle:
            files.append((display, handle.read()))
    placeholders = dict(item.split("=", 1) for item in args.placeholder)
    result = check(files, placeholders, args.platform, args.kubernetes_version, args.label, args.image_field)
    write_json_atomic(args.out, dict(result, label=args.label))
    return 0


def _cmd_image_layout(args):
    from releasekit.core.errors import UsageError
    from releasekit.publishing.layout_builder import build_layout

    try:
        with open(args.spec, encoding="utf-8") as handle:
            spec = json.load(handle)
    except (OSError, ValueError) as error:
        raise UsageError("Cannot read the image_layout spec {}: {}.".format(args.spec, error)) from None
    build_layout(
        args.out,
        files=spec.get("files", []),
        base_dir=spec.get("base"),
        entrypoint=spec.get("entrypoint"),
        cmd=spec.get("cmd"),
        env=spec.get("env"),
        labels=spec.get("labels"),
        workdir=spec.get("workdir"),
    )
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="releasekit", description=__doc__)
    parser.add_argument("--version", action="version", version="releasekit " + __version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    # --verbose is accepted after the command too; SUPPRESS keeps a subcommand from resetting it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    publish = commands.add_parser("publish", parents=[common], help="publish one release (what a release target runs)")
    publish.add_argument("--manifest", required=True, help="the release manifest the target's build wrote")
    publish.add_argument("--runfiles", help="runfiles directory the manifest's paths are relative to")
    publish.add_argument("--config", help="releasekit.yaml to use (default: {}, then the workspace root)".format(environment.CONFIG))
    publish.add_argument("--dry-run", action="store_true", help="check everything, publish nothing")
    publish.add_argument("--workers", type=int, default=4, help="blobs uploaded at once (default 4)")
    publish.set_defaults(func=_cmd_publish)

    def selection_arguments(command):
        command.add_argument("--base", required=True, help="the revision the change starts from")
        command.add_argument("--head", default="HEAD", help="the revision it ends at, or WORKTREE (default HEAD)")
        command.add_argument("--workspace", default=".", help="the Bazel workspace (default: the current directory)")
        command.add_argument("--bazel", help=BAZEL_HELP)

    collect = commands.add_parser("collect", parents=[common], help="select the tests and releases a change affects")
    selection_arguments(collect)
    collect.add_argument("--tests-out", help="write the selected tests here (JSON)")
    collect.add_argument("--releases-out", help="write the selected releases here (JSON)")
    collect.set_defaults(func=_cmd_collect)

    explain = commands.add_parser("explain", parents=[common], help="say why a target is selected, or why not")
    explain.add_argument("label")
    selection_arguments(explain)
    explain.set_defaults(func=_cmd_explain)

    def run_arguments(command):
        command.add_argument("--workers", type=int, default=4, help="release executables run at once (default 4)")
        command.add_argument("--report", help="JSON report (default: <logs>/report.json)")
        command.add_argument("--junit", help="JUnit XML (default: <logs>/junit.xml)")
        command.add_argument("--logs", help="directory for logs and build events (default: <workspace>/releasekit-logs)")
        command.add_argument("--quarantine", help="file of test labels that run but cannot fail the build")
        command.add_argument("--flaky-test-attempts", type=int, help="passed to bazel test as --flaky_test_attempts")
        command.add_argument("--shard", help="K/N: run only this deterministic, balanced share")
        command.add_argument("--previous-report", help="a report whose durations balance the shards")
        command.add_argument("bazel_flags", nargs=argparse.REMAINDER, help="after --: flags for bazel test and build")

    dispatch = commands.add_parser("dispatch", parents=[common], help="run selected tests and releases in parallel")
    dispatch.add_argument("--tests", help="tests JSON written by collect")
    dispatch.add_argument("--releases", help="releases JSON written by collect")
    dispatch.add_argument("--workspace", default=".", help="the Bazel workspace (default: the current directory)")
    dispatch.add_argument("--bazel", help=BAZEL_HELP)
    run_arguments(dispatch)
    dispatch.set_defaults(func=_cmd_dispatch)

    ci = commands.add_parser("ci", parents=[common], help="collect, test, then publish the affected CI releases")
    selection_arguments(ci)
    run_arguments(ci)
    ci.set_defaults(func=_cmd_ci)

    pr = commands.add_parser("pr", parents=[common], help="collect against the working tree, test, build releases; publish nothing")
    pr.add_argument("--base", required=True, help="the revision the pull request is based on")
    pr.add_argument("--workspace", default=".", help="the Bazel workspace (default: the current directory)")
    pr.add_argument("--bazel", help=BAZEL_HELP)
    run_arguments(pr)
    pr.set_defaults(func=_cmd_pr)

    pipeline = commands.add_parser("pipeline", parents=[common], help="emit a sharded pipeline for Buildkite or GitHub Actions")
    pipeline.add_argument("--format", required=True, choices=["buildkite", "github-actions"])
    pipeline.add_argument("--shards", type=int, default=4)
    pipeline.add_argument("--base", default="$BASE_COMMIT", help="the base revision the steps collect from")
    pipeline.add_argument("--head", default="$HEAD_COMMIT", help="the head revision")
    pipeline.add_argument("--releasekit", default="releasekit", help="how the steps call releasekit")
    pipeline.add_argument("--install", default="python3 -m pip install releasekit",
                          help="the command that installs releasekit on a fresh agent")
    pipeline.set_defaults(func=_cmd_pipeline)

    config = commands.add_parser("config", parents=[common], help="check releasekit.yaml and show its destinations")
    config.add_argument("--config", help="releasekit.yaml to check")
    config.set_defaults(func=_cmd_config)

    plan = commands.add_parser("image-plan", parents=[common], help="(build action) validate an image input and write its plan")
    plan.add_argument("--image", required=True)
    plan.add_argument("--image-rlocation", required=True)
    plan.add_argument("--layers-out", help="directory for a docker-save tarball's layers, compressed")
    plan.add_argument("--label", required=True)
    plan.add_argument("--out", required=True)
    plan.set_defaults(func=_cmd_image_plan)

    jar_check = commands.add_parser("jar-check", parents=[common], help="(build action) check that jars are readable zips")
    jar_check.add_argument("--jar", action="append", required=True)
    jar_check.add_argument("--label", required=True)
    jar_check.add_argument("--out", required=True)
    jar_check.set_defaults(func=_cmd_jar_check)

    deploy_check = commands.add_parser("deploy-check", parents=[common], help="(build action) check deploy YAML")
    deploy_check.add_argument("--manifest", action="append", required=True)
    deploy_check.add_argument("--display", action="append", required=True)
    deploy_check.add_argument("--placeholder", action="append", default=[], help="PLACEHOLDER=IMAGE_LABEL")
    deploy_check.add_argument("--platform", required=True)
    deploy_check.add_argument("--kubernetes-version", required=True)
    deploy_check.add_argument("--image-field", action="append", default=[], help="KIND:path/to/field of a custom kind")
    deploy_check.add_argument("--label", required=True)
    deploy_check.add_argument("--out", required=True)
    deploy_check.set_defaults(func=_cmd_deploy_check)

    layout = commands.add_parser("image-layout", parents=[common], help="(build action) assemble an OCI layout from files")
    layout.add_argument("--spec", required=True)
    layout.add_argument("--out", required=True)
    layout.set_defaults(func=_cmd_image_layout)
    return parser


def main(argv=None):
    """The process entry point (console script and releasekit_entry.py): run one command, return its exit code."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return _run(args)
    finally:
        # The process ends next. Freezing skips the interpreter's last full garbage collection, which
        # frees nothing exit would not and, with the HTTP stack loaded, costs a release ~25 ms of CPU.
        gc.freeze()


# Import names whose pip package is named otherwise.
_PIP_NAMES = {"yaml": "pyyaml", "kubernetes_validate": "kubernetes-validate", "ruamel": "ruamel.yaml"}


def _run(args):
    try:
        return args.func(args)
    except ReleasekitError as error:
        print("{}: {}".format(type(error).__name__, redact(str(error))), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("releasekit: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:  # e.g. a Bazel action's python3 without the deploy check's packages
        package = _PIP_NAMES.get((error.name or "").split(".")[0], error.name)
        print("releasekit: the Python package {} is not installed for {}. Install it with: {} -m pip install {}"
              .format(package, sys.executable, sys.executable, package), file=sys.stderr)
        return 2
    except Exception as error:  # the last line of defence: a message, never a traceback unless asked
        if args.verbose:
            raise
        print(
            "releasekit: unexpected {}: {}. Rerun with --verbose for details.".format(
                type(error).__name__, redact(str(error))
            ),
            file=sys.stderr,
        )
        return 1
