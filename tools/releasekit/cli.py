"""The releasekit command line. It only parses arguments and reports; the work is in the library."""

import argparse
import json
import logging
import os
import sys

from . import __version__
from .errors import ReleasekitError
from .redact import redact


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


def _require_runtime_packages():
    missing = []
    for module, package in (("requests", "requests"), ("yaml", "PyYAML")):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise ReleasekitError(
            "The Python running releasekit ({}) lacks {}. Install them with `{} -m pip install {}`, or point "
            "RELEASEKIT_PYTHON at an interpreter that has them.".format(
                sys.executable, ", ".join(missing), sys.executable, " ".join(missing)
            )
        )


def _cmd_publish(args):
    _require_runtime_packages()
    from .publish import PublishOptions, publish, summary_line

    runfiles = args.runfiles or os.environ.get("RUNFILES_DIR") or os.getcwd()
    dry_run = args.dry_run or os.environ.get("RELEASEKIT_DRY_RUN", "").lower() == "true"
    record = publish(
        args.manifest,
        PublishOptions(runfiles_dir=runfiles, config_path=args.config, dry_run=dry_run, workers=args.workers),
    )
    print(redact(summary_line(record)))
    return 0


def _cmd_config(args):
    _require_runtime_packages()
    from . import config as config_module

    config = config_module.load_config(args.config)
    print("config: {}".format(config.source))
    for channel, destinations in sorted(config.channels.items()):
        for kind, destination in sorted(destinations.items()):
            extra = " (insecure)" if destination.insecure else ""
            print("  {}.{}: {}{}".format(channel, kind, destination.text, extra))
    return 0


def _cmd_image_plan(args):
    from .image import build_plan
    from .reports import write_json_atomic

    plan = build_plan(args.image, source_path=args.image_rlocation, display="{} (attribute image)".format(args.label))
    write_json_atomic(args.out, plan)
    return 0


def _cmd_image_layout(args):
    from .layout_builder import build_layout

    with open(args.spec, encoding="utf-8") as handle:
        spec = json.load(handle)
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
    publish.add_argument("--config", help="releasekit.yaml to use (default: RELEASEKIT_CONFIG, then the workspace root)")
    publish.add_argument("--dry-run", action="store_true", help="check everything, publish nothing")
    publish.add_argument("--workers", type=int, default=4, help="blobs uploaded at once (default 4)")
    publish.set_defaults(func=_cmd_publish)

    config = commands.add_parser("config", parents=[common], help="check releasekit.yaml and show its destinations")
    config.add_argument("--config", help="releasekit.yaml to check")
    config.set_defaults(func=_cmd_config)

    plan = commands.add_parser("image-plan", parents=[common], help="(build action) validate an image input and write its plan")
    plan.add_argument("--image", required=True)
    plan.add_argument("--image-rlocation", required=True)
    plan.add_argument("--label", required=True)
    plan.add_argument("--out", required=True)
    plan.set_defaults(func=_cmd_image_plan)

    layout = commands.add_parser("image-layout", parents=[common], help="(build action) assemble an OCI layout from files")
    layout.add_argument("--spec", required=True)
    layout.add_argument("--out", required=True)
    layout.set_defaults(func=_cmd_image_layout)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.func(args)
    except ReleasekitError as error:
        print("{}: {}".format(type(error).__name__, redact(str(error))), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("releasekit: interrupted", file=sys.stderr)
        return 130
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
