"""The git side of change selection: revisions, changed files, and a checkout of the base."""

import os
import shutil

from releasekit.core import process
from releasekit.core.errors import GitError

WORKTREE = "WORKTREE"


GITLINK = "160000"  # a submodule's entry in a tree
_ABSENT = "000000"  # the mode of a side a file does not exist on
SUBMODULE_UNLISTED = "G"  # the status of a submodule whose files at the two commits git cannot list here


class Change:
    """One changed file, workspace-relative. old_path is set for renames and copies."""

    __slots__ = ("status", "path", "old_path")

    def __init__(self, status, path, old_path=None):
        self.status = status  # A, M, D, R, T (type or mode change), C, or SUBMODULE_UNLISTED
        self.path, self.old_path = path, old_path

    def __eq__(self, other):
        return isinstance(other, Change) and (self.status, self.path, self.old_path) == (other.status, other.path,
                                                                                         other.old_path)

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


def _raw_diff(directory, *args):
    """[(old mode, new mode, old object, new object, Change)] of `git diff --raw` in a repository directory."""
    fields = _run(directory, "diff", "--raw", "-z", "-M", "--no-ext-diff", "--no-abbrev", *args).stdout.split("\0")
    entries, index = [], 0
    while index < len(fields) and fields[index]:
        old_mode, new_mode, old_object, new_object, status = fields[index].lstrip(":").split(" ")
        status = status[0]
        if status in "RC":
            change = Change(status, fields[index + 2], fields[index + 1])
            index += 3
        else:
            change = Change(status, fields[index + 1])
            index += 2
        entries.append((old_mode, new_mode, old_object, new_object, change))
    return entries


def _run(workspace, *args, check=True):
    """git in a directory; or, for a git directory kept without its working tree (a submodule git keeps in
    .git/modules), workspace may be ("--git-dir", path)."""
    place = ["--git-dir=" + workspace[1], "--work-tree=" + workspace[1]] if isinstance(workspace, tuple) else \
        ["-C", workspace]
    result = process.run(["git", *place, *args], GitError("git is not installed; install git to select changes."))
    if check and result.returncode != 0:
        raise GitError(
            "git {} failed in {}: {}".format(" ".join(args), workspace,
                                             (result.stderr.strip().splitlines() or ["?"])[0])
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
        status = process.start(
            ["git", "-C", self.workspace, "status", "--porcelain", "--untracked-files=no", "--", "."],
            GitError("git is not installed; install git to select changes."),
            stdout=process.PIPE, stderr=process.DEVNULL, text=True,
        )
        return lambda: bool(status.communicate()[0].strip())

    def changes(self, base, head):
        """Files changed between base and head (a commit, or WORKTREE), relative to the workspace. A submodule that
        changed stands for the files that changed in it (it is a directory of the workspace to Bazel)."""
        args = [base] + ([head] if head != WORKTREE else []) + ["--", "."]
        changes = []
        for old_mode, new_mode, old_commit, new_commit, change in _raw_diff(self.workspace, "--relative", *args):
            if GITLINK not in (old_mode, new_mode):
                changes.append(change)
                continue
            if new_mode == GITLINK and set(new_commit) == {"0"}:  # the working tree's submodule: its checkout
                checkout = os.path.join(self.workspace, change.path)
                new_commit = _run(checkout, "rev-parse", "HEAD", check=False).stdout.strip()
            changes += self._submodule_changes(base, change, old_mode, new_mode, old_commit, new_commit)
        if head == WORKTREE:
            untracked = _run(self.workspace, "ls-files", "-z", "--others", "--exclude-standard", "--", ".").stdout
            changes += [Change("A", path) for path in untracked.split("\0") if path]
        return changes

    def _submodule_changes(self, base, change, old_mode, new_mode, old_commit, new_commit):
        """The changes inside a submodule between its two commits, as workspace paths; or one SUBMODULE_UNLISTED."""
        old_path = change.old_path or change.path
        before = self._submodule_files(base, old_path, old_commit) if old_mode == GITLINK else []
        after = self._submodule_files(None, change.path, new_commit) if new_mode == GITLINK else []
        if before is None or after is None:
            return [Change(SUBMODULE_UNLISTED, change.path)]
        if old_mode == new_mode == GITLINK and old_path == change.path:
            directory = self._submodule_repository(base, change.path)
            try:
                inner = _raw_diff(directory, old_commit, new_commit) if directory else None
            except GitError:  # a commit this clone of the submodule does not hold
                inner = None
            if inner is None or any(GITLINK in entry[:2] for entry in inner):
                return [Change(SUBMODULE_UNLISTED, change.path)]  # nested submodules are not followed
            return [Change(c.status, os.path.join(change.path, c.path),
                           c.old_path and os.path.join(change.path, c.old_path)) for *_, c in inner]
        # Added, deleted, moved, or a file turned into a submodule (or back): every file leaves and joins.
        changes = [Change("D", os.path.join(old_path, p)) for p in before]
        changes += [Change("A", os.path.join(change.path, p)) for p in after]
        if old_mode not in (GITLINK, _ABSENT):
            changes.append(Change("D", old_path))
        if new_mode not in (GITLINK, _ABSENT):
            changes.append(Change("A", change.path))
        return changes

    def _submodule_repository(self, base, path):
        """A git directory holding the submodule at path: its checkout in the working tree, else the one git keeps for
        it (.git/modules/<name>, named in base's .gitmodules); or None."""
        checkout = os.path.join(self.workspace, path)
        top = ""
        if os.path.isdir(checkout):
            top = _run(checkout, "rev-parse", "--show-toplevel", check=False).stdout.strip()
        if top and os.path.realpath(top) == os.path.realpath(checkout):
            return checkout
        names = _run(self.root, "config", "--blob", "{}:.gitmodules".format(base), "--get-regexp",
                     r"^submodule\..*\.path$",
                     check=False).stdout.splitlines() if base else []
        full_path = os.path.join(self.prefix, path)
        for line in names:
            key, _, value = line.partition(" ")
            if value.strip() == full_path:
                name = key[len("submodule."):-len(".path")]
                kept = _run(self.root, "rev-parse", "--git-path", "modules/" + name).stdout
                kept = os.path.join(self.root, kept.strip())
                return ("--git-dir", kept) if os.path.isdir(kept) else None
        return None

    def _submodule_files(self, base, path, commit):
        """The files of a submodule's commit, relative to it, or None when no repository here holds the commit."""
        directory = self._submodule_repository(base, path)
        if directory is None:
            return None
        listed = _run(directory, "ls-tree", "-r", "--name-only", "-z", commit, check=False)
        return [p for p in listed.stdout.split("\0") if p] if listed.returncode == 0 else None

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

    def files_matching(self, *patterns):
        """Files in the working tree matching pathspec globs, relative to the workspace (tracked or not)."""
        listed = _run(self.workspace, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
                      *patterns).stdout
        return sorted({path for path in listed.split("\0") if path})

    def tree_listing(self, revision):
        """Every path of the workspace at a revision, the files of its submodules' commits too (where git has them)."""
        paths = set()
        for mode, object_id, path in self.tree_entries(revision):
            if mode == GITLINK:
                paths.update(os.path.join(path, p) for p in self._submodule_files(revision, path, object_id) or ())
            else:
                paths.add(path)
        return paths

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

    def read_worktree(self, path):
        return self.read_at(WORKTREE, path)

    def untracked_paths(self, submodule=None):
        """What git does not track in the workspace (or in a checked-out submodule of it, relative to the submodule),
        ignored files included; an untracked directory as one path."""
        directory = os.path.join(self.workspace, submodule) if submodule else self.workspace
        listed = _run(directory, "ls-files", "-z", "--others", "--directory", "--", ".").stdout
        return [path for path in listed.split("\0") if path]

    def flagged_paths(self):
        """Tracked files git marks skip-worktree (a sparse checkout leaves them out) or assume-unchanged (git does not
        look at them): in the working tree they need not be what the tree holds."""
        listed = _run(self.workspace, "ls-files", "-v", "-z", "--", ".").stdout.split("\0")
        return [entry[2:] for entry in listed if entry and entry[0] != "H"]

    def submodule_state(self, path, commit):
        """(its state for the graph key, None), or (None, why it does not agree with the tree): a submodule of the
        workspace either not checked out, or checked out at the commit the tree names, without tracked changes."""
        full = os.path.join(self.workspace, path)
        if not os.path.isdir(full) or not os.listdir(full):
            return "not checked out", None
        top = _run(full, "rev-parse", "--show-toplevel", check=False).stdout.strip()
        if os.path.realpath(top) != os.path.realpath(full):
            return None, "submodule {} holds files but is not a checkout of its own".format(path)
        checked_out = _run(full, "rev-parse", "HEAD", check=False).stdout.strip()
        if checked_out != commit:
            return None, "submodule {} is checked out at {}, not at the commit the tree names ({})".format(
                path, checked_out[:12] or "no commit", commit[:12])
        if _run(full, "status", "--porcelain", "--untracked-files=no").stdout.strip():
            return None, "submodule {} has uncommitted changes".format(path)
        if any(line.startswith("160000") for line in _run(full, "ls-files", "-s").stdout.splitlines()):
            return None, "submodule {} has submodules of its own".format(path)
        return "checked out", None

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
