"""Labels, packages, and the reasons that flow from changed seeds to the targets that depend on them."""

import os

from releasekit.core import environment
from releasekit.selection.bazelquery import quote

RELEASE_KIND = "artifact_ci_release"


def propagate(targets, reasons):
    """Give each target the changed files of every seed it depends on.

    Each seed is a bit. Masks flow from the seeds along reverse edges in topological order (Kahn), so
    every edge is crossed once, whatever the number of seeds.
    """
    seeds = [label for label in reasons if label in targets]
    masks = {label: 1 << index for index, label in enumerate(seeds)}
    dependents, pending = {}, dict.fromkeys(targets, 0)
    for label, target in targets.items():
        # A test reached through a changed test_suite depends on the suite for this purpose.
        edges = [i for i in target.inputs if i in pending]
        edges += [(label, t) for t in target.test_suite_tests if t in pending]
        for edge in edges:
            source, dependent = edge if isinstance(edge, tuple) else (edge, label)
            dependents.setdefault(source, []).append(dependent)
            pending[dependent] += 1
    ready = [label for label, count in pending.items() if count == 0]
    while ready:
        label = ready.pop()
        mask = masks.get(label, 0)
        for dependent in dependents.get(label, ()):
            if mask:
                masks[dependent] = masks.get(dependent, 0) | mask
            pending[dependent] -= 1
            if pending[dependent] == 0:
                ready.append(dependent)
    for label, mask in masks.items():
        if label in reasons or not selectable(targets[label]):
            continue  # intermediate targets need no list of their own
        merged = reasons[label] = set()
        while mask:
            lowest = mask & -mask
            merged.update(reasons[seeds[lowest.bit_length() - 1]])
            mask ^= lowest


def selectable(target):
    return target.kind == RELEASE_KIND or target.is_test


def default_base_checkout(repo_root):
    """Outside the workspace (or //... would see it), one per repository, reused so its Bazel server stays warm."""
    import hashlib  # here: most selections never need a base checkout

    key = hashlib.sha256(os.path.realpath(repo_root).encode()).hexdigest()[:16]
    return os.path.join(environment.cache_directory(), "base-checkouts", key)


def label(package, path):
    return "//{}:{}".format(package, path[len(package) + 1:] if package else path)


def package_of(label):
    return label.split("//", 1)[1].split(":", 1)[0]


def packages_expression(packages, which):
    return "set({})".format(" ".join(quote("//{}:{}".format(p, which)) for p in packages))
