"""The target graph the `deps` gate reads: what each failing test and each release depends on, by every edge.

Three answers of Bazel, merged:
- `bazel query 'deps(...)'`, tool and implicit edges included: every dependency in this repository;
- the same with `--noimplicit_deps`: what BUILD files name in other repositories (a library of a local_repository, a
  third-party package), not what rules add there themselves (toolchains, test runners, the release rules' own
  tools), which every test and release shares;
- `bazel cquery 'deps(...)' --output=graph`, with the run's Bazel flags, so that the server reuses the analysis of
  the tests' own invocation: the edges toolchain resolution adds, from a rule to the toolchain of this repository it
  resolves (its tool, its data), which a query cannot see. Platforms, constraints and toolchain types say where a
  target builds, not what: they are left out.
When one of them fails, GraphUnknown says which and why; the gate then falls back to all or nothing.
"""

import os
import re
import tempfile

from releasekit.core.errors import ReleasekitError
from releasekit.selection.bazelquery import ANSWER_OPTIONS, EDGE_OPTIONS, quote
from releasekit.selection.query_answers import Target, decode_query_proto

_USAGE_ERROR = 2  # Bazel's exit code for an option it does not take (a test-only flag given to cquery)
_EDGE = re.compile(r'^\s*"([^"]+)"(?:\s*->\s*"([^"]+)")?\s*$')
# Targets that choose where a target builds, not what it is made of: every target of a configuration shares them.
_WHERE_NOT_WHAT = frozenset(["platform", "constraint_setting", "constraint_value", "toolchain_type"])


class GraphUnknown(ReleasekitError):
    """The graph could not be read; the message says which answer failed and why."""


def dependency_graph(bazel, labels, flags=()):
    """{label: Target} of deps(labels): this repository's targets by every edge (toolchains too), and the targets of
    other repositories that BUILD files name."""
    targets = _query(bazel, labels, EDGE_OPTIONS, external_inputs=False)
    named = _query(bazel, labels, ("--tool_deps", "--noimplicit_deps"), external_inputs=True)
    for label, target in named.items():
        mine = targets.get(label)
        inputs = tuple(sorted(set(target.inputs) | set(mine.inputs))) if mine is not None else target.inputs
        targets[label] = Target(label, target.kind, inputs=inputs)
    edges, nodes = _configured(bazel, labels, flags)
    kinds = _kinds(bazel, {node for node in nodes if node.startswith("//") and node not in targets and not
                           nodes[node]})
    for source, destinations in edges.items():
        kept = [d for d in destinations if d.startswith("//") and kinds.get(d) not in _WHERE_NOT_WHAT]
        if not kept or kinds.get(source) in _WHERE_NOT_WHAT:
            continue
        mine = targets.get(source)
        if mine is None:
            mine = Target(source, "source file" if nodes.get(source) else kinds.get(source, "rule"))
        targets[source] = Target(source, mine.kind, inputs=tuple(sorted(set(mine.inputs) | set(kept))))
    for node, is_file in nodes.items():
        if node.startswith("//") and node not in targets and kinds.get(node) not in _WHERE_NOT_WHAT:
            targets[node] = Target(node, "source file" if is_file else kinds.get(node, "rule"))
    return targets


def _query(bazel, labels, edge_options, external_inputs):
    with tempfile.NamedTemporaryFile("w", suffix=".query", delete=False) as handle:
        handle.write(deps_of(labels))
    try:
        result = bazel.run(["query", "--query_file=" + handle.name, *edge_options, *ANSWER_OPTIONS, "--order_output=no",
                            "--output=proto", "--noproto:locations", "--noproto:default_values", "--universe_scope="],
                           binary=True)
    finally:
        os.unlink(handle.name)
    if result.returncode != 0:
        raise GraphUnknown("bazel query {}of the dependencies of {} failed (exit {}): {}".format(
            "--noimplicit_deps " if "--noimplicit_deps" in edge_options else "", _described(labels), result.returncode,
            _errors(result.stderr)))
    return decode_query_proto(result.stdout, external_inputs=external_inputs)


def _configured(bazel, labels, flags):
    """({source: [destinations]}, {node: whether it is a source file}) of the configured graph of deps(labels), by
    label (a target configured twice is one node). Every label must be there: one that did not analyse has edges
    nobody knows."""
    args = ["cquery", "--output=graph", "--nograph:factored", "--keep_going", *EDGE_OPTIONS, *ANSWER_OPTIONS,
            "--universe_scope="]
    expression = ["--", deps_of(labels)]
    result = bazel.run(args + list(flags) + expression)
    if result.returncode == _USAGE_ERROR and flags:  # a flag only `bazel test` takes: the configuration may differ
        result = bazel.run(args + expression)
    edges, nodes = {}, {}
    for line in result.stdout.splitlines():
        match = _EDGE.match(line)
        if not match:
            continue
        source, is_file = _node(match.group(1))
        nodes[source] = is_file
        if match.group(2):
            destination, is_file = _node(match.group(2))
            nodes[destination] = is_file
            edges.setdefault(source, set()).add(destination)
    missing = [label for label in labels if label not in nodes]
    if missing:
        raise GraphUnknown("bazel cquery of the dependencies of {} did not analyse {} (exit {}): {}".format(
            _described(labels), ", ".join(missing[:3]), result.returncode, _errors(result.stderr)))
    return edges, nodes


def _node(text):
    """(label, whether it is a source file) of a cquery graph node: `//pkg:name (configuration)`."""
    label, _, configuration = text.rpartition(" (")
    label = label or text
    return re.sub(r"^@@?(?=//)", "", label), configuration == "null)"


def _kinds(bazel, labels):
    """{label: rule class} of the rules among labels that only the configured graph names."""
    if not labels:
        return {}
    try:
        return {label: target.kind for label, target in bazel.query_targets(
            "set({})".format(" ".join(quote(label) for label in sorted(labels)))).items()}
    except ReleasekitError as error:
        raise GraphUnknown("bazel query of the kinds of {} failed: {}".format(
            _described(sorted(labels)), getattr(error, "bazel_said", error))) from None


def deps_of(labels):
    return "deps(set({}))".format(" ".join(quote(label) for label in labels))


def _described(labels):
    labels = list(labels)
    return ", ".join(labels[:3]) + (" and {} more".format(len(labels) - 3) if len(labels) > 3 else "")


def _errors(stderr):
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    errors = [line.strip() for line in text.splitlines() if line.startswith("ERROR")]
    return (" ".join(errors[:2]) if errors else (text.strip().splitlines() or ["no output"])[-1])[:600]
