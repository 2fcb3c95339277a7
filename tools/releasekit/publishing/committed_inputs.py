"""Only committed files in a CI release.

The rules list the main repository's source files a release is built from (rules/private/sources.bzl, named by the
manifest's `sources`), globbed files included. When the release runs, one `git ls-tree` of the commit being released
lists what it holds in their directories. A file the commit does not have (untracked, ignored, or added but never
committed) refuses a CI release, naming it: its version would be published with content no commit can rebuild. A dev
release publishes, and its record names those files (`uncommitted_inputs`).

The dirty-tree setting covers these files as it covers uncommitted changes to tracked ones: a CI job that changes
files on purpose sets environment.ALLOW_DIRTY, and its record still names them.
"""

import logging
import os

from releasekit.core import process
from releasekit.core.environment import ALLOW_DIRTY
from releasekit.core.errors import UncommittedInputsError, UsageError
from releasekit.core.versioning import source_workspace

log = logging.getLogger(__name__)
NAMED = 10  # files a message names; the rest are counted
_SPECS_BUDGET = 100_000  # characters of pathspecs on one git command line


def check(manifest, runfiles_dir, version, environ):
    """The source files of the release that the commit being released does not have ([] when it has them all, None
    when the manifest lists no sources). A CI release with such files is refused (UncommittedInputsError)."""
    if not manifest.sources:
        return None
    workspace = source_workspace(environ)
    try:
        missing = files_not_in_commit(_listed(runfiles_dir, manifest.sources), version.commit, workspace)
    except UncommittedInputsError as error:
        if manifest.channel == "ci":
            raise UncommittedInputsError("{}: {}".format(manifest.target, error)) from None
        log.warning("%s: %s", manifest.target, error)
        return None
    if missing and manifest.channel == "ci" and not ALLOW_DIRTY.is_true(environ):
        raise UncommittedInputsError(
            "{}: its inputs include {} that commit {} does not have (untracked or ignored by git): {}. A CI release "
            "publishes only what a commit holds, so nothing was published. Commit them, or delete them so that no "
            "glob takes them (or set {}=true if the CI job makes them on purpose).".format(
                manifest.target, _files(len(missing)), version.short_commit, named(missing), ALLOW_DIRTY))
    return missing


def named(paths):
    """The first few paths, and how many more."""
    shown = ", ".join(paths[:NAMED])
    return shown + (" and {} more".format(len(paths) - NAMED) if len(paths) > NAMED else "")


def _files(count):
    return "1 file" if count == 1 else "{} files".format(count)


def _listed(runfiles_dir, rlocation):
    path = os.path.join(runfiles_dir, rlocation)
    try:
        with open(path, encoding="utf-8") as handle:
            return [line for line in handle.read().splitlines() if line]
    except OSError as error:
        raise UsageError("Cannot read the release's list of source files {}: {}. Rebuild the release target.".format(
            path, error.strerror)) from None


def files_not_in_commit(paths, commit, workspace):
    """The workspace-relative paths that commit does not hold: one `git ls-tree` of the directories they lie in (a
    tree lookup per path would cost a repository with many sources seconds), and one more below a source directory
    given as one input."""
    if not paths:
        return []
    # Each file's directory, or the file itself at the workspace's root; past a command line's worth, the whole tree.
    specs = sorted({os.path.dirname(path) or path for path in paths})
    if sum(len(spec) + 1 for spec in specs) > _SPECS_BUDGET:
        specs = ["."]
    listed = _git(workspace, ["--literal-pathspecs", "ls-tree", "-r", "-t", "--name-only", "-z", commit, "--", *specs])
    held = set(listed.split("\0"))
    missing = [path for path in paths if path not in held]
    directories = [path for path in paths if path in held and os.path.isdir(os.path.join(workspace, path))]
    if directories:  # what git does not track below a source directory
        others = _git(workspace, ["--literal-pathspecs", "ls-files", "-z", "--others", "--", *directories])
        missing += [path for path in others.split("\0") if path]
    return sorted(set(missing))


def _git(workspace, args):
    missing = UncommittedInputsError("git is not installed, so releasekit cannot tell whether the release's inputs "
                                     "are committed. Install git.")
    result = process.run(["git", "-C", workspace, *args], missing)
    if result.returncode != 0:
        raise UncommittedInputsError("git {} failed in {} ({}), so releasekit cannot tell whether the release's inputs "
                                     "are committed. Run the release in a git checkout of its commit.".format(
                                         args[1], workspace, (result.stderr.strip().splitlines() or ["?"])[-1]))
    return result.stdout
