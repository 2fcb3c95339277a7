"""Change selection: from a commit range to the minimal set of affected tests and releases.

The number of `bazel query` calls is constant, whatever the number of changed files:

  1. (only if BUILD files changed, or files were added, deleted or renamed) the rule
     definitions of the touched packages at head, and
  2. the same at base, in a reused detached worktree of the base revision, read by the workspace's own server
     (--package_path) unless a WORKSPACE-level file or .bazelrc differs or the base's own server is kept warm: rules
     whose definition differs, or that are new, are changed;
  3. (only if .bzl files changed) `rbuildfiles` in sky query mode: packages that load them;
  4. one union query, in sky query mode: rdeps of every seed (changed files that are targets, changed rules,
     every rule of a package a changed .bzl reaches), plus the tests of changed test_suites.
With a target graph store, a change to the content of source files alone queries nothing: rdeps come from the graph
an earlier run recorded for the same BUILD files, and a run that loaded //... records its own (target_graphs.py).
A `.bazelrc` change selects what its changed options reach (see bazelrc.py and bazelrc_reach.py); a change to
WORKSPACE or to a file it loads or names selects the dependents of the external targets it changes (externals.py). MODULE.bazel,
its lock file, .bazelversion and .bazelignore select everything, and say so, unless the change leaves every
statement (or the lock file's data) as it was. Recall comes first: when in doubt, a target is selected.
"""

import os
import re

from releasekit.core.errors import UsageError
from releasekit.selection import bazelrc, bazelrc_reach, bzl_files, externals, gitrepo, graph, target_graphs
from releasekit.selection.bazelquery import Bazel, quote
from releasekit.selection.selection_file import Selected, Selection

RELEASE_KIND = graph.RELEASE_KIND
EXCLUDING_TAGS = frozenset(["manual", "no-ci"])
BUILD_FILE_NAMES = ("BUILD.bazel", "BUILD")
GLOBAL_FILES = frozenset([
    "WORKSPACE", "WORKSPACE.bazel", "WORKSPACE.bzlmod", "MODULE.bazel", "MODULE.bazel.lock",
    ".bazelrc", ".bazelversion", ".bazelignore",
])
# Global files judged by nothing finer than "everything" when their content changed: bzlmod's (a change that leaves
# every statement, or the lock file's data, as it was selects nothing), the Bazel version, the ignored directories.
_SELECTING_EVERYTHING = frozenset(["MODULE.bazel", "MODULE.bazel.lock", "WORKSPACE.bzlmod", ".bazelversion",
                                   ".bazelignore"])


def _enclosing_package(path, exists):
    """The package a path lies in: the nearest directory above it where exists(its BUILD file), or None."""
    directory = os.path.dirname(path)
    while True:
        if any(exists(os.path.join(directory, name) if directory else name) for name in BUILD_FILE_NAMES):
            return directory
        if not directory:
            return None
        directory = os.path.dirname(directory)


def _has_build_file(workspace, package):
    return any(os.path.isfile(os.path.join(workspace, package, name)) for name in BUILD_FILE_NAMES)


class Collector:
    def __init__(self, workspace, bazel=None, base_checkout_dir=None, graphs=None):
        """graphs: a target_graphs.Prepared, to read and record target graphs (None: Bazel always loads them)."""
        self.repo = gitrepo.Repository(workspace)
        self.graphs = graphs
        self.workspace = self.repo.workspace
        self.bazel = bazel or Bazel(self.workspace)
        self.base_checkout_dir = base_checkout_dir
        self.base_bazel = None
        self._base_listings = {}  # base commit -> the paths it holds
        self._base_workspace = (None, None)  # (base commit, its checked-out workspace)

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
                "{} first, or pass --head WORKTREE to use the working tree as it is.".format(head, checked_out[:12], head)
            )
        has_tracked_changes = self.repo.start_tracked_changes_check()

        def check_clean():
            if has_tracked_changes():
                raise UsageError(
                    "The working tree of {} has uncommitted changes, so it is not --head {}. Commit or stash "
                    "them, or pass --head WORKTREE.".format(self.workspace, head)
                )

        return base_commit, head_commit, check_clean

    def _global_files(self):
        """(WORKSPACE-level files, the files they load or name (transitively), and the files .bazelrc imports; the
        Starlark files among them)."""
        read = lambda path: self.repo.read_at(gitrepo.WORKTREE, path)  # noqa: E731
        starlark, data = externals.workspace_files(read, externals.WORKSPACE_FILES)
        return set(GLOBAL_FILES) | starlark | data | bazelrc.workspace_imports(read, ".bazelrc"), starlark

    def package_at_head(self, path):
        return _enclosing_package(path, lambda build_file: os.path.isfile(os.path.join(self.workspace, build_file)))

    def _package_at_base(self, base_commit, path):
        if base_commit not in self._base_listings:
            self._base_listings[base_commit] = self.repo.tree_listing(base_commit)
        return _enclosing_package(path, self._base_listings[base_commit].__contains__)

    def collect(self, base, head):
        base_commit, head_commit, check_clean = self._resolve(base, head)

        def graph_key():  # (the key of head's target graph or None, notes): made when first needed
            if self.graphs is None or head_commit == gitrepo.WORKTREE:
                return None, []
            return self.graphs.key(self.repo, head_commit, global_files, starlark)

        try:
            global_files, starlark = self._global_files()
            selection = self._collect(base_commit, head_commit, global_files, graph_key)
        finally:
            # Checked concurrently with the work, and always before an answer is returned or a graph recorded.
            check_clean()
        key, notes = graph_key() if self.bazel.loaded_workspace else (None, [])  # the graph is loaded: record it
        selection.notes += notes + (self.graphs.record(key, self.bazel, head_commit) if key else [])
        return selection

    # -- the selection --------------------------------------------------------------------

    def _collect(self, base_commit, head_commit, global_files, graph_key):
        changes = self.repo.changes(base_commit, head_commit)
        changed_paths = sorted({p for c in changes for p in c.paths_at_head + c.paths_at_base})
        selection = Selection(base_commit, head_commit, False, [], [], changed_paths)
        if not changes:
            selection.notes.append("no file changed between base and head")
            return selection

        global_hits = sorted(p for p in changed_paths if p in global_files)
        rc_hits = [p for p in global_hits if os.path.basename(p).endswith("rc")]
        workspace_hits = [p for p in global_hits if p not in rc_hits]
        judged_whole = [p for p in workspace_hits if p in _SELECTING_EVERYTHING]
        unchanged = [p for p in judged_whole if externals.same_meaning(
            p, self.repo.read_at(base_commit, p), self.repo.read_at(gitrepo.WORKTREE, p))]
        if len(unchanged) < len(judged_whole):
            return self._everything(selection, [p for p in judged_whole if p not in unchanged])
        if unchanged:
            selection.notes.append("{} changed no statement or value".format(", ".join(unchanged)))
            workspace_hits = [p for p in workspace_hits if p not in unchanged]
        external_targets, external_reasons = {}, {}
        if workspace_hits:
            try:
                external_reasons = externals.changed_targets(
                    lambda path: self.repo.read_at(base_commit, path), lambda path: self.repo.read_at(gitrepo.WORKTREE, path),
                    self.bazel, lambda: self._base_bazel(base_commit),
                    lambda paths: bzl_files.reach(self.repo, paths), workspace_hits)
                if external_reasons:
                    external_targets = externals.dependents(self.bazel, external_reasons)
            except externals.Unjudged as why:
                return self._everything(selection, workspace_hits, str(why))
            if not external_reasons:
                selection.notes.append("{} changed no registration, repository or external target".format(
                    ", ".join(workspace_hits)))
        rc_reaches = []
        if rc_hits:
            # Head is the working tree: the checked-out commit (checked before an answer is returned), or WORKTREE.
            rc_reaches = bazelrc.changed_reaches(lambda path: self.repo.read_at(base_commit, path),
                                                 lambda path: self.repo.read_at(gitrepo.WORKTREE, path))
            unknown = [name for reach, name in rc_reaches if reach == "everything"]
            if unknown:
                return self._everything(selection, rc_hits, "`.bazelrc` option{} {} changed, which may change any "
                                        "result".format("s" if len(unknown) > 1 else "",
                                                        ", ".join("--" + n for n in unknown)))
            try:
                rc_reaches = [bazelrc_reach.resolve(self.bazel, reach, name) for reach, name in rc_reaches]
            except externals.Unjudged as why:
                return self._everything(selection, rc_hits, str(why))
            changes = [c for c in changes if not any(p in rc_hits for p in c.paths_at_head + c.paths_at_base)]

        file_seeds = {}        # label of a changed file at head -> [paths]
        touched_packages = {}  # package -> changed paths that may change its rule definitions
        changed_bzl = []
        for change in changes:
            for path in change.paths_at_head:
                name = os.path.basename(path)
                if path.endswith(".bzl"):
                    changed_bzl.append(path)
                    continue
                package = self.package_at_head(path)
                if package is None:
                    continue
                if name in BUILD_FILE_NAMES or change.status not in ("M", "T"):
                    touched_packages.setdefault(package, []).append(path)
                if name not in BUILD_FILE_NAMES:
                    file_seeds.setdefault(graph.label(package, path), []).append(path)
            if change.status in ("D", "R"):
                path = change.paths_at_base[0]
                if path.endswith(".bzl"):
                    continue
                package = self._package_at_base(base_commit, path)
                if package is not None:
                    touched_packages.setdefault(package, []).append(path)

        # A BUILD file that appears or disappears moves a package boundary: the files below it leave or join the
        # enclosing package (its globs), which must be compared at both revisions too.
        for change in changes:
            if change.status == "M":
                continue
            for path in change.paths_at_head + change.paths_at_base:
                if os.path.basename(path) not in BUILD_FILE_NAMES or not os.path.dirname(path):
                    continue
                inside_parent = os.path.join(os.path.dirname(os.path.dirname(path)), "_")
                for enclosing in (self.package_at_head(inside_parent), self._package_at_base(base_commit, inside_parent)):
                    if enclosing is not None:
                        touched_packages.setdefault(enclosing, []).append(path)

        # Only source files' content changed: the graph is the one recorded for these BUILD files, if a run recorded it.
        if file_seeds and not (global_hits or changed_bzl or touched_packages) and all(
                c.status == "M" for c in changes) and graph_key()[0]:
            recorded, note = self.graphs.read(graph_key()[0])
            selection.notes.append(note)
            if recorded is not None:
                return self._selected(selection, target_graphs.rdeps(recorded, file_seeds), file_seeds, {}, {}, ())

        # A .bzl change is judged by what it changes: the packages that load it are compared rule by rule at both
        # revisions (a macro's expansion); targets of the rule classes defined where the change reaches (a rule's
        # implementation) are taken whole.
        bzl_packages, rule_classes = {}, set()
        if changed_bzl:
            bzl_packages = self._packages_loading(changed_bzl)
            rule_classes = bzl_files.rule_classes_reached(self.repo, changed_bzl)
            for package, paths in bzl_packages.items():
                touched_packages.setdefault(package, []).extend(paths)

        # A base-only global file (one head no longer loads) changes a file head loads too: head's set suffices.
        rule_seeds = self._changed_rules(touched_packages, base_commit, not global_hits) if touched_packages else {}
        if file_seeds or rule_seeds or rule_classes or not (rc_hits or external_reasons):  # those have seeds of their own
            self._select(selection, file_seeds, rule_seeds, bzl_packages if rule_classes else {}, rule_classes)
        if external_targets:
            reasons = dict(external_reasons)
            graph.propagate(external_targets, reasons)
            self._add(selection, external_targets, reasons)
        return self._add_bazelrc_selection(selection, rc_reaches)

    def _add_bazelrc_selection(self, selection, rc_reaches):
        """Add what changed .bazelrc options reach (bazelrc_reach.Reached): a language's targets and their rdeps, tools
        built in the exec configuration and their rdeps, or the tests."""
        for reached in rc_reaches:
            if reached.note:
                selection.notes.append(reached.note)
            self._add(selection, reached.targets, {label: {reached.reason} for label in reached.targets},
                      reached.tests_only)
        selection.queries = self.bazel.queries_run + (self.base_bazel.queries_run if self.base_bazel else 0)
        return selection

    def _add(self, selection, targets, reasons, tests_only=False):
        """Add the selectable targets among targets to a selection, merging reasons with entries it has."""
        partial = Selection(selection.base, selection.head, False, [], [], selection.changed_files)
        self._fill(partial, targets, reasons)
        self._leave_out_incompatible(partial, targets)
        selection.notes += [note for note in partial.notes if note not in selection.notes]
        existing = {entry.label: entry for entry in selection.tests + selection.releases}
        for entry in partial.tests + ([] if tests_only else partial.releases):
            if entry.label in existing:
                existing[entry.label].reasons = sorted(set(existing[entry.label].reasons) | set(entry.reasons))
            else:
                (selection.releases if entry.kind == RELEASE_KIND else selection.tests).append(entry)

    def _changed_rules(self, touched_packages, base_commit, same_globals):
        """Rules of the touched packages that are new or defined differently at head than at base. same_globals: no
        WORKSPACE-level file, nor what it loads, nor .bazelrc differs between the revisions."""
        head_packages = sorted(p for p in touched_packages if _has_build_file(self.workspace, p))
        head_rules = (
            self.bazel.query_targets(graph.packages_expression(head_packages, "all"), definitions=True) if head_packages else {}
        )
        base_rules = self._base_rules(sorted(touched_packages), base_commit, same_globals)
        changed = {}
        for label, target in head_rules.items():
            before = base_rules.get(label)
            if before is None or before.definition != target.definition:
                changed[label] = (target, touched_packages[graph.package_of(label)])
        return changed

    def _base_workspace_dir(self, base_commit):
        """The workspace in a detached worktree of the base commit (checked out once per commit)."""
        if self._base_workspace[0] != base_commit:
            directory = self.base_checkout_dir or graph.default_base_checkout(self.repo.root)
            self._base_workspace = (base_commit, self.repo.checkout_of(base_commit, directory))
        return self._base_workspace[1]

    def _base_bazel(self, base_commit):
        """Bazel in the worktree of the base commit: a server of its own."""
        workspace = self._base_workspace_dir(base_commit)
        if self.base_bazel is None:
            self.base_bazel = Bazel(workspace, command=" ".join(self.bazel.command))
        return self.base_bazel

    def _base_rules(self, packages, base_commit, same_globals):
        workspace = self._base_workspace_dir(base_commit)
        existing = [p for p in packages if _has_build_file(workspace, p)]
        if not existing:
            return {}
        expression = graph.packages_expression(existing, "all")
        if same_globals:
            # The head's server reads the base's packages (--package_path), sparing a second server's start-up. That
            # gives the base's answer only where everything outside the packages is the same: WORKSPACE-level files,
            # what they load, .bazelrc. Trusted only if every target's BUILD file lies in the base's worktree.
            rules = self.bazel.base_package_definitions(expression, workspace)
            if rules is not None:
                return rules
        return self._base_bazel(base_commit).query_targets(expression, definitions=True)

    def _packages_loading(self, bzl_paths):
        """Packages whose BUILD files load (transitively) one of these .bzl files, with the files."""
        expression = "rbuildfiles({})".format(", ".join(quote(p) for p in sorted(set(bzl_paths))))
        build_files = self.bazel.query_labels(expression, universe_scope="//...")
        return {graph.package_of(label): sorted(set(bzl_paths)) for label in build_files if not label.startswith("@")}

    def _select(self, selection, file_seeds, rule_seeds, bzl_packages, rule_classes=()):
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
        expression = "let seeds = {} in rdeps(//..., $seeds) + tests($seeds)".format(seeds)
        # Sky query mode (a universe scope) answers rdeps from Skyframe's own reverse edges, rather than
        # building the reverse graph of //... for every query: faster than a plain rdeps.
        targets = self.bazel.query_targets(expression, universe_scope="//...")
        return self._selected(selection, targets, file_seeds, rule_seeds, bzl_packages, rule_classes)

    def _selected(self, selection, targets, file_seeds, rule_seeds, bzl_packages, rule_classes):
        """The selection from the targets that reach the seeds (rdeps), with the reasons each is selected for."""
        reasons = {}
        for label, paths in file_seeds.items():
            reasons.setdefault(label, set()).update(paths)
        for label, (_, paths) in rule_seeds.items():
            reasons.setdefault(label, set()).update(paths)
        for label, target in targets.items():
            package = graph.package_of(label)
            if package in bzl_packages and target.is_rule and target.kind in rule_classes:
                reasons.setdefault(label, set()).update(bzl_packages[package])
        graph.propagate(targets, reasons)
        self._fill(selection, targets, reasons)
        self._leave_out_incompatible(selection, targets)
        selection.queries = self.bazel.queries_run + (self.base_bazel.queries_run if self.base_bazel else 0)
        return selection

    def _everything(self, selection, global_hits, why=None):
        selection.everything = True
        selection.notes.append("{} changed{}: every test and release is selected".format(
            ", ".join(global_hits), " ({})".format(why) if why else ""))
        targets = self.bazel.query_targets("tests(//...) + kind({}, //...)".format(RELEASE_KIND))
        self._fill(selection, targets, {label: set(global_hits) for label in targets})
        self._leave_out_incompatible(selection, targets)
        selection.queries = self.bazel.queries_run
        return selection

    @staticmethod
    def _fill(selection, targets, reasons):
        for label, target in targets.items():
            if label.startswith("//external") or label.startswith("@") or EXCLUDING_TAGS.intersection(target.tags):
                continue
            if not graph.selectable(target):
                continue
            entry = Selected(label, target.kind, sorted(reasons.get(label, ())))
            if target.kind == RELEASE_KIND:
                selection.releases.append(entry)
            else:
                selection.tests.append(entry)

    def _leave_out_incompatible(self, selection, targets):
        """Targets incompatible with the target platform are never handed to Bazel by name (it fails on them)."""
        constrained = sorted(t.label for t in selection.tests + selection.releases if targets[t.label].constrained)
        if not constrained:
            return
        packages = sorted({graph.package_of(label) for label in constrained})
        regex = "^({})$".format("|".join(re.escape(label) for label in constrained))
        incompatible = self.bazel.incompatible("filter({}, {})".format(quote(regex), graph.packages_expression(packages, "all")))
        if incompatible:
            selection.tests = [t for t in selection.tests if t.label not in incompatible]
            selection.releases = [t for t in selection.releases if t.label not in incompatible]
            selection.notes.append("left out, incompatible with the target platform (target_compatible_with): {}".format(
                ", ".join(sorted(incompatible))))

    def close(self, wait=True):
        """Stop the base revision's Bazel server. wait=False: return the thread stopping it (join it before exit),
        so that the run goes on while the server stops."""
        if self.base_bazel is None:
            return None
        if wait:
            self.base_bazel.shutdown()
            return None
        return self.base_bazel.shutdown_in_background()
