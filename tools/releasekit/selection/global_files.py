"""The workspace's global files: what can change every target's meaning at once, and how a change to each is judged.

- rc files: `.bazelrc` and the workspace's files it imports (`import` / `try-import %workspace%/...`), judged option
  by option as `.bazelrc`'s own (bazelrc.py);
- WORKSPACE-level files: WORKSPACE, the workspace's .bzl and .scl files it loads, the files they name by label (a lock
  file a repository rule reads) and the files inside a local repository they name by a relative `path` (its BUILD
  and source files), judged by the repositories they change (externals.py);
- judged whole: MODULE.bazel, the segments it include()s, WORKSPACE.bzlmod and MODULE.bazel.lock: a change that
  leaves every statement (the lock file's data) as it was selects nothing, any other everything: bzlmod's resolved
  module graph is not compared;
- everything, naming the file: the files MODULE.bazel and its segments name (what a module extension or an override
  reads: go.mod, a requirements lock, patches, a `local_path_override` directory), `.bazelversion`, `.bazeliskrc`
  (both choose the Bazel that runs), `tools/bazel` (the wrapper bazelisk runs instead of Bazel), `.bazelignore`
  and `REPO.bazel` (what every package sees).
"""

import ast
import os

from releasekit.selection import bazelrc, externals

RC = "rc"
WORKSPACE_LEVEL = "workspace"
JUDGED_WHOLE = "whole"
EVERYTHING = "everything"

_JUDGED_WHOLE = ("MODULE.bazel", "MODULE.bazel.lock", "WORKSPACE.bzlmod")
_EVERYTHING = (".bazelversion", ".bazeliskrc", "tools/bazel", ".bazelignore", "REPO.bazel")


class GlobalFiles:
    """The global files of the working tree, by kind; starlark: the Starlark files among the WORKSPACE-level ones.
    directories: {directory: kind}, every file below one is of that kind."""

    def __init__(self, files, directories, starlark, module_files=frozenset()):
        self.files, self.directories, self.starlark = files, directories, starlark
        self.module_files = module_files  # MODULE.bazel and the segments it includes

    def kind(self, path):
        """RC, WORKSPACE_LEVEL, JUDGED_WHOLE, EVERYTHING, or None for a file of no global kind."""
        if path in self.files:
            return self.files[path]
        return next((kind for directory, kind in self.directories.items() if path.startswith(directory + "/")), None)

    def __contains__(self, path):
        return self.kind(path) is not None

    def why_everything(self, path):
        """Why a change to a file of kind EVERYTHING may change any result."""
        if path in _EVERYTHING:
            return {".bazelversion": "it chooses the Bazel that runs",
                    ".bazeliskrc": "it can choose the Bazel that runs",
                    "tools/bazel": "it is the wrapper bazelisk runs instead of Bazel",
                    ".bazelignore": "it says which directories Bazel reads",
                    "REPO.bazel": "it sets what every package of the repository sees"}[path]
        return ("MODULE.bazel names it (a module extension or an override reads it), and bzlmod's resolved module "
                "graph is not compared")


def find(read_head, read_base):
    """The GlobalFiles of the working tree: read(path) gives a file's text at head or base, or None."""
    starlark, data = externals.workspace_files(read_head, externals.WORKSPACE_FILES)
    files = {path: WORKSPACE_LEVEL for path in starlark | data}
    directories = {directory: WORKSPACE_LEVEL for directory in local_directories(read_head, starlark)}
    module_files = module_segments(read_head)
    for path in module_files:
        for named in _labels_named(read_head(path) or ""):
            if read_head(named) is not None:
                files.setdefault(named, EVERYTHING)
        for directory in local_directories(read_head, [path]):
            directories.setdefault(directory, EVERYTHING)
    files.update({path: JUDGED_WHOLE for path in module_files | set(_JUDGED_WHOLE)})
    files.update({path: EVERYTHING for path in _EVERYTHING})
    files.update({path: RC for path in bazelrc.rc_files(read_base, read_head)})
    return GlobalFiles(files, directories, starlark, frozenset(module_files))


def module_segments(read):
    """MODULE.bazel and the segments it include()s, transitively (those that exist)."""
    found, pending = set(), ["MODULE.bazel"]
    while pending:
        path = pending.pop()
        text = read(path)
        if path in found or text is None:
            continue
        found.add(path)
        for call in _calls(text, path):
            if getattr(call.func, "id", "") == "include" and call.args and isinstance(call.args[0], ast.Constant):
                named = _label_path(str(call.args[0].value))
                if named:
                    pending.append(named)
    return found


def literal_paths(read, paths):
    """The literal `path = "..."` values of these Starlark files (a local_repository, new_local_repository or
    local_path_override), as written."""
    return {keyword.value.value
            for path in paths for call in _calls(read(path) or "", path) for keyword in call.keywords
            if keyword.arg == "path" and isinstance(keyword.value, ast.Constant)
            and isinstance(keyword.value.value, str)}


def local_directories(read, paths):
    """Directories of the workspace that these Starlark files name by a literal relative `path`."""
    directories = {os.path.normpath(value) for value in literal_paths(read, paths)}
    return {d for d in directories if not os.path.isabs(d) and not d.startswith("..") and d != "."}


def computed_paths(read, paths):
    """`path = ...` arguments of these Starlark files whose value is not a literal string: where a local repository
    lies cannot be read from the text. Each as 'file:line'."""
    found = []
    for path in paths:
        for call in _calls(read(path) or "", path):
            for keyword in call.keywords:
                if keyword.arg == "path" and not (isinstance(keyword.value, ast.Constant)
                                                  and isinstance(keyword.value.value, str)):
                    found.append("{}:{}".format(path, keyword.value.lineno))
    return found


def _calls(text, path):
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError:
        return []
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _labels_named(text):
    return {os.path.normpath(os.path.join(package, name)) for package, name in externals.LABEL_IN_FILE_RE.findall(text)}


def _label_path(label):
    """The workspace path of a main-repository label, or None."""
    if label.startswith("@") and not label.startswith(("@//", "@@//")):
        return None
    package, _, name = label.lstrip("@").lstrip("/").partition(":")
    return os.path.normpath(os.path.join(package, name)) if name else None
