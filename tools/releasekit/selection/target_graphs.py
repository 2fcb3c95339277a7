"""Target graphs recorded between CI runs: a fresh agent's collect without loading //... .

A main-line CI run that has Bazel load the workspace's graph records it (the proto answer of `deps(//...) + //...:*`,
Bazel's own edges and every target of every package) in a store: releasekit.yaml's `target_graphs`, or
--target-graphs. The record's key is everything the graph is made of, or there is no key (graph_key.py says what,
and why each way a graph could differ is closed). A later run whose change only edits the content of other files
(source files: no BUILD, .bzl, .scl or global file, nothing added, deleted or renamed) has the same key; when the
record is there, rdeps of the changed files are read from it and Bazel loads only what the tests need. Without a
record, without a key, with a record that is damaged or not of this key, or with a changed file in a package the
record does not hold, Bazel answers, as without a store.

Who writes: only a run that says it is on the main line (`--record-target-graphs`, which the generated pipelines pass
only there) and that its CI engine does not say builds a pull request; pull-request jobs read, never write. A record
is as trusted as the job that wrote it: give write access to the store to main-line jobs alone, and read access to
the rest.
"""

import gzip
import hashlib
import json
import threading

from releasekit.core.errors import ConflictError, ReleasekitError
from releasekit.selection import graph, graph_key
from releasekit.selection.graph_key import FORMAT

# Every target of every package (source files too, so a file a package does not declare is known not to be a
# target), and everything they depend on.
GRAPH_QUERY = "deps(//...) + //...:*"
NOT_RECORDED = "no target graph is recorded for these BUILD files yet; Bazel loads the graph"


class GraphStore:
    """Records in a store (core/stores), one object per key."""

    def __init__(self, destination, open_store):
        """open_store(destination, policy): the run context's (its credentials and TLS settings)."""
        from releasekit.core.http import RetryPolicy

        # A store that does not answer costs a run a few seconds at most: Bazel answers instead.
        self.store = open_store(destination, RetryPolicy(attempts=2, total_seconds=5.0, timeout=5.0))

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
            return None, "the target graph at {} is not usable ({}); Bazel loads the graph".format(self.describe(key),
                                                                                                   error)

    def exists(self, key):
        try:
            return self.store.get(_object_name(key))[0] is not None
        except (ReleasekitError, OSError):
            return False

    def write(self, key, answer, commit):
        """Record Bazel's answer to GRAPH_QUERY under key; a note. Never raises: a run never fails for its record."""
        header = json.dumps({"format": FORMAT, "key": key, "commit": commit,
                             "sha256": hashlib.sha256(answer).hexdigest()})
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
    """The store and what Bazel says of itself, prepared in a thread while collect reads the change."""

    def __init__(self, find_destination, bazel_command, open_store, workspace=".", record=(False, None)):
        """find_destination(): the store's Destination, or None for no store (then nothing is read or recorded);
        open_store(destination, policy): the run context's. record: (whether this run may record graphs, why not)."""
        self._ready = Background(lambda: _prepare(find_destination, list(bazel_command), open_store, workspace),
                                 "target-graphs")
        self._keys = {}
        self._missing = set()  # keys read and found not recorded: no second request before recording
        self._may_record, self._why_not_recorded = record

    def key(self, repo, head_commit, files):
        """(the key of head's target graph or None, notes), made once per head commit. files: the GlobalFiles."""
        if head_commit not in self._keys:
            store, identity, why_not = self._ready.value()
            key = None
            if store is not None and identity is not None:
                key, why_not = graph_key.loading_key(repo, head_commit, files, identity)
            self._keys[head_commit] = key, ["no target graph is read or recorded: " + why_not] if why_not else []
        return self._keys[head_commit]

    def read(self, key, seeds):
        """(the graph recorded under key or None, a note). seeds: {label: paths} of the changed files; a file of a
        package the record does not hold cannot be answered from it."""
        recorded, note = self._ready.value()[0].read(key)
        if recorded is None:
            if note == NOT_RECORDED:
                self._missing.add(key)
            return None, note
        packages = {graph.package_of(label) for label in recorded if label.startswith("//")}
        unknown = sorted({graph.package_of(label) for label in seeds} - packages)
        if unknown:
            return None, "the recorded target graph holds no package {}; Bazel loads the graph".format(
                ", ".join("//" + p for p in unknown[:3]))
        return recorded, note

    def record(self, key, bazel, head_commit):
        """Notes. Bazel has loaded //... at head: record its graph, unless a run recorded it already, or this run may
        not record."""
        store = self._ready.value()[0]
        if key not in self._missing and store.exists(key):
            return []
        if not self._may_record:
            return ["the target graph is not recorded: " + self._why_not_recorded]
        try:
            return [store.write(key, bazel.query(GRAPH_QUERY, "proto"), head_commit)]
        except ReleasekitError as error:
            return ["the target graph was not recorded ({})".format(error)]


def _prepare(find_destination, bazel_command, open_store, workspace):
    """(GraphStore, graph_key.BazelIdentity or None, why not), or (None, None, None) without a store."""
    destination = find_destination()
    if destination is None:
        return None, None, None
    identity = Background(lambda: graph_key.identify(bazel_command, workspace), "bazel-identity")
    store = GraphStore(destination, open_store)  # imports the HTTP stack meanwhile
    return (store,) + identity.value()


def rdeps(recorded, seeds):
    """rdeps(//..., seeds) over a recorded graph: the seeds that are targets and every target reaching them."""
    dependents = {}
    for label, target in recorded.items():
        for source in target.inputs:
            dependents.setdefault(source, []).append(label)
    reached = {label for label in seeds if label in recorded}
    pending = list(reached)
    while pending:
        for dependent in dependents.get(pending.pop(), ()):
            if dependent not in reached:
                reached.add(dependent)
                pending.append(dependent)
    return {label: target for label, target in recorded.items() if label in reached}  # in the graph's order
