"""The commands: one module each, with NAME, HELP, add_arguments(parser) and run(args) -> exit code; run() calls one
library function and prints what it returns. Build actions (what the rules run at build time) are commands too, with
BUILD_ACTION = True. cli.py lists them all; this package builds the one parser from such modules and runs a command
through the one error handling path: logging with secrets redacted, one message and an exit code per failure, a
traceback only with --verbose. The fork server runs `publish` through it too, without the command line's list.
"""

import argparse
import gc
import logging
import sys

from releasekit import __version__
from releasekit.core.errors import ReleasekitError
from releasekit.core.redact import redact

# Import names whose pip package is named otherwise.
_PIP_NAMES = {"yaml": "pyyaml", "kubernetes_validate": "kubernetes-validate", "ruamel": "ruamel.yaml",
              "re2": "google-re2", "celpy": "cel-python"}


def build_parser(modules, argv=None):
    """The parser of these command modules, in this order. argv: when it names a command, only that command's
    arguments are declared (the others are listed): a build action or a release does not pay for the rest."""
    parser = argparse.ArgumentParser(prog="releasekit", description="Select, run and publish what a change "
                                     "affects; see how CI runs. Build actions are what the rules run.")
    parser.add_argument("--version", action="version", version="releasekit " + __version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    # --verbose is accepted after the command too; SUPPRESS keeps a subcommand from resetting it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    chosen = next((arg for arg in argv or () if not arg.startswith("-")), None)
    named = chosen in {module.NAME for module in modules}
    for module in modules:
        help_text = ("build action: " if getattr(module, "BUILD_ACTION", False) else "") + module.HELP
        command = commands.add_parser(module.NAME, parents=[common], help=help_text, description=module.__doc__)
        if not named or module.NAME == chosen:
            module.add_arguments(command)
        command.set_defaults(run=module.run, build_action=getattr(module, "BUILD_ACTION", False))
    return parser


def run_command(parser, argv, started=None):
    """Parse argv, run the chosen command, and return its exit code. args.started: when the process began its
    command (seconds since the epoch)."""
    args = parser.parse_args(argv)  # argparse's own errors and --help exit here, with status 2 and 0
    args.started = started
    configure_logging(args.verbose)
    try:
        return _guarded(args)
    finally:
        # The process ends next. Freezing skips the interpreter's last full garbage collection, which
        # frees nothing exit would not and, with the HTTP stack loaded, costs a release ~25 ms of CPU.
        gc.freeze()


class _RedactingFormatter(logging.Formatter):
    def format(self, record):
        return redact(super().format(record))


def configure_logging(verbose):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("releasekit: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def _guarded(args):
    try:
        if not args.build_action:  # a user command names the pip command for a missing package first
            from releasekit.core.python_packages import check_required

            check_required()
        return args.run(args)
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
        print("releasekit: unexpected {}: {}. Rerun with --verbose for details.".format(
            type(error).__name__, redact(str(error))), file=sys.stderr)
        return 1
