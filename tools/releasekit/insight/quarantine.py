"""Which tests run but cannot fail the build: a hand-written quarantine file, and `--quarantine auto`, which
derives the set from the run history.

A flake is a run in which a test failed and then passed on a retry (Bazel's "flaky"), or failed at a commit at
which it also passed (the same inputs, two answers). A test with at least `flakes` flakes among the last `window`
history runs is quarantined, until it has passed `clean_runs` runs in a row since its last flake (config.py's
AutoQuarantine). The file wins: `//pkg:test` is quarantined whatever the history says, `!//pkg:test` never is.
Every decision carries its evidence: which runs, which statuses, how many attempts.
"""

import dataclasses

from releasekit.core.errors import UsageError
from releasekit.insight.run_record import STATUSES

AUTO = "auto"
_FAILED = ("failed", "timeout")


@dataclasses.dataclass
class Decision:
    label: str
    quarantined: bool
    source: str  # auto or file
    reason: str
    evidence: list = dataclasses.field(default_factory=list)  # [{run, commit, start, status, attempts}]


def read_quarantine_file(path):
    """(quarantined, never quarantined) labels of a quarantine file: one label per line, `!` before a label that
    must never be quarantined, # comments."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = [line.split("#", 1)[0].strip() for line in handle]
    except OSError as error:
        raise UsageError("Cannot read the quarantine file {}: {}. Pass a file of test labels, one per line, or "
                         "`auto`.".format(path, error.strerror)) from None
    bad = [line for line in lines if line and not line.lstrip("!").startswith(("//", "@"))]
    if bad:
        raise UsageError("The quarantine file {} has lines that are not test labels: {}. Write one label per line "
                         "(//pkg:test), `!//pkg:test` for a test never to quarantine.".format(path, ", ".join(bad[:3])))
    return {line for line in lines if line.startswith(("//", "@"))}, {line[1:] for line in lines if line.startswith("!")}


def test_runs(records):
    """{label: [(record, status, attempts)]} of every test in the records, oldest first."""
    runs = {}
    for record in records:
        targets = record["targets"]
        others = targets.get("other_statuses", {})
        for index, (label, kind) in enumerate(zip(targets["labels"], targets["kinds"])):
            if kind == "T":
                letter = targets["statuses"][index]
                status = others.get(str(index), "?") if letter == "X" else STATUSES.get(letter, "?")
                runs.setdefault(label, []).append((record, status, targets["attempts"][index]))
    return runs


def flake_indices(entries):
    """The indices of the entries that are flakes: flaky, or failed at a commit at which the test also passed."""
    passed_at = {record.get("commit") for record, status, _ in entries if status in ("passed", "flaky")}
    return [index for index, (record, status, _) in enumerate(entries)
            if status == "flaky" or (status in _FAILED and record.get("commit") in passed_at)]


def auto_decisions(records, policy):
    """{label: Decision} for every test with a flake among its last `window` runs in the records."""
    decisions = {}
    for label, entries in test_runs(records).items():
        entries = entries[-policy.window:]
        flakes = flake_indices(entries)
        if not flakes:
            continue
        evidence = [{"run": r["id"], "commit": r.get("commit"), "start": r["start"], "status": s, "attempts": a}
                    for r, s, a in (entries[index] for index in flakes)]
        clean = 0  # passes in a row at the end, all after the last flake
        while clean < len(entries) and entries[-1 - clean][1] == "passed":
            clean += 1
        counted = "{} flakes in its last {} runs".format(len(flakes), len(entries))
        if len(flakes) < policy.flakes:
            decision = Decision(label, False, AUTO, "{} (quarantined from {})".format(counted, policy.flakes), evidence)
        elif clean >= policy.clean_runs:
            decision = Decision(label, False, AUTO, "{}, then {} clean runs in a row: released".format(counted, clean),
                                evidence)
        else:
            decision = Decision(label, True, AUTO, "{}; {} clean runs in a row since (released after {})".format(
                counted, clean, policy.clean_runs), evidence)
        decisions[label] = decision
    return decisions


def resolve(sources, history_records, policy):
    """(quarantined labels, decisions): sources are quarantine files and AUTO; the files win over the history."""
    decisions = auto_decisions(history_records, policy) if AUTO in sources else {}
    for path in [s for s in sources if s != AUTO]:
        forced, never = read_quarantine_file(path)
        for label in forced:
            decisions[label] = Decision(label, True, "file", "listed in {}".format(path))
        for label in never:
            auto = decisions.get(label)
            decisions[label] = Decision(label, False, "file", "never quarantined: `!` in {}".format(path),
                                        auto.evidence if auto else [])
    return {label for label, decision in decisions.items() if decision.quarantined}, list(decisions.values())


def describe(decision):
    runs = ", ".join("{} ({}, {} attempts)".format(e["run"][:12], e["status"], e["attempts"]) for e in decision.evidence[-5:])
    return "{} {}: {}{}".format("quarantined" if decision.quarantined else "not quarantined", decision.label,
                                decision.reason, "; runs " + runs if runs else "")
