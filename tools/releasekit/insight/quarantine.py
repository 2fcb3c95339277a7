"""Which tests run but cannot fail the build: a hand-written quarantine file, and `--quarantine auto`, which
derives the set from the run history. Quarantine never hides a regression.

Only CI runs of committed code count (run_facts): never `pr` runs, build-only runs, runs outside CI or runs of a
tree with uncommitted changes. A flake is a pass and a failure of one test at the same inputs: Bazel's `flaky`
(it failed, then passed on a retry, in one run), or a failure in a run whose tree, Bazel flags and platform are
those of a run in which it passed. A test with at least `flakes` flakes among its own last `window` runs is
quarantined, until it has passed `clean_runs` runs in a row since its last flake (run_policy.AutoQuarantine).

A quarantined test still runs, and a failure of every attempt is still a failure: in the report, in JUnit, and to
the release gate. After failing every attempt at `broken_after` consecutive commits it is broken, not flaky: out
of quarantine, whatever put it there, and the run fails. The file wins otherwise: `//pkg:test` is quarantined
whatever the history says, `!//pkg:test` never is. Every decision carries its evidence: runs, statuses, attempts.
"""

import dataclasses

from releasekit.core.errors import UsageError
from releasekit.insight.run_record import STATUSES

AUTO = "auto"
PASSED = ("passed", "flaky")
_FAILED = ("failed", "timeout")
ALL_ATTEMPTS_FAILED = ("failed", "timeout", "build failed")  # what breaks a test's run of passes


@dataclasses.dataclass
class Decision:
    label: str
    quarantined: bool
    source: str  # auto or file
    reason: str
    evidence: list = dataclasses.field(default_factory=list)  # [{run, commit, start, status, attempts}]
    broken: bool = False  # failed every attempt at broken_after consecutive commits: out of quarantine


@dataclasses.dataclass(frozen=True)
class RunFacts:
    """What quarantine reads of one history run. inputs: (tree, flags digest, platform), or None when the record
    does not say (records written before they did): such a run shows a flake only through Bazel's `flaky`."""

    id: str
    commit: str
    start: float
    inputs: tuple = None


def run_facts(record):
    """The RunFacts of a history record, or None when it is not a CI run of committed code."""
    if record.get("command") == "pr" or record.get("build_only") or record.get("ci") is False or record.get("dirty"):
        return None
    inputs = (record.get("tree"), record.get("flags"), record.get("platform"))
    return RunFacts(record["id"], record.get("commit"), record["start"], inputs if all(inputs) else None)


def add_test_runs(runs, record, labels=None):
    """Append record's runs of tests (of labels, when given) to runs: {label: [(RunFacts, status, attempts)]}."""
    facts = run_facts(record)
    if facts is None:
        return
    targets = record["targets"]
    others = targets.get("other_statuses", {})
    for index, (label, kind) in enumerate(zip(targets["labels"], targets["kinds"])):
        if kind == "T" and (labels is None or label in labels):
            letter = targets["statuses"][index]
            status = others.get(str(index), "?") if letter == "X" else STATUSES.get(letter, "?")
            runs.setdefault(label, []).append((facts, status, targets["attempts"][index]))


def runs_by_test(records, labels=None):
    """{label: [(RunFacts, status, attempts)]} of every test's CI runs in the records, oldest first."""
    runs = {}
    for record in records:
        add_test_runs(runs, record, labels)
    return runs


def read_quarantine_file(path):
    """(quarantined, never quarantined) labels of a quarantine file: one label per line, `!` before a label that
    must never be quarantined, # comments."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = [line.split("#", 1)[0].strip() for line in handle]
    except OSError as error:
        raise UsageError("Cannot read the quarantine file {} (--quarantine): {}. Pass a file of test labels, one per "
                         "line, or `auto`.".format(path, error.strerror)) from None
    bad = [line for line in lines if line and not line.lstrip("!").startswith(("//", "@"))]
    if bad:
        raise UsageError("The quarantine file {} (--quarantine) has lines that are not test labels: {}. Write one "
                         "label per line (//pkg:test), `!//pkg:test` for a test never to quarantine.".format(
                             path, ", ".join(bad[:3])))
    quarantined = {line for line in lines if line.startswith(("//", "@"))}
    return quarantined, {line[1:] for line in lines if line.startswith("!")}


def flake_indices(entries):
    """The indices of the entries that are flakes: flaky, or failed at the inputs of a run in which it passed."""
    passed_at = {facts.inputs for facts, status, _ in entries if status in PASSED and facts.inputs}
    return [index for index, (facts, status, _) in enumerate(entries)
            if status == "flaky" or (status in _FAILED and facts.inputs and facts.inputs in passed_at)]


def failing_streak(entries):
    """[(commit, entry)] of the distinct commits, newest first, at which the test failed every attempt since it
    last passed: its runs at consecutive commits."""
    streak = []
    for entry in reversed(entries):
        facts, status, _ = entry
        if status in PASSED:
            break
        if status in ALL_ATTEMPTS_FAILED and facts.commit not in [commit for commit, _ in streak]:
            streak.append((facts.commit, entry))
    return streak


def _evidence(entries):
    return [{"run": facts.id, "commit": facts.commit, "start": facts.start, "status": status, "attempts": attempts}
            for facts, status, attempts in entries]


def auto_decisions(runs, policy):
    """{label: Decision} for every test with a flake among its own last `window` runs; runs: runs_by_test()."""
    decisions = {}
    for label, entries in runs.items():
        entries = entries[-policy.window:]
        flakes = flake_indices(entries)
        if not flakes:
            continue
        evidence = _evidence(entries[index] for index in flakes)
        clean = 0  # passes in a row at the end, all after the last flake
        while clean < len(entries) and entries[-1 - clean][1] == "passed":
            clean += 1
        counted = "{} in its last {}".format(_count(len(flakes), "flake"),
                                              "run" if len(entries) == 1 else "{} runs".format(len(entries)))
        if len(flakes) < policy.flakes:
            decision = Decision(label, False, AUTO, "{} (quarantined from {})".format(counted, policy.flakes), evidence)
        elif clean >= policy.clean_runs:
            decision = Decision(label, False, AUTO, "{}, then {} in a row: released".format(
                counted, _count(clean, "clean run")), evidence)
        else:
            decision = Decision(label, True, AUTO, "{}; {} in a row since (released after {})".format(
                counted, _count(clean, "clean run"), policy.clean_runs), evidence)
        decisions[label] = decision
    return decisions


def broken(decision, streak, policy):
    """The decision that takes a quarantined test out when streak (failing_streak, this run's failure first when
    it counts) reaches broken_after commits; else None."""
    if len(streak) < policy.broken_after:
        return None
    reason = "broken, not flaky: failed every attempt at {} consecutive commits ({}); out of quarantine".format(
        len(streak), ", ".join((commit or "?")[:12] for commit, _ in streak))
    evidence = _evidence(entry for _, entry in streak if entry is not None)
    return Decision(decision.label, False, decision.source, reason, evidence + decision.evidence, broken=True)


def resolve(sources, runs, policy):
    """(quarantined labels, decisions): sources are quarantine files and AUTO; runs: runs_by_test() of the history
    (empty without one). The files win over the history's flakes; breakage wins over both."""
    decisions = auto_decisions(runs, policy) if AUTO in sources else {}
    for path in [s for s in sources if s != AUTO]:
        forced, never = read_quarantine_file(path)
        for label in forced:
            decisions[label] = Decision(label, True, "file", "listed in {}".format(path))
        for label in never:
            auto = decisions.get(label)
            decisions[label] = Decision(label, False, "file", "never quarantined: `!` in {}".format(path),
                                        auto.evidence if auto else [])
    for label, decision in list(decisions.items()):
        if decision.quarantined:
            decisions[label] = broken(decision, failing_streak(runs.get(label, [])), policy) or decision
    return {label for label, decision in decisions.items() if decision.quarantined}, list(decisions.values())


def describe(decision):
    runs = ", ".join("{} ({}, {} attempts)".format(e["run"][:12], e["status"], e["attempts"])
                     for e in decision.evidence[-5:])
    return "{} {}: {}{}".format("quarantined" if decision.quarantined else "not quarantined", decision.label,
                                decision.reason, "; runs " + runs if runs else "")


def _count(number, noun):
    return "{} {}{}".format(number, noun, "" if number == 1 else "s")
