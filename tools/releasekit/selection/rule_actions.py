"""Whether a change that reaches a rule's implementation changes what its targets do: their actions, at both revisions.

A .bzl change that reaches a rule class (the file defines it, or loads a file that changed) may change the actions of
every target of that class, and through the providers those return, the actions of every target that depends on
them. Those targets (the rule class's, and their rdeps) are asked of `aquery` at head and at base, and each action
compared by what decides what it does and makes: its mnemonic, Bazel's action key, command line, environment, and
inputs and outputs by path (a test's TestRunner action carries its environment and arguments; a runfiles tree its
files). A target whose actions are all the same at both revisions builds and runs as before: a refactor that produces
the same actions selects nothing. What is selected is the targets whose actions differ, and what depends on them.
The comparison is made only where it is cheap (at most LIMIT targets) and Bazel answers at both revisions; otherwise
every target of the rule class stays selected, as before.
"""

from releasekit.core.errors import BazelError
from releasekit.selection.bazelquery import quote

LIMIT = 200


def compare(head_bazel, base_actions, labels):
    """(the labels whose actions differ between the revisions, None) or (None, why they were not compared).
    base_actions(expression): the base revision's aquery answer."""
    if len(labels) > LIMIT:
        return None, "{} targets would be compared, more than {}".format(len(labels), LIMIT)
    expression = "set({})".format(" ".join(quote(label) for label in sorted(labels)))
    try:
        head = fingerprints(head_bazel.aquery(expression))
        base = fingerprints(base_actions(expression))
    except BazelError as error:
        return None, "aquery did not answer at both revisions ({})".format(str(error)[:300])
    return {label for label in labels if head.get(label) != base.get(label)}, None


def fingerprints(answer):
    """{label: sorted tuple of its actions, each (mnemonic, action key, arguments, environment, inputs, outputs)}."""
    fragments = {f["id"]: (f.get("label", ""), f.get("parentId")) for f in answer.get("pathFragments", ())}
    paths = {}

    def path_of(fragment_id):
        if fragment_id not in paths:
            label, parent = fragments.get(fragment_id, ("?", None))
            paths[fragment_id] = (path_of(parent) + "/" + label) if parent else label
        return paths[fragment_id]

    artifacts = {a["id"]: path_of(a["pathFragmentId"]) for a in answer.get("artifacts", ())}
    depsets = {d["id"]: d for d in answer.get("depSetOfFiles", ())}
    expanded = {}

    def files_of(depset_id):
        if depset_id not in expanded:
            expanded[depset_id] = frozenset()  # a cycle, never in a valid answer, ends here
            entry = depsets.get(depset_id, {})
            found = {artifacts.get(i, "?") for i in entry.get("directArtifactIds", ())}
            for child in entry.get("transitiveDepSetIds", ()):
                found |= files_of(child)
            expanded[depset_id] = frozenset(found)
        return expanded[depset_id]

    targets = {t["id"]: t["label"] for t in answer.get("targets", ())}
    found = {}
    for action in answer.get("actions", ()):
        inputs = frozenset().union(*[files_of(i) for i in action.get("inputDepSetIds", ())])
        environment = tuple(sorted((e.get("key", ""), e.get("value", ""))
                                   for e in action.get("environmentVariables", ())))
        fingerprint = (action.get("mnemonic", ""), action.get("actionKey", ""), tuple(action.get("arguments", ())),
                       environment, tuple(sorted(inputs)),
                       tuple(sorted(artifacts.get(i, "?") for i in action.get("outputIds", ()))))
        found.setdefault(_normalized(targets.get(action.get("targetId"), "?")), []).append(fingerprint)
    return {label: tuple(sorted(actions)) for label, actions in found.items()}


def _normalized(label):
    return label[2:] if label.startswith("@@//") else label[1:] if label.startswith("@//") else label
