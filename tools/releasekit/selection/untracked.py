"""Untracked and ignored files: which can change the target graph, and which cannot.

Git lists what it does not track, ignored files included (`git ls-files --others`); Bazel sees them all. One can
change the graph when it is:
  - a BUILD, WORKSPACE, MODULE.bazel or REPO.bazel file (a package, a repository boundary), or a .bzl or .scl file
    (a load() may name it);
  - a symbolic link to a directory (Bazel may follow it), or a directory that cannot be read;
  - a file inside a package that one of the package's globs could take. The package's BUILD file and the workspace's
    Starlark it loads (transitively) are read: the file is harmless only if every glob there has literal patterns
    and none matches it. A package that loads Starlark of another repository, or globs with patterns made at run
    time or with exclude_directories changed, is not known, and every untracked file in it counts.
It cannot when it lies in no package (no BUILD file above it), in a directory `.bazelignore` lists, or is one of
Bazel's own convenience links (a top-level `bazel-*` link into an execroot). A global file git does not track (an
ignored `user.bazelrc` a try-import names) is not counted here: the graph key holds its content.
"""

import ast
import os
import re

from releasekit.selection import change_kinds, externals
from releasekit.selection.change_kinds import BUILD_FILE_NAMES, enclosing_package

_GRAPH_NAMES = frozenset(BUILD_FILE_NAMES) | {"WORKSPACE", "WORKSPACE.bazel", "WORKSPACE.bzlmod", "MODULE.bazel",
                                              "REPO.bazel"}
UNKNOWN = None  # a package whose globs cannot be read


def graph_changing(repo, files, submodules=()):
    """The untracked and ignored paths of the workspace (and of these checked-out submodules) that could change the
    target graph, each with why; [] when none can. files: the working tree's global_files.GlobalFiles."""
    ignored_directories = change_kinds.bazelignored(repo.read_worktree(".bazelignore") or "")
    globs = {}  # package -> its glob patterns (compiled), or UNKNOWN
    found = []
    listed = [("", path) for path in repo.untracked_paths()]
    listed += [(submodule, path) for submodule in submodules for path in repo.untracked_paths(submodule)]
    for prefix, entry in listed:
        path = os.path.join(prefix, entry) if prefix else entry
        if not prefix and _bazel_convenience_link(repo.workspace, path):
            continue
        for file_path, why in _files_below(repo.workspace, path):
            if any(file_path == d or file_path.startswith(d + "/") for d in ignored_directories):
                continue
            why = why or _why_it_changes(repo, files, file_path, globs)
            if why:
                found.append("{} ({})".format(file_path, why))
                break  # one reason per listed entry is enough to say
    return found


def _files_below(workspace, path):
    """(file path, why it counts whatever it holds, or None) for a listed path: a file, or every file of a directory."""
    full = os.path.join(workspace, path.rstrip("/"))
    if os.path.islink(full):
        yield path.rstrip("/"), "a symbolic link to a directory" if os.path.isdir(full) else None
        return
    if not os.path.isdir(full):
        yield path, None
        return
    for root, directories, names in os.walk(full, onerror=lambda error: None):
        directories[:] = [d for d in directories if d != ".git"]
        for name in directories:
            if os.path.islink(os.path.join(root, name)):
                yield os.path.relpath(os.path.join(root, name), workspace), "a symbolic link to a directory"
        for name in names:
            yield os.path.relpath(os.path.join(root, name), workspace), None


def _why_it_changes(repo, files, path, globs):
    name = os.path.basename(path)
    if name in _GRAPH_NAMES:
        return "a {} file".format(name)
    if path.endswith((".bzl", ".scl")):
        return "Starlark a load() may name"
    if path in files:
        return None  # a global file: keyed by its content
    package = enclosing_package(path, lambda build_file: os.path.isfile(os.path.join(repo.workspace, build_file)))
    if package is None:
        return None
    if package not in globs:
        globs[package] = _package_globs(repo, package)
    patterns = globs[package]
    if patterns is UNKNOWN:
        return "in package //{}, whose globs cannot all be read".format(package)
    relative = path[len(package) + 1:] if package else path
    if any(pattern.match(relative) for pattern in patterns):
        return "a glob of //{} takes it".format(package)
    return None


def _package_globs(repo, package):
    """The compiled include patterns of every glob the package's BUILD file and the workspace's Starlark it loads may
    call, or UNKNOWN."""
    build_file = next((os.path.join(package, n) if package else n for n in BUILD_FILE_NAMES
                       if os.path.isfile(os.path.join(repo.workspace, package, n))), None)
    patterns, pending, seen = [], [build_file], set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        try:
            tree = ast.parse(repo.read_worktree(path) or "", filename=path)
        except SyntaxError:
            return UNKNOWN
        for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
            callee = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
            if callee == "load":
                loaded = call.args[0].value if call.args and isinstance(call.args[0], ast.Constant) else None
                local = externals.bzl_path(loaded, path) if isinstance(loaded, str) else None
                if local is None:
                    return UNKNOWN  # Starlark of another repository: what it globs is not known here
                pending.append(local)
            elif callee == "glob":
                included = _literal_patterns(call)
                if included is UNKNOWN:
                    return UNKNOWN
                patterns += included
    return [_glob_regex(pattern) for pattern in patterns]


def _literal_patterns(call):
    include = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "include"), None)
    if any(k.arg == "exclude_directories" for k in call.keywords) or not isinstance(include, (ast.List, ast.Tuple)):
        return UNKNOWN
    if not all(isinstance(item, ast.Constant) and isinstance(item.value, str) for item in include.elts):
        return UNKNOWN
    return [item.value for item in include.elts]


def _glob_regex(pattern):
    """Bazel's glob syntax as a regular expression: `*` and `?` within one path segment, `**` any number of them."""
    segments = pattern.split("/")
    regex = ""
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            regex += "(?:[^/]+/)*" + ("[^/]+" if last else "")
        else:
            regex += re.escape(segment).replace(r"\*", "[^/]*").replace(r"\?", "[^/]") + ("" if last else "/")
    return re.compile("^" + regex + "$")


def _bazel_convenience_link(workspace, path):
    """A top-level bazel-* link Bazel made: it leads into an execroot, outside the workspace; //... never enters it."""
    path = path.rstrip("/")
    full = os.path.join(workspace, path)
    return "/" not in path and path.startswith("bazel-") and os.path.islink(full) and \
        "/execroot/" in os.readlink(full) + "/"
