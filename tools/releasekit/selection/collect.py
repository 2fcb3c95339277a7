"""Change selection: from a commit range to the minimal set of affected tests and releases.

The number of `bazel query` calls is constant, whatever the number of changed files:

  1. (only if BUILD files changed, or files were added, deleted or renamed) the rule
     definitions of the touched packages at head, and
  2. the same at base, in a reused detached worktree of the base revision (base_revision.py): rules whose definition
     differs, or that are new, are changed;
  3. (only if .bzl or .scl files changed) `rbuildfiles` in sky query mode: packages that load them;
  4. one union query, in sky query mode: rdeps of every seed (changed files that are targets, changed rules,
     every rule of a package a changed .bzl reaches), plus the tests of changed test_suites;
  5. (only if a change reaches a rule's implementation) one aquery at each revision of the rule's targets and what
     depends on them: only those whose actions differ stay selected (rule_actions.py);
  6. (only if a change reaches a toolchain() rule of the repository, which the union query lists) one cquery of what
     resolves its toolchain type, on the configured graph (toolchains.py).
Every query asks for the edges it relies on itself (bazelquery.EDGE_OPTIONS), whatever the rc files say.
With a target graph store, a change to the content of source files alone queries nothing: rdeps come from the graph
an earlier run recorded for the same BUILD files, and a main-line run that loaded //... records its own
(target_graphs.py). What a change to a global file selects is said in global_files.py: rc files by their options
(bazelrc.py, bazelrc_reach.py), WORKSPACE-level files by the external targets they change (externals.py), bzlmod's
files and the files they name by everything unless every statement stays as it was. Recall comes first: when in
doubt, a target is selected.
"""

import os
import re

from releasekit.core.errors import UsageError
from releasekit.selection import (bazelrc, bazelrc_reach, bzl_files, change_kinds, externals, gitrepo, global_files,
                                  graph, rule_actions, selecting, target_graphs, toolchains)
from releasekit.selection.base_revision import BaseRevision
from releasekit.selection.bazelquery import Bazel, quote
from releasekit.selection.selection_file import Selection


class Collector:
    def __init__(self, workspace, bazel=None, base_checkout_dir=None, graphs=None):
        """graphs: a target_graphs.Prepared, to read and record target graphs (None: Bazel always loads them)."""
        self.repo = gitrepo.Repository(workspace)
        self.graphs = graphs
        self.workspace = self.repo.workspace
        self.bazel = bazel or Bazel(self.workspace)
        self.base = BaseRevision(self.repo, self.bazel, base_checkout_dir)
        self._base_listings = {}  # base commit -> the paths it holds

    @property
    def base_bazel(self):
        """The base revision's own Bazel server, once one was needed."""
        return self.base.server

    # -- revisions and files --------------------------------------------------------------

    def _resolve(self, base, head):
        """Returns the base commit, the head commit (or WORKTREE), and a check to run before trusting head."""
        if head == gitrepo.WORKTREE:
            return self.repo.resolve(base, "--base"), gitrepo.WORKTREE, lambda: None
        base_commit, head_commit, checked_out = self.repo.resolve_all(
            [(base, "--base"), (head, "--head"), ("HEAD", "the checked-out revision")])
        if head_commit != checked_out:
            raise UsageError(
                "--head {} is not the checked-out commit ({}); Bazel reads the working tree, so check out "
                "{} first, or pass --head WORKTREE to use the working tree as it is.".format(head, checked_out[:12],
                                                                                             head)
            )
        has_tracked_changes = self.repo.start_tracked_changes_check()

        def check_clean():
            if has_tracked_changes():
                raise UsageError(
                    "The working tree of {} has uncommitted changes, so it is not --head {}. Commit or stash "
                    "them, or pass --head WORKTREE.".format(self.workspace, head)
                )

        return base_commit, head_commit, check_clean

    def _read_head(self, path):
        return self.repo.read_at(gitrepo.WORKTREE, path)

    def package_at_head(self, path):
        def exists(build_file):
            return os.path.isfile(os.path.join(self.workspace, build_file))

        return change_kinds.enclosing_package(path, exists)

    def _package_at_base(self, base_commit, path):
        if base_commit not in self._base_listings:
            self._base_listings[base_commit] = self.repo.tree_listing(base_commit)
        return change_kinds.enclosing_package(path, self._base_listings[base_commit].__contains__)

    def collect(self, base, head, everything=None):
        """The selection between base and head; everything: why every test and release is selected instead (a first
        push has no base commit), and then base is None."""
        if everything is None:
            base_commit, head_commit, check_clean = self._resolve(base, head)
        elif head == gitrepo.WORKTREE:
            base_commit, head_commit, check_clean = None, head, lambda: None
        else:
            base_commit, (_, head_commit, check_clean) = None, self._resolve(head, head)

        def graph_key():  # (the key of head's target graph or None, notes): made when first needed
            if self.graphs is None or head_commit == gitrepo.WORKTREE:
                return None, []
            return self.graphs.key(self.repo, head_commit, files)

        try:
            files = global_files.find(self._read_head,
                                      lambda path: base_commit and self.repo.read_at(base_commit, path))
            if everything is None:
                selection = self._collect(base_commit, head_commit, files, graph_key)
            else:
                selection = Selection(None, head_commit, False, [], [], [])
                selecting.everything(self.bazel, selection, [])
                selection.notes[0] = "every test and release is selected: {}".format(everything or "--everything")
        finally:
            # Checked concurrently with the work, and always before an answer is returned or a graph recorded.
            check_clean()
        key, notes = graph_key() if self.bazel.loaded_workspace else (None, [])  # the graph is loaded: record it
        selection.notes += notes + (self.graphs.record(key, self.bazel, head_commit) if key else [])
        selection.queries = self.bazel.queries_run + self.base.queries_run
        return selection

    # -- the selection --------------------------------------------------------------------

    def _collect(self, base_commit, head_commit, files, graph_key):
        changes = self.repo.changes(base_commit, head_commit)
        changed_paths = sorted({p for c in changes for p in c.paths_at_head + c.paths_at_base})
        selection = Selection(base_commit, head_commit, False, [], [], changed_paths)
        if not changes:
            selection.notes.append("no file changed between base and head")
            return selection
        unlisted = [c.path for c in changes if c.status == gitrepo.SUBMODULE_UNLISTED]
        if unlisted:
            return selecting.everything(self.bazel, selection, unlisted, "a submodule changed, and no repository here "
                                        "holds both of its commits, so its files cannot be compared")
        global_hits = [p for p in changed_paths if p in files]
        judged = self._judge_global_files(selection, base_commit, files, global_hits)
        if judged is None:
            return selection  # everything is selected
        external_targets, external_reasons, rc_reaches = judged
        kinds = self._sort_changes(changes, base_commit, files, global_hits)
        if self._answered_by_a_recorded_graph(selection, changes, kinds, global_hits, graph_key):
            return selection
        self._select_by_changed_files_and_rules(selection, base_commit, kinds, global_hits,
                                                bool(rc_reaches or external_reasons))
        self._add_external_targets(selection, external_targets, external_reasons)
        self._add_what_rc_options_reach(selection, rc_reaches)
        return selection

    def _sort_changes(self, changes, base_commit, files, global_hits):
        """change_kinds.sort_changes of the changes, rc files apart (their options are judged on their own)."""
        rc_hits = {p for p in global_hits if files.kind(p) == global_files.RC}
        ignored = change_kinds.bazelignored(self._read_head(".bazelignore") or "")
        return change_kinds.sort_changes(
            [c for c in changes if not any(p in rc_hits for p in c.paths_at_head + c.paths_at_base)],
            self.package_at_head, lambda path: self._package_at_base(base_commit, path), ignored)

    def _answered_by_a_recorded_graph(self, selection, changes, kinds, global_hits, graph_key):
        """Only source files' content changed: the graph is the one recorded for these BUILD files, if a run recorded
        it; whether the selection was filled from it."""
        if not (kinds.file_seeds and not (global_hits or kinds.changed_starlark or kinds.touched_packages)
                and all(c.status == "M" for c in changes) and graph_key()[0]):
            return False
        recorded, note = self.graphs.read(graph_key()[0], kinds.file_seeds)
        selection.notes.append(note)
        if recorded is None:
            return False
        reached_toolchains = toolchains.reached(recorded, kinds.file_seeds)
        self._fill_selection(selection, target_graphs.rdeps(recorded, kinds.file_seeds), kinds.file_seeds, {})
        if reached_toolchains:
            toolchains.select_users(self.bazel, selection, reached_toolchains)
        return True

    def _select_by_changed_files_and_rules(self, selection, base_commit, kinds, global_hits, global_reach):
        """What depends on the changed files and rules. A .bzl change is judged by what it changes: the packages that
        load it are compared rule by rule at both revisions (a macro's expansion); targets of the rule classes defined
        where the change reaches (a rule's implementation) are compared by their actions (rule_actions.py).
        global_reach: whether changed global files reached targets of their own (then no seed is no selection)."""
        bzl_packages, rule_classes = {}, set()
        if kinds.changed_starlark:
            bzl_packages = self._packages_loading(kinds.changed_starlark)
            rule_classes = bzl_files.rule_classes_reached(self.repo, kinds.changed_starlark)
            for package, paths in bzl_packages.items():
                kinds.touched_packages.setdefault(package, []).extend(paths)
        # A base-only global file (one head no longer loads) changes a file head loads too: head's set suffices.
        rule_seeds = self.base.changed_rules(kinds.touched_packages, base_commit, not global_hits) \
            if kinds.touched_packages else {}
        if kinds.file_seeds or rule_seeds or rule_classes or not global_reach:
            self._query_dependents(selection, base_commit, not global_hits, kinds.file_seeds, rule_seeds,
                                   bzl_packages if rule_classes else {}, rule_classes)

    def _add_external_targets(self, selection, external_targets, external_reasons):
        if external_targets:
            reasons = dict(external_reasons)
            graph.propagate(external_targets, reasons)
            selecting.add(self.bazel, selection, external_targets, reasons)

    def _add_what_rc_options_reach(self, selection, rc_reaches):
        for reached in rc_reaches:  # bazelrc_reach.Reached
            if reached.note:
                selection.notes.append(reached.note)
            selecting.add(self.bazel, selection, reached.targets,
                          {label: {reached.reason} for label in reached.targets},
                          reached.tests_only)

    def _judge_global_files(self, selection, base_commit, files, hits):
        """(external targets, their reasons, what changed rc options reach), or None when everything is selected."""
        def read_base(path):
            return self.repo.read_at(base_commit, path)

        selecting_everything = [p for p in hits if files.kind(p) == global_files.EVERYTHING]
        if selecting_everything:
            why = "; ".join("{}: {}".format(p, files.why_everything(p)) for p in selecting_everything)
            selecting.everything(self.bazel, selection, selecting_everything, why)
            return None
        judged_whole = [p for p in hits if files.kind(p) == global_files.JUDGED_WHOLE]
        unchanged = [p for p in judged_whole if externals.same_meaning(p, read_base(p), self._read_head(p))]
        if len(unchanged) < len(judged_whole):
            selecting.everything(self.bazel, selection, [p for p in judged_whole if p not in unchanged])
            return None
        if unchanged:
            selection.notes.append("{} changed no statement or value".format(", ".join(unchanged)))
        workspace_hits = [p for p in hits if files.kind(p) == global_files.WORKSPACE_LEVEL]
        external_targets, external_reasons = {}, {}
        if workspace_hits:
            try:
                external_reasons = externals.changed_targets(
                    read_base, self._read_head, self.bazel, lambda: self.base.own_bazel(base_commit),
                    lambda paths: bzl_files.reach(self.repo, paths), workspace_hits)
                if external_reasons:
                    external_targets = externals.dependents(self.bazel, external_reasons)
            except externals.Unjudged as why:
                selecting.everything(self.bazel, selection, workspace_hits, str(why))
                return None
            if not external_reasons:
                selection.notes.append("{} changed no registration, repository or external target".format(
                    ", ".join(workspace_hits)))
        rc_hits = [p for p in hits if files.kind(p) == global_files.RC]
        rc_reaches = []
        if rc_hits:
            # Head is the working tree: the checked-out commit (checked before an answer is returned), or WORKTREE.
            changed = bazelrc.changed_reaches(read_base, self._read_head)
            unknown = [name for reach, name in changed if reach == "everything"]
            if unknown:
                selecting.everything(self.bazel, selection, rc_hits, "`.bazelrc` option{} {} changed, which may change "
                                     "any result".format("s" if len(unknown) > 1 else "",
                                                         ", ".join("--" + n for n in unknown)))
                return None
            try:
                rc_reaches = [bazelrc_reach.resolve(self.bazel, reach, name) for reach, name in changed]
            except externals.Unjudged as why:
                selecting.everything(self.bazel, selection, rc_hits, str(why))
                return None
        return external_targets, external_reasons, rc_reaches

    def _packages_loading(self, starlark_paths):
        """Packages whose BUILD files load (transitively) one of these .bzl or .scl files, with the files."""
        expression = "rbuildfiles({})".format(", ".join(quote(p) for p in sorted(set(starlark_paths))))
        build_files = self.bazel.query_labels(expression, universe_scope="//...")
        return {graph.package_of(label): sorted(set(starlark_paths))
                for label in build_files if not label.startswith("@")}

    def _query_dependents(self, selection, base_commit, same_globals, file_seeds, rule_seeds, bzl_packages,
                          rule_classes=()):
        """One query of what depends on the seeds (rdeps, and the tests of test suites), then the selection."""
        parts = []
        if file_seeds:
            packages = sorted({graph.package_of(label) for label in file_seeds})
            regex = "^({})$".format("|".join(re.escape(label) for label in sorted(file_seeds)))
            parts.append("filter({}, {})".format(quote(regex), graph.packages_expression(packages, "*")))
        if rule_seeds:
            parts.append("set({})".format(" ".join(quote(label) for label in sorted(rule_seeds))))
        if bzl_packages:
            parts.append("kind({}, {})".format(quote("^({}) rule$".format("|".join(sorted(rule_classes)))),
                                               graph.packages_expression(sorted(bzl_packages), "all")))
        if not parts:
            selection.notes.append("no changed file belongs to a Bazel target")
            return selection
        seeds = " + ".join(parts)
        expression = "let seeds = {} in rdeps(//..., $seeds) + tests($seeds) + {}".format(seeds, toolchains.EXPRESSION)
        # Sky query mode (a universe scope) answers rdeps from Skyframe's own reverse edges, rather than
        # building the reverse graph of //... for every query: faster than a plain rdeps.
        targets = self.bazel.query_targets(expression, universe_scope="//...")
        implemented = {label: bzl_packages[graph.package_of(label)] for label, target in targets.items()
                       if graph.package_of(label) in bzl_packages and target.is_rule and target.kind in rule_classes}
        # Before the actions are compared: a toolchain's implementation has none of its own.
        seed_paths = {}
        rule_paths = ((label, paths) for label, (_, paths) in rule_seeds.items())
        for label, paths in [*file_seeds.items(), *rule_paths, *implemented.items()]:
            seed_paths.setdefault(label, []).extend(paths)
        reached_toolchains = toolchains.reached(targets, seed_paths)
        if implemented:
            targets, implemented = self._by_actions(selection, targets, implemented, base_commit, same_globals,
                                                    set(file_seeds) | set(rule_seeds))
        self._fill_selection(selection, targets, file_seeds, rule_seeds, implemented)
        return toolchains.select_users(self.bazel, selection, reached_toolchains) if reached_toolchains else selection

    def _by_actions(self, selection, targets, implemented, base_commit, same_globals, other_seeds):
        """(targets, {seed: .bzl paths}): the targets of changed rule classes (implemented, with the changed files that
        reach their rule), and what depends on them, compared by their actions at both revisions: only those whose
        actions differ stay seeds, and only what reaches a seed stays among the targets."""
        workspace = self.base.workspace(base_commit)
        through_server = same_globals and self.base.package_path_trusted  # the workspace's server reads the base

        def base_actions(expression):
            if through_server:
                return self.bazel.aquery(expression, package_root=workspace)
            return self.base.own_bazel(base_commit).aquery(expression)

        compared = sorted(label for label in selecting.reaching(targets, implemented) if targets[label].is_rule
                          and label.startswith("//") and not label.startswith("//external:"))
        differing, why_not = rule_actions.compare(self.bazel, base_actions, compared)
        files = sorted({p for paths in implemented.values() for p in paths})
        if differing is None:
            selection.notes.append("{}: every target of the rule classes it reaches is selected: {}".format(
                ", ".join(files), why_not))
            return targets, implemented
        kept = selecting.reaching(targets, set(other_seeds) | differing)
        if len(differing) < len(compared):
            selection.notes.append("{}: {} of {} targets of the rule classes it reaches, or depending on them, have "
                                   "the same actions at both revisions".format(", ".join(files),
                                                                               len(compared) - len(differing),
                                                                          len(compared)))
        kept_targets = {label: target for label, target in targets.items() if label in kept}
        return kept_targets, {label: files for label in differing}

    def _fill_selection(self, selection, targets, file_seeds, rule_seeds, implemented=None):
        """The selection from the targets that reach the seeds (rdeps), with the reasons each is selected for.
        implemented: {label: .bzl paths} of targets selected for their rule's implementation."""
        reasons = {}
        for label, paths in file_seeds.items():
            reasons.setdefault(label, set()).update(paths)
        for label, (_, paths) in rule_seeds.items():
            reasons.setdefault(label, set()).update(paths)
        for label, paths in (implemented or {}).items():
            if label in targets:
                reasons.setdefault(label, set()).update(paths)
        graph.propagate(targets, reasons)
        selecting.fill(selection, targets, reasons)
        selecting.leave_out_incompatible(self.bazel, selection, targets)
        return selection

    def close(self, wait=True):
        """Stop the base revision's Bazel server. wait=False: return the thread stopping it (join it before exit),
        so that the run goes on while the server stops."""
        return self.base.close(wait)
