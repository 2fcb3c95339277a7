"""What a release is tagged with: the commit, and for dev releases the user.

Version information is read when a release runs, not when it is built, so that
release targets stay cacheable and one build serves every commit's publish step.
Sources, first that is set wins:
  commit: environment.COMMIT, then `git rev-parse HEAD` in the workspace
  user:   environment.USER, then USER / LOGNAME, then the account name
  dirty:  environment.DIRTY (true|false), then `git status --porcelain` in the workspace (also when
          the commit is set: naming the commit does not make the tree clean), and the files git is told not
          to look at compared with the commit (hidden_changes.py)
"""

import dataclasses
import logging
import os
import pwd
import re

from releasekit.core.errors import VersionError
from releasekit.core import environment, process

log = logging.getLogger(__name__)
_SHA_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


@dataclasses.dataclass(frozen=True)
class SourceVersion:
    commit: str
    dirty: bool
    user: str

    @property
    def short_commit(self):
        return self.commit[:12]


def _git(workspace, *args):
    result = process.run(["git", "-C", workspace, *args], VersionError(
        "git is not installed, so the release commit is unknown. Install git or set {}.".format(environment.COMMIT)))
    if result.returncode != 0:
        raise VersionError(
            "Cannot read the release commit from {} (git {}: {}). Run the release inside a git "
            "checkout, or set {} to the full commit SHA and {} to true or false.".format(
                workspace, " ".join(args), result.stderr.strip().splitlines()[0] if result.stderr.strip() else "failed",
                environment.COMMIT, environment.DIRTY)
        )
    return result.stdout


def _hidden(workspace, commit):
    """Files git is told not to look at (assume-unchanged, skip-worktree) that differ from the commit."""
    from releasekit.core.hidden_changes import in_tree

    def failed(text):
        return VersionError("Cannot tell whether the working tree holds commit {}: {}. Run the release inside a git "
                            "checkout, or set {} to true or false.".format(commit[:12], text, environment.DIRTY))

    changed = in_tree(workspace, commit, VersionError("git is not installed: install git or set {}.".format(
        environment.DIRTY)), failed)
    if changed:
        log.warning("the working tree differs from commit %s in %s, which git is told not to look at "
                    "(assume-unchanged or skip-worktree): git status does not show them", commit[:12],
                    ", ".join(changed[:10]))
    return changed


def _account_name():
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return "unknown"


def sanitize_tag_part(text):
    """Lowercase, and only characters an image tag allows."""
    cleaned = re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip(".-")
    return cleaned or "unknown"


def source_workspace(environ):
    """The directory a release's sources are checked out in: where `bazel run` was called, else here."""
    return environ.get("BUILD_WORKSPACE_DIRECTORY") or os.getcwd()


def read_source_version(environ=None):
    environ = os.environ if environ is None else environ
    workspace = source_workspace(environ)
    commit = environment.COMMIT.get(environ) or _git(workspace, "rev-parse", "HEAD").strip()
    if not _SHA_RE.match(commit):
        raise VersionError(
            "'{}' is not a full commit SHA (40 hex digits). Set {} to `git rev-parse "
            "HEAD` of the release commit.".format(commit, environment.COMMIT)
        )
    dirty_setting = environ.get(environment.DIRTY.name)
    if dirty_setting is not None:
        dirty = dirty_setting.lower() in ("1", "true", "yes")
    else:  # a pinned commit says which commit, not that the tree still holds it: only the dirty setting skips git
        dirty = bool(_git(workspace, "status", "--porcelain", "--untracked-files=no").strip()) or bool(
            _hidden(workspace, commit))
    user = environment.USER.get(environ) or environ.get("USER") or environ.get("LOGNAME") or _account_name()
    return SourceVersion(commit=commit, dirty=dirty, user=sanitize_tag_part(user))


_RELEASE_VERSION_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")


def release_version_setting(environ):
    """The release version setting (environment.VERSION), checked: it becomes part of store paths, so it must be
    one plain path part."""
    version = environment.VERSION.get(environ)
    if version and (not _RELEASE_VERSION_RE.match(version) or ".." in version):
        raise VersionError(
            "{} '{}' is not a release version: use letters, digits, '.', '_', '+' and '-', starting "
            "with a letter or digit, with no '..' (e.g. 1.4.0).".format(environment.VERSION, version))
    return version


def image_tags(channel, version, declared_tags):
    """CI: the full commit plus the declared tags. Dev: dev-<user>-<short sha>[-dirty]."""
    if channel == "ci":
        tags = [version.commit] + [t for t in declared_tags if t != version.commit]
    else:
        tags = ["dev-{}-{}{}".format(version.user, version.short_commit, "-dirty" if version.dirty else "")]
    return tags
