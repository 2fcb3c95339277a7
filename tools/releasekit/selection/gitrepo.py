"""The git side of change selection: revisions, changed files, and a checkout of the base."""

import os
import shutil
import subprocess

from releasekit.core import process
from releasekit.core.errors import GitError

WORKTREE = "WORKTREE"


class Change:
    """One changed file, workspace-relative. old_path is set for renames and copies."""

    __slots__ = ("status", "path", "old_path")

    def __init__(self, status, path, old_path=None):
        self.status = status  # A, M, D, R, T (type or mode change), C
        self.path, self.old_path = path, old_path

    def __eq__(self, other):
        return isinstance(other, Change) and (self.status, self.path, self.old_path) == (other.status, other.path, other.old_path)

    def __repr__(self):
        return "Change({!r}, {!r}, {!r})".format(self.status, self.path, self.old_path)

    @property
    def paths_at_head(self):
        return [] if self.status == "D" else [self.path]

    @property
    def paths_at_base(self):
        if self.status == "A" or self.status == "C":
            return []
        return [self.old_path or self.path]


def _run(workspace, *args, check=True):
    result = process.run(["git", "-C", workspace, *args], GitError("git is not installed; install git to select changes."))
    if check and result.returncode != 0:
        raise GitError(
            "git {} failed in {}: {}".format(" ".join(args), workspace, (result.stderr.strip().splitlines() or ["?"])[0])
        )
    return result


class Repository:
    """The git repository holding a Bazel workspace (which may be a subdirectory of it)."""

    def __init__(self, workspace):
        self.workspace = os.path.abspath(workspace)
        if not os.path.isdir(self.workspace):
            raise GitError("The workspace {} does not exist; pass --workspace DIR.".format(self.workspace))
        result = _run(self.workspace, "rev-parse", "--show-toplevel", "--show-prefix", check=False)
        if result.returncode != 0:
            raise GitError(
                "{} is not inside a git repository. Run collect in a git checkout of the monorepo, or pass "
                "--workspace pointing at one.".format(self.workspace)
            )
        self.root, self.prefix = (result.stdout.splitlines() + [""])[:2]

    def resolve(self, revision, what):
        result = _run(self.workspace, "rev-parse", "--verify", "--quiet", revision + "^{commit}", check=False)
        if result.returncode != 0:
            raise GitError(
                "{} '{}' is not a commit in {}. Check the name, or fetch it first (shallow CI clones may need "
                "`git fetch --deepen` or `fetch-depth: 0`).".format(what, revision, self.root)
            )
        return result.stdout.strip()

    def resolve_all(self, revisions):
        """Several (revision, what) pairs in one git call; the error names the first that is not a commit."""
        result = _run(self.workspace, "rev-parse", *[revision + "^{commit}" for revision, _ in revisions], "--",
                      check=False)
        commits = [line for line in result.stdout.split() if line != "--"]
        if result.returncode != 0 or len(commits) != len(revisions):
            for revision, what in revisions:
                self.resolve(revision, what)
        return commits

    def head_commit(self):
        return _run(self.workspace, "rev-parse", "HEAD").stdout.strip()

    def start_tracked_changes_check(self):
        """Starts `git status` in the background; call the result to learn whether tracked files changed."""
        process = subprocess.Popen(
            ["git", "-C", self.workspace, "status", "--porcelain", "--untracked-files=no", "--", "."],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        return lambda: bool(process.communicate()[0].strip())

    def changes(self, base, head):
        """Files changed between base and head (a commit, or WORKTREE), relative to the workspace."""
        args = ["diff", "--name-status", "-z", "--relative", "-M", "--no-ext-diff", base]
        if head != WORKTREE:
            args.append(head)
        args += ["--", "."]
        fields = _run(self.workspace, *args).stdout.split("\0")
        changes, index = [], 0
        while index < len(fields) and fields[index]:
            status = fields[index][0]
            if status in "RC":
                changes.append(Change(status, fields[index + 2], fields[index + 1]))
                index += 3
            else:
                changes.append(Change(status, fields[index + 1]))
                index += 2
        if head == WORKTREE:
            untracked = _run(self.workspace, "ls-files", "-z", "--others", "--exclude-standard", "--", ".").stdout
            changes += [Change("A", path) for path in untracked.split("\0") if path]
        return changes

    def read_at(self, revision, path):
        """A file's text at a revision (the working tree for WORKTREE), or None where it does not exist."""
        if revision == WORKTREE:
            try:
                with open(os.path.join(self.workspace, path), encoding="utf-8", errors="replace") as handle:
                    return handle.read()
            except OSError:
                return None
        result = _run(self.workspace, "show", "{}:./{}".format(revision, path), check=False)
        return result.stdout if result.returncode == 0 else None

    def files_matching(self, pattern):
        """Files in the working tree matching a pathspec glob, relative to the workspace (tracked or not)."""
        listed = _run(self.workspace, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", pattern).stdout
        return sorted({path for path in listed.split("\0") if path})

    def tree_listing(self, revision):
        listed = _run(self.workspace, "ls-tree", "-r", "--name-only", "-z", "--full-tree", revision).stdout.split("\0")
        return {p[len(self.prefix):] for p in listed if p and p.startswith(self.prefix)}

    def tree_entries(self, revision):
        """(mode, object id, path) of every file, link and submodule of the workspace at a revision."""
        listed = _run(self.workspace, "ls-tree", "-r", "-z", revision, "--", ".").stdout.split("\0")
        entries = []
        for line in listed:
            if line:
                meta, _, path = line.partition("\t")
                mode, _, object_id = meta.split(" ")
                entries.append((mode, object_id, path))
        return entries

    def untracked_paths(self):
        """What git does not track in the workspace, ignored files included (an untracked directory as one path)."""
        listed = _run(self.workspace, "ls-files", "-z", "--others", "--directory", "--", ".").stdout
        return [path for path in listed.split("\0") if path]

    def checkout_of(self, revision, directory):
        """A detached worktree of the revision at directory, reused between runs; returns its workspace path."""
        if os.path.exists(os.path.join(directory, ".git")):
            try:
                _run(directory, "checkout", "-q", "--detach", "--force", revision)
                _run(directory, "clean", "-q", "-fdx", "-e", "bazel-*")
                return os.path.join(directory, self.prefix)
            except GitError:
                # The worktree of a checkout that is gone: a persistent agent cloned its workspace again at the
                # same path. The leftover is made anew, as if it had never been.
                pass
        if os.path.lexists(directory):
            shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(os.path.dirname(directory), exist_ok=True)
        _run(self.root, "worktree", "prune")
        _run(self.root, "worktree", "add", "-q", "--detach", "--force", directory, revision)
        return os.path.join(directory, self.prefix)
