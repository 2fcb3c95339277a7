"""Files a CI release reads that its list of sources cannot name: those reached through toolchain resolution.

The rules' sources aspect follows attributes, and on Bazel 4.2 an aspect cannot follow a rule's resolved toolchains
(`ctx.toolchains[...]`; Bazel 7 adds `toolchains_aspects`). A glob in a toolchain of the repository can therefore take
an untracked file the list does not show. cquery's `deps()` does follow toolchains, but costs an analysis, so it runs
only in doubt: when the checkout has files git does not track (untracked or ignored) inside a package of the main
repository that the list does not name. A clean tree costs one `git ls-files`. What never is a main repository's
source is left out without asking Bazel: Bazel's convenience symlinks (`bazel-*`), directories in `.bazelignore`, and
paths in no package (no BUILD file in their directory or above it), and releasekit's own `releasekit-logs/` at the
root, which a persistent agent keeps.
"""

import logging
import os
import shlex
import subprocess

from releasekit.core import environment, process
from releasekit.core.errors import UncommittedInputsError

log = logging.getLogger(__name__)
CQUERY_TIMEOUT = 600
BUILD_FILES = ("BUILD.bazel", "BUILD")
OWN_OUTPUTS = (environment.DEFAULT_LOGS_DIRECTORY + "/",)  # what releasekit itself leaves at the workspace root


def unseen(listed, workspace, target, environ, git):
    """The untracked or ignored files of the main repository that target reads without its list naming them.
    git(args) runs git in the workspace."""
    candidates = _candidates(git(["ls-files", "-z", "--others", "--directory", "--no-empty-directory"]),
                             set(listed), workspace)
    if not candidates:
        return []
    log.info("%d files git does not track lie in packages of the repository; asking Bazel whether %s reads them",
             len(candidates), target)
    inputs = _cquery_sources(workspace, target, environ)
    found = set()
    for candidate in candidates:
        if candidate.endswith("/"):
            found.update(path for path in inputs if path.startswith(candidate))
        elif candidate in inputs:
            found.add(candidate)
    return sorted(found - set(listed))


def _candidates(listing, listed, workspace):
    ignored = _bazelignore(workspace)
    candidates = []
    for entry in (e for e in listing.split("\0") if e):
        top = entry.split("/", 1)[0]
        if top.startswith("bazel-") or entry in OWN_OUTPUTS or entry in listed or entry.rstrip("/") in ignored:
            continue
        if any(entry.startswith(directory + "/") for directory in ignored):
            continue
        if _in_package(workspace, entry):
            candidates.append(entry)
    return candidates


def _bazelignore(workspace):
    try:
        with open(os.path.join(workspace, ".bazelignore"), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return set()
    return {line.strip().strip("/") for line in lines if line.strip() and not line.startswith("#")}


def _in_package(workspace, entry):
    """Whether entry lies in a package: a BUILD file in its directory (itself, for a directory) or above it."""
    directory = entry.rstrip("/") if entry.endswith("/") else os.path.dirname(entry)
    while True:
        if any(os.path.isfile(os.path.join(workspace, directory, name)) for name in BUILD_FILES):
            return True
        if not directory:
            return False
        directory = os.path.dirname(directory)


def _cquery_sources(workspace, target, environ):
    """The workspace-relative paths of the main repository's source files in target's configured dependencies,
    toolchains included."""
    command = shlex.split(environment.BAZEL.get(environ) or "bazel") + [
        "cquery", "deps({})".format(target), "--output=label", "--noshow_progress"]
    missing = UncommittedInputsError("{} is not installed, so releasekit cannot tell whether the release reads "
                                     "files git does not track through a toolchain. Install Bazel or point {} at "
                                     "it.".format(command[0], environment.BAZEL))
    try:
        result = process.run(command, missing, cwd=workspace, timeout=CQUERY_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise UncommittedInputsError("bazel cquery of {} took longer than {} s".format(target, CQUERY_TIMEOUT)) \
            from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["?"]
        error = next((line for line in lines if line.startswith("ERROR")), lines[-1])
        raise UncommittedInputsError("bazel cquery of {} failed ({}), so releasekit cannot tell whether the release "
                                     "reads files git does not track through a toolchain".format(target, error))
    paths = set()
    for line in result.stdout.splitlines():
        label, _, configuration = line.strip().partition(" ")
        if configuration == "(null)" and label.startswith("//"):  # a source file of the main repository
            package, _, name = label[2:].partition(":")
            paths.add("{}/{}".format(package, name) if package else name)
    return paths
