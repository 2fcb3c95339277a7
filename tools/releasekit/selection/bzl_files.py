"""The workspace's .bzl and .scl files: which load which (transitively), and the rule classes they define."""

import re

from releasekit.selection import externals, gitrepo

_RULE_CLASS_RE = re.compile(r"^(\w+)\s*=\s*rule\(", re.MULTILINE)


def reach(repo, bzl_paths):
    """These Starlark files and every .bzl or .scl file of the working tree that loads one of them (transitively)."""
    loaders = {}
    for path in repo.files_matching("*.bzl", "*.scl"):
        for label in externals.LOAD_RE.findall(repo.read_at(gitrepo.WORKTREE, path) or ""):
            loaded = externals.bzl_path(label, path)
            if loaded:
                loaders.setdefault(loaded, set()).add(path)
    reached, pending = set(), list(bzl_paths)
    while pending:
        path = pending.pop()
        if path not in reached:
            reached.add(path)
            pending.extend(loaders.get(path, ()))
    return reached


def rule_classes_reached(repo, bzl_paths):
    """Names of the rule classes defined in these .bzl or .scl files or in any of the working tree's Starlark files
    that load them (transitively): their implementations may have changed."""
    return {name for path in reach(repo, bzl_paths)
            for name in _RULE_CLASS_RE.findall(repo.read_at(gitrepo.WORKTREE, path) or "")}
