"""The base revision as Bazel sees it: a detached worktree of the base commit, and the rules it defines.

The worktree is checked out once per base commit, outside the workspace (or //... would see it), and reused between
runs. Its packages are read by the workspace's own Bazel server (--package_path) when everything outside the packages
is the same at both revisions (no WORKSPACE-level file, nothing they load, no rc file differs), sparing a second
server's start-up; otherwise, when that answer cannot be trusted, or on an agent that keeps the worktree's own server
warm between runs (the workspace's then does not read other checkouts: Bazel.reads_other_checkouts), by a server in
the worktree itself.
"""

import os

from releasekit.selection import graph
from releasekit.selection.bazelquery import Bazel
from releasekit.selection.change_kinds import BUILD_FILE_NAMES


def has_build_file(workspace, package):
    return any(os.path.isfile(os.path.join(workspace, package, name)) for name in BUILD_FILE_NAMES)


class BaseRevision:
    """The base commit's worktree and the Bazel that reads it. bazel: the workspace's own."""

    def __init__(self, repo, bazel, checkout_dir=None):
        self.repo, self.bazel, self.checkout_dir = repo, bazel, checkout_dir
        self.server = None  # a Bazel server of the worktree's own, started when first needed
        self.package_path_trusted = False  # the workspace's server has answered for the worktree (--package_path)
        self._workspace = (None, None)  # (base commit, its checked-out workspace)

    @property
    def queries_run(self):
        return self.server.queries_run if self.server else 0

    def workspace(self, commit):
        """The workspace in a detached worktree of the commit (checked out once per commit)."""
        if self._workspace[0] != commit:
            directory = self.checkout_dir or graph.default_base_checkout(self.repo.root)
            self._workspace = (commit, self.repo.checkout_of(commit, directory))
        return self._workspace[1]

    def own_bazel(self, commit):
        """Bazel in the worktree of the commit: a server of its own."""
        workspace = self.workspace(commit)
        if self.server is None:
            self.server = Bazel(workspace, command=" ".join(self.bazel.command))
        return self.server

    def rule_definitions(self, packages, commit, same_globals):
        """{label: Target with its definition} of the rules of these packages at the commit."""
        workspace = self.workspace(commit)
        existing = [p for p in packages if has_build_file(workspace, p)]
        if not existing:
            return {}
        expression = graph.packages_expression(existing, "all")
        if same_globals:
            # The workspace's server gives the base's answer only where everything outside the packages is the same.
            # Trusted only if every target's BUILD file lies in the base's worktree.
            rules = self.bazel.base_package_definitions(expression, workspace)
            if rules is not None:
                self.package_path_trusted = True
                return rules
        return self.own_bazel(commit).query_targets(expression, definitions=True)

    def changed_rules(self, touched_packages, commit, same_globals):
        """{label: (Target, paths)}: rules of the touched packages that are new at head or defined differently than
        at the commit. same_globals: no WORKSPACE-level file, nor what it loads, nor an rc file differs."""
        head_packages = sorted(p for p in touched_packages if has_build_file(self.bazel.workspace, p))
        head_rules = (self.bazel.query_targets(graph.packages_expression(head_packages, "all"), definitions=True)
                      if head_packages else {})
        base_rules = self.rule_definitions(sorted(touched_packages), commit, same_globals)
        changed = {}
        for label, target in head_rules.items():
            before = base_rules.get(label)
            if before is None or before.definition != target.definition:
                changed[label] = (target, touched_packages[graph.package_of(label)])
        return changed

    def close(self, wait=True):
        """Stop the worktree's own server. wait=False: return the thread stopping it (join it before exit)."""
        if self.server is None:
            return None
        if wait:
            self.server.shutdown()
            return None
        return self.server.shutdown_in_background()
