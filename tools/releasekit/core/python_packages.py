"""The Python packages releasekit imports beyond the standard library: one table, by the module each provides.

The command line checks the required ones before a command runs and names the pip command that installs what is
missing; the pipelines `releasekit pipeline` writes install them all on an agent whose python3 lacks the required
ones. pyproject.toml's dependencies list them too (a test keeps the two in step).
"""

import importlib.util
import sys

from releasekit.core import environment
from releasekit.core.errors import UsageError

# module: package, for every command
REQUIRED = {"requests": "requests", "yaml": "PyYAML"}
# module: (package, what needs it); imported only when that is used
OPTIONAL = {"docker": ("docker", "credentials from a Docker config"), "boto3": ("boto3", "s3:// stores")}


def packages():
    """Every package, required first: what a CI agent installs."""
    return list(REQUIRED.values()) + [package for package, _ in OPTIONAL.values()]


def check_required():
    """UsageError naming the interpreter and the pip command when a required package is missing. Found, not
    imported: a release started by dispatch never loads PyYAML."""
    missing = [package for module, package in REQUIRED.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise UsageError(
            "The Python running releasekit ({0}) lacks {1}. Install {2} with `{0} -m pip install {3}`, or point {4} "
            "at an interpreter that has them (a virtual environment's python3).".format(
                sys.executable, ", ".join(missing), "it" if len(missing) == 1 else "them", " ".join(missing),
                environment.PYTHON))
