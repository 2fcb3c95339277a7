"""What both command lines share (the user commands in cli.py, the build actions in actions.py): logging with
secrets redacted, and turning every failure into one message and an exit code, never a traceback unless asked."""

import gc
import logging
import sys

from releasekit.core.errors import ReleasekitError
from releasekit.core.redact import redact

# Import names whose pip package is named otherwise.
_PIP_NAMES = {"yaml": "pyyaml", "kubernetes_validate": "kubernetes-validate", "ruamel": "ruamel.yaml",
              "re2": "google-re2", "celpy": "cel-python"}


def require_runtime_packages():
    """The user commands that publish or read releasekit.yaml need requests and PyYAML: say how to install them."""
    import importlib.util  # here: the build actions, which share this module, start without it

    from releasekit.core import environment

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


def run_command(parser, argv, started=None):
    """Parse argv, run the chosen command's func(args), and return its exit code. args.started: when the process
    began its command (seconds since the epoch)."""
    args = parser.parse_args(argv)
    args.started = started
    configure_logging(args.verbose)
    try:
        return _guarded(args)
    finally:
        # The process ends next. Freezing skips the interpreter's last full garbage collection, which
        # frees nothing exit would not and, with the HTTP stack loaded, costs a release ~25 ms of CPU.
        gc.freeze()


def _guarded(args):
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
        print("releasekit: unexpected {}: {}. Rerun with --verbose for details.".format(
            type(error).__name__, redact(str(error))), file=sys.stderr)
        return 1
