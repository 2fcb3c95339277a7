"""Target graphs recorded between CI runs: a fresh agent's collect without loading //... .

A run that has Bazel load the workspace's graph records it (the proto answer of `deps(//...)`, Bazel's own edges) in
a store: releasekit.yaml's `target_graphs`, or --target-graphs. The record's key is everything the graph is made of:
  - the Bazel command and `bazel --version`;
  - every path of the workspace's tree at head (globs read the listing), with the content of every BUILD and .bzl
    file, WORKSPACE-level file, file those load or name (a lock file a repository rule reads), .bazelrc and what it
    imports, symbolic link and submodule;
  - the BUILD, .bzl and WORKSPACE files of each local repository a WORKSPACE-level file names outside the workspace.
A later run whose change only edits the content of other files (source files: no BUILD, .bzl or WORKSPACE-level
file, nothing added, deleted or renamed) has the same key; when the record is there, rdeps of the changed files are
read from it and Bazel loads only what the tests need. Without a record, with an untracked file in the workspace (it
may join a glob), or with a record that is damaged or not of this key, Bazel answers, as without a store.
"""

import gzip
import hashlib
import json
import os
import re
import subprocess
import threading

from releasekit.core.errors import ConflictError, ReleasekitError
from releasekit.selection.gitrepo import WORKTREE

FORMAT = "releasekit target graph 1"
GRAPH_QUERY = "deps(//...)"
NOT_RECORDED = "no target graph is recorded for these BUILD files yet; Bazel loads the graph"
_LOADING_NAMES = frozenset(["BUILD", "BUILD.bazel", "WORKSPACE", "WORKSPACE.bazel", "MODULE.bazel", "REPO.bazel"])
_LINK_OR_SUBMODULE = frozenset(["120000", "160000"])
_LITERAL_PATH_RE = re.compile(r"""\bpath\s*=\s*["']([^"']+)["']""")


class GraphStore:
    """Records in a store (a directory, an HTTP store, S3), one object per key."""

    def __init__(self, destination, environ=None):
        from releasekit.core.http import RetryPolicy
        from releasekit.publishing.stores import open_store

        # A store that does not answer costs a run a few seconds at most: Bazel answers instead.
        self.store = open_store(destination, RetryPolicy(attempts=2, total_seconds=5.0, timeout=5.0), environ)

    def describe(self, key=""):
        return self.store.describe(_object_name(key) if key else "")

    def read(self, key):
        """(targets by label, note): the graph recorded under key, or None and why not."""
        try:
            content, _ = self.store.get(_object_name(key))
        except (ReleasekitError, OSError) as error:
            return None, "the target graph store could not be read ({}); Bazel loads the graph".format(error)
        if content is None:
            return None, NOT_RECORDED
        try:
            header, _, answer = gzip.decompress(content).partition(b"\n")
            facts = json.loads(header)
            if facts.get("format") != FORMAT or facts.get("key") != key:
                raise ValueError("it is not the record of this key")
            if facts.get("sha256") != hashlib.sha256(answer).hexdigest():
                raise ValueError("its content does not match its checksum")
            from releasekit.selection.query_answers import decode_query_proto

            return decode_query_proto(answer, external_inputs=True), "read the target graph recorded at {} ({})".format(
                str(facts.get("commit", "?"))[:12], self.describe(key))
        except (OSError, EOFError, ValueError, ReleasekitError) as error:
            return None, "the target graph at {} is not usable ({}); Bazel loads the graph".format(self.describe(key), error)

    def exists(self, key):
        try:
            return self.store.get(_object_name(key))[0] is not None
        except (ReleasekitError, OSError):
            return False

    def write(self, key, answer, commit):
        """Record Bazel's answer to GRAPH_QUERY under key; a note. Never raises: a run never fails for its record."""
        header = json.dumps({"format": FORMAT, "key": key, "commit": commit, "sha256": hashlib.sha256(answer).hexdigest()})
        try:
            self.store.put(_object_name(key), gzip.compress(header.encode("utf-8") + b"\n" + answer, 6),
                           if_none_match=True)
        except ConflictError:
            return "the target graph of these BUILD files was recorded meanwhile"
        except (ReleasekitError, OSError) as error:
            return "the target graph was not recorded ({})".format(error)
        return "recorded the target graph at {}".format(self.describe(key))


def _object_name(key):
    return "{}.graph.gz".format(key)


class Background:
    """A value made in a thread (a subprocess, an import) while collect reads the change."""

    def __init__(self, make, name):
        self._make, self._value, self._error = make, None, None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            self._value = self._make()
        except Exception as error:  # handed to the caller of value(), in its own thread
            self._error = error

    def value(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class Prepared:
    """The store and what Bazel says of its version, prepared in a thread while collect reads the change."""

    def __init__(self, find_destination, bazel_command, environ=None):
        """find_destination(): the store's Destination, or None for no store (then nothing is read or recorded)."""
        self._ready = Background(lambda: _prepare(find_destination, list(bazel_command), environ), "target-graphs")
        self._keys = {}
        self._missing = set()  # keys read and found not recorded: no second request before recording

    def key(self, repo, head_commit, global_files, starlark_files):
        """(the key of head's target graph or None, notes), made once per head commit."""
        if head_commit not in self._keys:
            store, identity = self._ready.value()
            key, why_not = loading_key(repo, head_commit, global_files, starlark_files, identity) if store else (None, None)
            self._keys[head_commit] = key, ["no target graph is read or recorded: " + why_not] if why_not else []
        return self._keys[head_commit]

    def read(self, key):
        """(the graph recorded under key or None, a note)."""
        graph, note = self._ready.value()[0].read(key)
        if graph is None and note == NOT_RECORDED:
            self._missing.add(key)
        return graph, note

    def record(self, key, bazel, head_commit):
        """Notes. Bazel has loaded //... at head: record its graph, unless a run recorded it already."""
        store = self._ready.value()[0]
        if key not in self._missing and store.exists(key):
            return []
        try:
            return [store.write(key, bazel.query(GRAPH_QUERY, "proto"), head_commit)]
        except ReleasekitError as error:
            return ["the target graph was not recorded ({})".format(error)]


def _prepare(find_destination, bazel_command, environ):
    """(GraphStore, bazel identity) or (None, None) without a store."""
    destination = find_destination()
    if destination is None:
        return None, None
    try:
        version = subprocess.Popen(bazel_command + ["--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True)
    except OSError:
        version = None
    store = GraphStore(destination, environ)  # imports the HTTP stack meanwhile
    identity = None
    if version is not None:
        try:
            answer = version.communicate(timeout=60)[0].strip()
            identity = "{} ({})".format(" ".join(bazel_command), answer) if version.returncode == 0 and answer else None
        except subprocess.TimeoutExpired:
            version.kill()
    return store, identity


def loading_key(repo, head_commit, global_files, starlark_files, identity):
    """(key, None), or (None, why no key can be made): the key of head's target graph (see the module's text).
    identity: the Bazel command and its `--version` answer, or None."""
    if identity is None:
        return None, "`bazel --version` gave no answer"
    untracked = [path for path in repo.untracked_paths() if not _bazel_output_link(path)]
    if untracked:
        return None, "files git does not track are in the workspace ({}{}); a glob may take them".format(
            ", ".join(untracked[:3]), ", ..." if len(untracked) > 3 else "")
    lines = [FORMAT, "bazel " + identity]
    for mode, object_id, path in repo.tree_entries(head_commit):
        loading = (mode in _LINK_OR_SUBMODULE or path.endswith((".bzl", ".scl")) or path in global_files
                   or os.path.basename(path) in _LOADING_NAMES)
        lines.append("{} {}{}".format(mode, path, " " + object_id if loading else ""))
    for path in local_repository_paths(repo, starlark_files):
        lines.append("local repository {} {}".format(path, _repository_fingerprint(path)))
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest(), None


def _bazel_output_link(path):
    # Bazel's convenience links (bazel-bin, bazel-<workspace>, ...) lead out of the workspace; //... never enters them.
    return "/" not in path.rstrip("/") and path.startswith("bazel-")


def local_repository_paths(repo, starlark_files):
    """Directories outside the workspace that WORKSPACE-level files name by a literal `path = "..."`."""
    paths = set()
    for name in starlark_files:
        for path in _LITERAL_PATH_RE.findall(repo.read_at(WORKTREE, name) or ""):
            absolute = os.path.realpath(os.path.join(repo.workspace, path))
            if not (absolute + os.sep).startswith(os.path.realpath(repo.workspace) + os.sep):
                paths.add(absolute)
    return sorted(paths)


def _repository_fingerprint(directory):
    """The BUILD, .bzl and WORKSPACE files of a directory and their content: all that can give its targets edges into
    the workspace (its globs list its own files only)."""
    digest = hashlib.sha256()
    for root, directories, files in os.walk(directory):
        directories[:] = sorted(d for d in directories if d != ".git" and not (root == directory and d.startswith("bazel-")))
        for name in sorted(files):
            if name in _LOADING_NAMES or name.endswith((".bzl", ".scl")):
                path = os.path.join(root, name)
                digest.update(os.path.relpath(path, directory).encode("utf-8", "surrogateescape") + b"\0")
                try:
                    with open(path, "rb") as handle:
                        digest.update(hashlib.sha256(handle.read()).digest())
                except OSError:
                    digest.update(b"unreadable")
    return digest.hexdigest()


def rdeps(graph, seeds):
    """rdeps(//..., seeds) over a recorded graph: the seeds that are targets and every target reaching them."""
    dependents = {}
    for label, target in graph.items():
        for source in target.inputs:
            dependents.setdefault(source, []).append(label)
    reached = {label for label in seeds if label in graph}
    pending = list(reached)
    while pending:
        for dependent in dependents.get(pending.pop(), ()):
            if dependent not in reached:
                reached.add(dependent)
                pending.append(dependent)
    return {label: target for label, target in graph.items() if label in reached}  # in the graph's order
