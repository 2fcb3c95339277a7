"""What each changed file is to Bazel: a source file of a package, a BUILD file, loaded Starlark, or a file that moves
a package boundary. Git and the working tree answer; Bazel is not asked.
"""

import os

from releasekit.selection import graph

BUILD_FILE_NAMES = ("BUILD.bazel", "BUILD")
# Starlark that BUILD files and other Starlark load: .bzl, and .scl (Bazel 7+: the same, without Bazel's built-ins).
STARLARK_SUFFIXES = (".bzl", ".scl")


def enclosing_package(path, exists):
    """The package a path lies in: the nearest directory above it where exists(its BUILD file), or None."""
    directory = os.path.dirname(path)
    while True:
        if any(exists(os.path.join(directory, name) if directory else name) for name in BUILD_FILE_NAMES):
            return directory
        if not directory:
            return None
        directory = os.path.dirname(directory)


def is_starlark(path):
    return path.endswith(STARLARK_SUFFIXES)


class ChangeKinds:
    """The changes, sorted by what they may change.

    file_seeds: {label of a changed file at head: [paths]}, each a seed of rdeps (a loaded .bzl or .scl file too:
      a target may also take it as a file, as bzl_library and a test's data do);
    touched_packages: {package: [paths]}, packages whose rule definitions may differ (a BUILD file changed, a file
      was added, deleted or renamed, a BUILD file appeared or disappeared below them);
    changed_starlark: the changed .bzl and .scl files at head, judged by what loads them.
    """

    def __init__(self):
        self.file_seeds, self.touched_packages, self.changed_starlark = {}, {}, []

    def touch(self, package, path):
        self.touched_packages.setdefault(package, []).append(path)


def bazelignored(text):
    """The directories a `.bazelignore` file lists."""
    return [line.strip().rstrip("/") for line in text.splitlines() if line.strip() and not line.startswith("#")]


def under(directories, path):
    return any(path == directory or path.startswith(directory + "/") for directory in directories)


def sort_changes(changes, package_at_head, package_at_base, ignored=()):
    """The ChangeKinds of git's changes; package_at_head(path) / package_at_base(path): the package a path lies in at
    each revision, or None. ignored: the `.bazelignore`d directories, whose files belong to no package of this
    repository (a local repository kept there is judged as a WORKSPACE-level file, global_files.py)."""
    kinds = ChangeKinds()
    for change in changes:
        for path in change.paths_at_head:
            if under(ignored, path):
                continue
            name = os.path.basename(path)
            if is_starlark(path):
                kinds.changed_starlark.append(path)
            package = package_at_head(path)
            if package is None:
                continue
            if name in BUILD_FILE_NAMES or change.status not in ("M", "T"):  # a glob may gain or lose it
                kinds.touch(package, path)
            if name not in BUILD_FILE_NAMES:
                kinds.file_seeds.setdefault(graph.label(package, path), []).append(path)
        if change.status in ("D", "R") and not under(ignored, change.paths_at_base[0]):
            path = change.paths_at_base[0]
            package = package_at_base(path)
            if package is not None:
                kinds.touch(package, path)
    # A BUILD file that appears or disappears moves a package boundary: the files below it leave or join the
    # enclosing package (its globs), which must be compared at both revisions too.
    for change in changes:
        if change.status == "M":
            continue
        for path in change.paths_at_head + change.paths_at_base:
            if os.path.basename(path) not in BUILD_FILE_NAMES or not os.path.dirname(path) or under(ignored, path):
                continue
            inside_parent = os.path.join(os.path.dirname(os.path.dirname(path)), "_")
            for enclosing in (package_at_head(inside_parent), package_at_base(inside_parent)):
                if enclosing is not None:
                    kinds.touch(enclosing, path)
    return kinds
