"""Toolchains of this repository: the edges `bazel query` cannot see.

A rule that declares `toolchains = [type]` is given, at analysis time, the toolchain registered for its platform. A
query knows neither that edge nor the one from a toolchain() rule to the implementation it names, so rdeps of a
toolchain's tool stops at the implementation. A change that reaches a toolchain() rule of this repository (a file of
its implementation, its tool or data, or the toolchain() rule itself) changes what every rule resolving its type
builds. Those rules are found on the configured graph, where toolchain resolution is an edge: one
`bazel cquery 'rdeps(//..., set(<types and implementations>))'` over the targets of //... (an analysis of every
target, only when a change reaches a toolchain of this repository); they and what depends on them are selected. When
that cquery fails, everything is selected and the note names the toolchain.
"""

from releasekit.core.errors import BazelError
from releasekit.selection import selecting
from releasekit.selection.bazelquery import quote

# Added to collect's union query: every toolchain() rule of the repository, with its toolchain and toolchain_type.
EXPRESSION = "kind({}, //...)".format(quote("^toolchain rule$"))


class Reached:
    """A toolchain() rule a change reaches: its label, implementation and type, and the changed files that reach it."""

    __slots__ = ("label", "implementation", "type", "paths")

    def __init__(self, label, implementation, toolchain_type, paths):
        self.label, self.implementation, self.type, self.paths = label, implementation, toolchain_type, paths


def reached(targets, seeds):
    """[Reached] of this repository's toolchain() rules among targets whose implementation, or which themselves,
    reach a seed. seeds: {label: changed paths}."""
    rules = {label: target.toolchain for label, target in targets.items()
             if target.toolchain and label.startswith("//")}
    if not rules:
        return []
    hit = selecting.reaching(targets, seeds)
    found = []
    for label, (implementation, toolchain_type) in sorted(rules.items()):
        if implementation not in hit and label not in hit:
            continue
        closure = _dependencies(targets, [implementation, label])
        paths = sorted({path for seed in closure if seed in seeds for path in seeds[seed]})
        found.append(Reached(label, implementation, toolchain_type, paths))
    return found


def select_users(bazel, selection, found):
    """Add to the selection every target that resolves one of the toolchains found, or depends on one that does; when
    the configured graph cannot be read, everything."""
    paths = sorted({path for toolchain in found for path in toolchain.paths})
    names = ", ".join("{} (type {})".format(t.label, t.type) for t in found)
    try:
        users = bazel.configured_rdeps(sorted({t.type for t in found} | {t.implementation for t in found}))
        targets = bazel.query_targets("set({})".format(" ".join(quote(label) for label in sorted(users)))) \
            if users else {}
    except BazelError as error:
        selection.tests, selection.releases = [], []  # everything, once each
        selecting.everything(bazel, selection, paths or [t.label for t in found], "{} reach{} the toolchain{} {}, and "
                             "the rules that resolve {} could not be read from the configured graph ({})".format(
                                 ", ".join(paths), "" if len(paths) > 1 else "es", "s" if len(found) > 1 else "",
                                 names, "them" if len(found) > 1 else "it", error))
        return selection
    selecting.add(bazel, selection, targets, {label: set(paths) for label in targets})
    selection.notes.append("{} reach{} the toolchain{} {}: what resolves {} (bazel cquery) and what depends on it is "
                           "selected".format(", ".join(paths) or "a change", "" if len(paths) > 1 else "es",
                                             "s" if len(found) > 1 else "", names, "them" if len(found) > 1 else "it"))
    return selection


def _dependencies(targets, labels):
    """The labels among targets that labels depend on (themselves included), along rule inputs."""
    seen, pending = set(labels), list(labels)
    while pending:
        target = targets.get(pending.pop())
        for dependency in target.inputs if target is not None else ():
            if dependency not in seen:
                seen.add(dependency)
                pending.append(dependency)
    return seen
