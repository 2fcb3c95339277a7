"""The release gate: which releases of a run may publish, given the outcome of the run's tests.

A test passed when Bazel says passed, or flaky (it failed, then passed on a retry). Any other outcome (failed,
timeout, build failed, no status) is a failing test, also when the test is quarantined: quarantine keeps a flaky
test from failing the run, it never lets a release through on a test that did not pass.

- `all` (the default): a release runs only when every test of the run passed, as a CI script's "any failing test,
  no release" does.
- `deps`: a release runs when no failing test shares a target with its transitive dependencies, from Bazel's target
  graph (never from package names; gate_graph.py): every dependency in this repository, the toolchains of this
  repository a rule resolves included, and in other repositories what BUILD files name (a library of a
  local_repository, a third-party package), not the rules' implicit dependencies there (toolchains, test runners,
  the release rules' own tools), which every test and release shares. When the graph cannot be computed, the run
  falls back to all or nothing and says so.
- When the tests' outcome is unknown (a release shard that could not read every test shard's report), every
  release is held back.

The releases the gate holds back never run; dispatch.py holds back, in turn, a release whose dependency release
did not publish. release_groups() keeps releases that depend on each other in one shard, where dispatch orders them.
"""

import dataclasses

from releasekit.core.errors import ReleasekitError
from releasekit.core.run_policy import GATE_DEPS, GateChoice
from releasekit.running.gate_graph import dependency_graph, deps_of
from releasekit.running.run_report import HELD_BACK, PASSED_STATES

_NAMED = 3  # failing tests a reason names before "and N more"


@dataclasses.dataclass
class GateDecision:
    choice: GateChoice
    failing: list  # the test Outcomes that did not pass
    held_back: dict  # release label -> reason
    notes: list
    unknown: str = None  # why the tests' outcome is not known, when it is not

    def fails_run(self, own_outcomes):
        """True when the run must fail for what the gate saw beyond its own outcomes: an unknown outcome, or a
        failing, unquarantined test of another run's report."""
        own = {id(outcome) for outcome in own_outcomes}
        return bool(self.unknown) or any(not t.quarantined and id(t) not in own for t in self.failing)

    def report(self, outcomes=(), full=True):
        """The gate's part of the run report; without full, of the history record (whose targets keep each held-back
        release's reason). held_back: every release held back, by the gate or, among outcomes, behind a dependency
        release that did not publish."""
        held = dict(self.held_back)
        held.update({outcome.label: outcome.reason for outcome in outcomes if outcome.status == HELD_BACK})
        return {"mode": self.choice.mode, "chosen_by": self.choice.chosen_by, "notes": self.notes,
                "failing_tests": [t.label for t in self.failing][:None if full else 20], "unknown": self.unknown,
                "held_back": dict(sorted(held.items())) if full else len(held)}

    def lines(self, outcomes):
        """What the run's summary says of the gate: its mode, its notes, and every release held back (by the gate,
        or behind a dependency release that did not publish) with the reason."""
        lines = ["gate: " + self.choice.describe()] + ["gate: " + note for note in self.notes]
        held = [outcome for outcome in outcomes if outcome.status == HELD_BACK]
        if held:
            lines.append("gate: {} release{} held back:".format(len(held), _plural(held)))
            lines += ["  {}: {}".format(outcome.label, outcome.reason) for outcome in held]
        return lines


def decide(choice, tests, releases, bazel, unknown=None, flags=()):
    """The GateDecision for releases, given the test Outcomes (this run's and other runs' reports). flags: the Bazel
    flags the tests ran with (the configured graph is read with them)."""
    failing = [test for test in tests if test.status not in PASSED_STATES]
    decision = GateDecision(choice, failing, {}, [], unknown)
    if unknown:
        reason = "held back: the tests' outcome is unknown ({}); nothing is published".format(unknown)
        decision.held_back = dict.fromkeys(releases, reason)
        return decision
    if not failing or not releases:
        return decision
    if choice.mode == GATE_DEPS:
        try:
            shared = shared_dependencies(bazel, [test.label for test in failing], releases, flags)
        except ReleasekitError as error:
            decision.notes.append("the target graph could not be computed ({}); all or nothing instead".format(error))
        else:
            by_label = {test.label: test for test in failing}
            for release, pairs in shared.items():
                named = ["{} {} (shares {})".format(test, _status(by_label[test]), target) for test, target in pairs]
                decision.held_back[release] = "held back (gate deps): " + _listed(named, len(pairs))
            return decision
    reason = "held back (gate all): {} test{} of the run did not pass: {}".format(
        len(failing), _plural(failing), _listed(["{} {}".format(t.label, _status(t)) for t in failing], len(failing)))
    decision.held_back = dict.fromkeys(releases, reason)
    return decision


def shared_dependencies(bazel, failing_tests, releases, flags=()):
    """{release: [(failing test, a target both depend on)]} for each release that shares one, from the transitive
    dependencies of both (gate_graph.dependency_graph)."""
    targets = dependency_graph(bazel, list(failing_tests) + list(releases), flags)
    owner = {}  # target -> the failing tests that reach it
    for test in failing_tests:
        for target in _closure(targets, test):
            owner.setdefault(target, []).append(test)
    shared = {}
    for release in releases:
        found = {}
        for target in sorted(_closure(targets, release), key=lambda t: (targets[t].is_rule, t)):  # files first
            for test in owner.get(target, ()):
                found.setdefault(test, target)
        if found:
            shared[release] = sorted(found.items())
    return shared


def release_groups(bazel, releases):
    """(groups, note): the releases grouped so that a release and every release of the run it depends on (a
    jar's deps, a deploy release's images, a raw rule's release_deps) share a group, from one `bazel query`. When
    the graph cannot be computed, one group of all of them, and a note that says so."""
    if len(releases) < 2:
        return [[release] for release in releases], None
    try:
        targets = _closure_graph(bazel, releases)
    except ReleasekitError as error:
        return [sorted(releases)], "the releases stay in one shard: their dependencies could not be read ({})".format(
            getattr(error, "bazel_said", error))
    # A release depends on another when its dependencies reach that release or the artifact it publishes.
    reached_by = {release: release for release in releases}
    reached_by.update({_artifact_of(release): release for release in releases})
    parent = {release: release for release in releases}

    def root(release):
        while parent[release] != release:
            parent[release] = parent[parent[release]]
            release = parent[release]
        return release

    for release in releases:
        for target in _closure(targets, release):
            other = reached_by.get(target)
            if other is not None and other != release:
                parent[root(other)] = root(release)
    groups = {}
    for release in sorted(releases):
        groups.setdefault(root(release), []).append(release)
    return list(groups.values()), None


def _artifact_of(release):
    """The artifact target a release publishes, as the macros name it: the release's label without .ci/.dev."""
    for suffix in (".ci", ".dev"):
        if release.endswith(suffix):
            return release[:-len(suffix)]
    return release


def _closure_graph(bazel, labels):
    return bazel.query_targets(deps_of(labels))


def _closure(targets, label):
    seen, pending = {label}, [label]
    while pending:
        target = targets.get(pending.pop())
        for dependency in target.inputs if target is not None else ():
            if dependency not in seen and dependency in targets:
                seen.add(dependency)
                pending.append(dependency)
    return seen


def _status(test):
    return test.status + (" (quarantined)" if test.quarantined else "")


def _listed(items, total):
    shown = ", ".join(items[:_NAMED])
    return shown + (" and {} more".format(total - _NAMED) if total > _NAMED else "")


def _plural(items):
    return "" if len(items) == 1 else "s"
