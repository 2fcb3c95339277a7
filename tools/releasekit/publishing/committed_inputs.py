"""Only committed files in a CI release.

The rules list the main repository's source files a release is built from (rules/private/sources.bzl, named by the
manifest's `sources`), globbed files included. When the release runs, one `git ls-tree` of the commit being released
lists what it holds in their directories. A file the commit does not have (untracked, ignored, or added but never
committed) refuses a CI release, naming it: its version would be published with content no commit can rebuild. A dev
release publishes, and its record names those files (`uncommitted_inputs`).

Files of a local repository inside the checkout are checked as its own (external_sources.py); flagged files
(assume-unchanged, skip-worktree) are compared with the commit's blobs, symlinks must point at committed files inside
the repository, and files inside a git submodule are checked against the submodule's commit.

The dirty-tree setting covers these files as it covers uncommitted changes to tracked ones: a CI job that changes
files on purpose sets environment.ALLOW_DIRTY, and its record still names them.
"""

import logging
import os

from releasekit.core import hidden_changes, process
from releasekit.core.environment import ALLOW_DIRTY
from releasekit.core.errors import UncommittedInputsError, UsageError
from releasekit.core.versioning import source_workspace
from releasekit.publishing import external_sources, toolchain_inputs

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
        main, external = external_sources.split(_listed(runfiles_dir, manifest.sources))
        paths = main + (external_sources.in_checkout(external, os.path.join(runfiles_dir, manifest.sources), workspace,
                                                     _git(workspace, ["rev-parse", "--show-toplevel"]).strip())
                        if external else [])
        found = Uncommitted.of(paths, version.commit, workspace)
        if manifest.channel == "ci" and not found.all() and not ALLOW_DIRTY.is_true(environ):  # toolchains, in doubt
            found.toolchain = toolchain_inputs.unseen(paths, workspace, manifest.target, environ,
                                                      lambda args: _git(workspace, args))
    except UncommittedInputsError as error:
        if manifest.channel == "ci":
            raise UncommittedInputsError("{}: {}".format(manifest.target, error)) from None
        log.warning("%s: %s", manifest.target, error)
        return None
    missing = found.all()
    if missing and manifest.channel == "ci" and not ALLOW_DIRTY.is_true(environ):
        raise UncommittedInputsError(
            "{}: its inputs include {} that commit {} does not have {}. A CI release publishes only what a commit "
            "holds, so nothing was published. {} (or set {}=true if the CI job makes them on purpose).".format(
                manifest.target, _files(len(missing)), version.short_commit, found.said(), found.fix(), ALLOW_DIRTY))
    return missing


class Uncommitted:
    """The inputs a commit does not hold, by why: untracked or ignored, changed where git is told not to look
    (assume-unchanged, skip-worktree), symlinks whose target lies outside the repository or is not committed."""

    def __init__(self, untracked, hidden, links):
        self.untracked, self.hidden, self.links = untracked, hidden, links
        self.toolchain = []  # untracked or ignored, read through a toolchain (toolchain_inputs.py)

    @classmethod
    def of(cls, paths, commit, workspace):
        untracked, entries = _not_in_commit(paths, commit, workspace)
        held = [path for path in paths if entries.get(path) == "blob"]
        hidden = hidden_changes.differing(workspace, commit, sorted(
            set(hidden_changes.flagged(workspace, _specs(held), _MISSING, UncommittedInputsError)) & set(held)),
            _MISSING, UncommittedInputsError) if held else []
        return cls(untracked, hidden, linked_outside(held, commit, workspace))

    def all(self):
        return sorted(set(self.untracked) | set(self.hidden) | {link for link, _ in self.links} | set(self.toolchain))

    def said(self):
        parts = []
        if self.untracked:
            parts.append("(untracked or ignored by git): " + named(self.untracked))
        if self.toolchain:
            parts.append("(untracked or ignored by git, read through a toolchain): " + named(self.toolchain))
        if self.hidden:
            parts.append("(changed where git is told not to look, assume-unchanged or skip-worktree, so git status "
                         "does not show it): " + named(self.hidden))
        if self.links:
            parts.append("(symlinks to what no commit of the repository holds): " + named(
                ["{} -> {}".format(link, why) for link, why in self.links]))
        return "; ".join(parts)

    def fix(self):
        fixes = []
        if self.untracked or self.toolchain:
            fixes.append("Commit them, or delete them so that no glob takes them")
        if self.hidden:
            fixes.append("Run `git update-index --no-assume-unchanged --no-skip-worktree <file>` and commit or "
                         "restore the change")
        if self.links:
            fixes.append("Commit the target inside the repository in place of the symlink")
        return "; ".join(fixes)


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


def _specs(paths):
    """Each file's directory, or the file itself at the workspace's root; past a command line's worth, the whole
    tree."""
    specs = sorted({os.path.dirname(path) or path for path in paths})
    return ["."] if sum(len(spec) + 1 for spec in specs) > _SPECS_BUDGET else specs


def _not_in_commit(paths, commit, workspace):
    """(the paths commit does not hold, {path: git object type} of what it holds in their directories): one `git
    ls-tree` of the directories they lie in (a tree lookup per path would cost a repository with many sources
    seconds), one more below a source directory given as one input, and, for paths inside a git submodule, the
    same against the submodule's commit in its checkout."""
    if not paths:
        return [], {}
    listed = _git(workspace, ["--literal-pathspecs", "ls-tree", "-r", "-t", "-z", commit, "--", *_specs(paths)])
    entries = {}
    for entry in listed.split("\0"):
        meta, _, path = entry.partition("\t")
        if len(meta.split()) == 3:
            entries[path] = meta.split()[1]
    missing = [path for path in paths if path not in entries]
    directories = [path for path in paths if entries.get(path) == "tree" and os.path.isdir(os.path.join(workspace,
                                                                                                         path))]
    if directories:  # what git does not track below a source directory
        others = _git(workspace, ["--literal-pathspecs", "ls-files", "-z", "--others", "--", *directories])
        missing += [path for path in others.split("\0") if path]
    return sorted(set(_outside_submodules(missing, commit, workspace))), entries


def _outside_submodules(missing, commit, workspace):
    """Of paths the commit does not hold, those that no submodule of it holds either: a path inside a submodule is
    checked against the submodule's commit, which `git status` already compares with its checkout."""
    ancestors = sorted({parent for path in missing for parent in _parents(path)})
    if not ancestors:
        return missing
    listed = _git(workspace, ["--literal-pathspecs", "ls-tree", "-z", commit, "--", *ancestors])
    submodules = {}
    for entry in listed.split("\0"):
        meta, _, path = entry.partition("\t")
        if meta.split()[1:2] == ["commit"]:
            submodules[path] = meta.split()[2]
    if not submodules:
        return missing
    remaining, inside = [], {}
    for path in missing:
        holder = next((sub for sub in submodules if path.startswith(sub + "/")), None)
        if holder is None:
            remaining.append(path)
        else:
            inside.setdefault(holder, []).append(path[len(holder) + 1:])
    for sub, relative in sorted(inside.items()):
        untracked, _ = _not_in_commit(relative, submodules[sub], os.path.join(workspace, sub))
        remaining += [sub + "/" + path for path in untracked]
    return remaining


def _parents(path):
    parts = path.split("/")[:-1]
    return ["/".join(parts[:depth]) for depth in range(1, len(parts) + 1)]


def linked_outside(paths, commit, workspace):
    """[(symlink, why)] of the paths that are symlinks to a file outside the repository, or inside it but not as the
    commit holds it. One lstat per path; git runs only when there are symlinks."""
    links = [path for path in paths if os.path.islink(os.path.join(workspace, path))]
    if not links:
        return []
    top = os.path.realpath(_git(workspace, ["rev-parse", "--show-toplevel"]).strip())
    found, inside = [], {}
    for link in links:
        target = os.path.realpath(os.path.join(workspace, link))
        relative = os.path.relpath(target, top)
        if relative == os.pardir or relative.startswith(os.pardir + os.sep) or not os.path.isfile(target):
            found.append((link, target))
        else:
            inside[relative] = link
    changed = hidden_changes.differing(top, commit, sorted(inside), _MISSING, UncommittedInputsError)
    return sorted(found + [(inside[relative], relative + ", which commit {} does not hold as it is".format(
        commit[:12])) for relative in changed])


_MISSING = UncommittedInputsError("git is not installed, so releasekit cannot tell whether the release's inputs are "
                                  "committed. Install git.")


def _git(workspace, args):
    result = process.run(["git", "-C", workspace, *args], _MISSING)
    if result.returncode != 0:
        raise UncommittedInputsError("git {} failed in {} ({}), so releasekit cannot tell whether the release's inputs "
                                     "are committed. Run the release in a git checkout of its commit.".format(
                                         args[1], workspace, (result.stderr.strip().splitlines() or ["?"])[-1]))
    return result.stdout
