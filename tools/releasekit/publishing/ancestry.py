"""Whether a commit descends from another, asked of git in the release's workspace: what decides if a pointer moves.

`git merge-base --is-ancestor` answers from the local history. A full clone has every ancestor of the commit being
released, so a recorded commit it lacks is not one of them. A shallow clone (CI checkouts often are) may lack the
history between the two commits: then the commit's history is deepened from the remote (`git fetch --deepen`, in
bounded steps), and the recorded commit is fetched too, so that "it descends from ours" can be seen as well. When
the answer is still unknown, the answer is UNKNOWN: the caller leaves its pointer and says so, and never guesses.

Fetches are serialised across the releases of a run (they share the repository and its shallow file).
"""

import contextlib
import fcntl
import logging
import os

from releasekit.core import process
from releasekit.core.errors import ReleasekitError

log = logging.getLogger(__name__)

SAME, FORWARD, BEHIND, DIVERGED, UNKNOWN = "same", "forward", "behind", "diverged", "unknown"
DEEPEN_STEPS = (100, 1000)  # commits of history fetched per step, at most their sum in all
REMOTE = "origin"
FETCH_TIMEOUT = 120


class Answer:
    """How `commit` relates to `recorded`, and why, in words a release record can show."""

    def __init__(self, relation, detail):
        self.relation, self.detail = relation, detail

    @property
    def moves(self):
        return self.relation in (SAME, FORWARD)


def relation(workspace, recorded, commit):
    """How commit relates to recorded: SAME, FORWARD (it descends from recorded), BEHIND (recorded descends from it),
    DIVERGED (neither), or UNKNOWN (git cannot tell, even after fetching what it needs)."""
    if recorded == commit:
        return Answer(SAME, "it is at this commit already")
    try:
        repository = _Repository(workspace)
        answer = repository.decide(recorded, commit)
        fetched = False
        for depth in DEEPEN_STEPS:
            if answer is not None or not repository.shallow():
                break
            fetched = repository.fetch(depth, commit, recorded) or fetched
            answer = repository.decide(recorded, commit)
        if answer is None and not repository.shallow() and not repository.has(recorded):
            # A full history lacking the recorded commit (a clone older than it, or one another release of the run
            # made whole while this one looked): fetch it, so that a later commit is told apart from a diverged one.
            fetched = repository.fetch_commit(recorded) or fetched
            answer = repository.decide(recorded, commit)
        if answer is None and not repository.shallow():
            answer = Answer(DIVERGED, "{} is not in the history of {}".format(recorded[:12], commit[:12]))
        if answer is None:
            why = ("the shallow checkout, deepened by {} commits, does not show how they relate".format(
                sum(DEEPEN_STEPS)) if fetched else "the shallow checkout lacks their history and {} could not "
                "be fetched from".format(REMOTE))
            return Answer(UNKNOWN,
                          "cannot tell whether {} descends from {}: {}".format(commit[:12], recorded[:12], why))
        return answer
    except ReleasekitError as error:
        return Answer(UNKNOWN, "cannot tell whether {} descends from {}: {}".format(commit[:12], recorded[:12], error))


class _Repository:
    def __init__(self, workspace):
        self.workspace = workspace
        self._git_dir = None

    def _git(self, *args, timeout=60, env=None):
        missing = ReleasekitError("git is not installed")
        try:
            return process.run(["git", "-C", self.workspace, *args], missing, timeout=timeout, env=env)
        except process.TimeoutExpired:
            raise ReleasekitError("git {} took longer than {} s".format(args[0], timeout)) from None

    def has(self, commit):
        return self._has(commit)

    def _has(self, commit):
        return self._git("cat-file", "-e", commit + "^{commit}").returncode == 0

    def _is_ancestor(self, older, newer):
        """True, False, or None when git cannot tell (one of them is not here)."""
        code = self._git("merge-base", "--is-ancestor", older, newer).returncode
        return {0: True, 1: False}.get(code)

    def shallow(self):
        result = self._git("rev-parse", "--is-shallow-repository")
        if result.returncode != 0:
            raise ReleasekitError("{} is not a git checkout ({})".format(
                self.workspace, (result.stderr.strip().splitlines() or ["?"])[-1]))
        return result.stdout.strip() == "true"

    def decide(self, recorded, commit):
        """The answer the local history gives for sure, or None."""
        if not self._has(commit):
            raise ReleasekitError("{} is not in the git repository at {}".format(commit[:12], self.workspace))
        if self._is_ancestor(recorded, commit):
            return Answer(FORWARD, "{} descends from {}".format(commit[:12], recorded[:12]))
        if self._has(recorded) and self._is_ancestor(commit, recorded):
            return Answer(BEHIND, "it points at {}, a later commit that descends from {}".format(
                recorded[:12], commit[:12]))
        # Without gaps in the history, what is not an ancestor is not one; a shallow history may hide the path.
        if not self.shallow() and self._has(recorded):
            return Answer(DIVERGED, "{} and {} are on diverging lines of history".format(recorded[:12], commit[:12]))
        return None

    def fetch(self, depth, commit, recorded):
        """Deepen the history of commit by depth, and fetch recorded with what links it to that history. Whether
        anything could be fetched."""
        quiet = dict(os.environ, GIT_TERMINAL_PROMPT="0")
        with self._fetch_lock():
            deepened = self._git("fetch", "--quiet", "--no-tags", "--deepen={}".format(depth), REMOTE, commit,
                                 timeout=FETCH_TIMEOUT, env=quiet)
            if deepened.returncode != 0:
                log.info("could not deepen %s: %s", commit[:12], deepened.stderr.strip())
            got_recorded = self._has(recorded) or self._git(
                "fetch", "--quiet", "--no-tags", "--deepen={}".format(depth), REMOTE, recorded,
                timeout=FETCH_TIMEOUT, env=quiet).returncode == 0
        return deepened.returncode == 0 or got_recorded

    def fetch_commit(self, commit):
        """Fetch one commit with its history into a full clone. Whether it is here now."""
        with self._fetch_lock():
            if not self._has(commit):
                fetched = self._git("fetch", "--quiet", "--no-tags", REMOTE, commit, timeout=FETCH_TIMEOUT,
                                    env=dict(os.environ, GIT_TERMINAL_PROMPT="0"))
                if fetched.returncode != 0:
                    log.info("could not fetch %s: %s", commit[:12], fetched.stderr.strip())
        return self._has(commit)

    @contextlib.contextmanager
    def _fetch_lock(self):
        """One fetch at a time in this repository: concurrent fetches would race for its shallow file."""
        if self._git_dir is None:
            result = self._git("rev-parse", "--absolute-git-dir")
            self._git_dir = result.stdout.strip() if result.returncode == 0 else None
        try:
            handle = open(os.path.join(self._git_dir, "releasekit-fetch.lock"), "w") if self._git_dir else None
        except OSError:
            handle = None  # a git directory it cannot write to: git's own lock files still guard it
        if handle is None:
            yield
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
