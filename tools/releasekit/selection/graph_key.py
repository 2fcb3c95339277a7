"""The key of a recorded target graph: everything Bazel's answer to target_graphs.GRAPH_QUERY is made of, or why no
key can say it (then the graph is neither read nor recorded, and Bazel answers).

Each way a recorded graph could differ from the one Bazel would load here, and how the key closes it:
  - Bazel itself: the command, its `--version` answer, and the content of the command's executable when it is a
    script (a wrapper may add options or rc files);
  - rc files: the Bazel client's own list of the rc files it looks for and parses (`--client_debug`): the system rc
    at the path this Bazel was built with, the workspace's `.bazelrc` and what it imports, the user's `~/.bazelrc`,
    each `--bazelrc` the command or a wrapper adds; each by content. No list, no key;
  - the tree at head: every path (globs read the listing), and the content of every BUILD, .bzl and .scl file, global
    file (global_files.py), symbolic link and submodule commit;
  - the working tree against that tree: tracked files unchanged (collect checks it before it answers); none marked
    skip-worktree (a sparse checkout: Bazel would not see them) or assume-unchanged (git would not see them change);
    every submodule either not checked out or checked out at the commit the tree names, with no change; untracked and
    ignored files, in the workspace and in its submodules, judged one by one (untracked.py): one that can change the
    graph prevents a key, and a global file git does not track (an ignored `user.bazelrc` a try-import names) is keyed
    by its content;
  - local repositories: the BUILD, .bzl, .scl, WORKSPACE and MODULE.bazel files of each directory outside the
    workspace that WORKSPACE-level or bzlmod files name by a literal `path`; a `path` computed by an expression cannot
    be read, and prevents a key.
What the key cannot see: what repository rules read from the machine rather than from files (a C++ toolchain's
autodetection, environment variables): keep that in the agent image, with the Bazel it runs.
"""

import hashlib
import os
import re
import shutil

from releasekit.core import process
from releasekit.selection import global_files, untracked

# 3: records hold each toolchain() rule's toolchain and toolchain_type, which collect follows to the rules that
# resolve them; a record without them is not read.
FORMAT = "releasekit target graph 3"
LOADING_NAMES = frozenset(["BUILD", "BUILD.bazel", "WORKSPACE", "WORKSPACE.bazel", "WORKSPACE.bzlmod", "MODULE.bazel",
                           "REPO.bazel"])
_LINK_OR_SUBMODULE = frozenset(["120000", "160000"])
_SUBMODULE = "160000"
_RC_LIST_RE = re.compile(r"Looking for the following rc files: (.*)$", re.MULTILINE)
_RC_PARSED_RE = re.compile(r"Parsing the RcFile (.*)$", re.MULTILINE)


class BazelIdentity:
    """What the key says of Bazel: the command, its version, its executable, and the rc files it reads."""

    def __init__(self, command, version, executable_digest, rc_lines):
        self.command, self.version = command, version
        self.executable_digest, self.rc_lines = executable_digest, rc_lines

    def lines(self):
        return ["bazel {} ({})".format(" ".join(self.command), self.version),
                "bazel executable {}".format(self.executable_digest)] + self.rc_lines


def identify(command, workspace, timeout=60):
    """(BazelIdentity, None) or (None, why not): asks the Bazel client, which reads the rc files but starts no
    server."""
    try:
        answer = process.run(list(command) + ["--client_debug", "--version"], OSError("not installed"), cwd=workspace,
                             timeout=timeout)
    except (OSError, process.TimeoutExpired) as error:
        return None, "`bazel --version` gave no answer ({})".format(error)
    version = answer.stdout.strip()
    if answer.returncode != 0 or not version:
        return None, "`bazel --version` gave no answer"
    looked_for = _RC_LIST_RE.search(answer.stderr)
    if looked_for is None:
        return None, "Bazel did not say which rc files it reads (`bazel --client_debug --version`)"
    workspace_prefix = os.path.realpath(workspace) + os.sep

    def named(path):  # the workspace's own rc files by their place in it: the key holds for any checkout directory
        real = os.path.realpath(path)
        return "%workspace%/" + real[len(workspace_prefix):] if real.startswith(workspace_prefix) else path

    rc_lines = ["rc files looked for: " + ",".join(named(p) for p in looked_for.group(1).strip().split(","))]
    for path in _RC_PARSED_RE.findall(answer.stderr):
        rc_lines.append("rc file {} {}".format(named(path.strip()), _file_digest(path.strip())))
    return BazelIdentity(list(command), version, _executable_digest(command[0], workspace), rc_lines), None


def _executable_digest(program, workspace):
    """The content of the command's executable when it is a script (a wrapper), else 'binary' (its version says it)."""
    path = shutil.which(program, path=os.environ.get("PATH")) if os.sep not in program else \
        os.path.join(workspace, program)
    try:
        with open(path or program, "rb") as handle:
            content = handle.read()
    except OSError:
        return "unreadable"
    return hashlib.sha256(content).hexdigest() if content.startswith(b"#!") else "binary"


def _file_digest(path):
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return "missing"


def loading_key(repo, head_commit, files, identity):
    """(key, None), or (None, why no key can be made): the key of head's target graph (see the module's text).
    files: the working tree's global_files.GlobalFiles; identity: a BazelIdentity."""
    flagged = repo.flagged_paths()
    if flagged:
        return None, ("git marks files of the workspace skip-worktree or assume-unchanged ({}): Bazel may not see "
                      "what the tree holds".format(_few(flagged)))
    computed = global_files.computed_paths(repo.read_worktree, sorted(files.starlark | files.module_files))
    if computed:
        return None, "a repository `path` is computed ({}), so what it holds cannot be keyed".format(_few(computed))
    entries = repo.tree_entries(head_commit)
    tracked = {path for _, _, path in entries}
    lines = [FORMAT] + identity.lines()
    for mode, object_id, path in entries:
        keyed = (mode in _LINK_OR_SUBMODULE or path.endswith((".bzl", ".scl")) or path in files
                 or os.path.basename(path) in LOADING_NAMES)
        lines.append("{} {}{}".format(mode, path, " " + object_id if keyed else ""))
    submodules = []
    for mode, object_id, path in entries:
        if mode == _SUBMODULE:
            state, why_not = repo.submodule_state(path, object_id)
            if why_not:
                return None, why_not
            lines.append("submodule {} {}".format(path, state))
            submodules += [path] if state == "checked out" else []
    changing = untracked.graph_changing(repo, files, submodules)
    if changing:
        return None, "files git does not track could change the graph: {}".format(_few(changing))
    for path in sorted(files.files):
        if path not in tracked and os.path.isfile(os.path.join(repo.workspace, path)):
            lines.append("untracked global file {} {}".format(path, _file_digest(os.path.join(repo.workspace, path))))
    for path in local_repository_paths(repo, sorted(files.starlark | files.module_files)):
        lines.append("local repository {} {}".format(path, _repository_fingerprint(path)))
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest(), None


def _few(items):
    items = list(items)
    return ", ".join(items[:3]) + (", ..." if len(items) > 3 else "")


def local_repository_paths(repo, starlark_files):
    """Directories outside the workspace that WORKSPACE-level or bzlmod files name by a literal `path = "..."`."""
    paths = set()
    for path in global_files.literal_paths(repo.read_worktree, starlark_files):
        absolute = os.path.realpath(os.path.join(repo.workspace, path))
        if not (absolute + os.sep).startswith(os.path.realpath(repo.workspace) + os.sep):
            paths.add(absolute)
    return sorted(paths)


def _repository_fingerprint(directory):
    """The BUILD, .bzl, .scl, WORKSPACE and MODULE.bazel files of a directory and their content: all that can give its
    targets edges into the workspace (its globs list its own files only)."""
    digest = hashlib.sha256()
    for root, directories, names in os.walk(directory):
        directories[:] = sorted(d for d in directories
                                if d != ".git" and not (root == directory and d.startswith("bazel-")))
        for name in sorted(names):
            if name in LOADING_NAMES or name.endswith((".bzl", ".scl")):
                path = os.path.join(root, name)
                digest.update(os.path.relpath(path, directory).encode("utf-8", "surrogateescape") + b"\0")
                digest.update(_file_digest(path).encode())
    return digest.hexdigest()

