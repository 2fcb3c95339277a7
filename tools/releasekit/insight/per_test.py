"""Each test's own last `window` CI runs, over a history read once, oldest first: what `releasekit insight` shows of
flaky and quarantined tests, decided as `--quarantine auto` decides (quarantine.py).

Ring buffers, one row per test: the run's number, its status letter, the attempts and whether the test was
quarantined in it. A record costs a few numpy operations, not one per test, and memory grows with the number of
tests times the window, not with the history.
"""

import numpy

from releasekit.insight import quarantine
from releasekit.insight.run_record import STATUS_LETTERS, STATUSES

_TEST, _PASSED, _QUARANTINED = ord("T"), ord(STATUS_LETTERS["passed"]), ord("1")
LAST = 5  # the last runs of a test the page shows


class PerTestWindows:
    def __init__(self, policy):
        self.policy, self.window = policy, policy.window
        self.runs = []  # RunFacts of each CI run added, by number
        self.count = numpy.zeros(0, dtype=numpy.int64)
        self.run = numpy.zeros((0, self.window), dtype=numpy.int64)
        self.status = numpy.zeros((0, self.window), dtype=numpy.uint8)
        self.attempts = numpy.zeros((0, self.window), dtype=numpy.int64)
        self.quarantined = numpy.zeros((0, self.window), dtype=bool)

    def add(self, record, ids):
        """A history record (oldest first); ids: its targets' label ids (statistics.Figures numbers labels)."""
        facts = quarantine.run_facts(record)
        if facts is None:
            return
        targets = record["targets"]
        tests = numpy.frombuffer(targets["kinds"].encode("ascii"), dtype=numpy.uint8) == _TEST
        if not tests.any():
            return
        label_ids = ids[tests]
        self._grow(int(label_ids.max()) + 1)
        slot = self.count[label_ids] % self.window
        self.run[label_ids, slot] = len(self.runs)
        self.status[label_ids, slot] = numpy.frombuffer(targets["statuses"].encode("ascii"), dtype=numpy.uint8)[tests]
        self.attempts[label_ids, slot] = numpy.asarray(targets["attempts"], dtype=numpy.int64)[tests]
        marks = targets.get("quarantined")
        self.quarantined[label_ids, slot] = (
            numpy.frombuffer(marks.encode("ascii"), dtype=numpy.uint8)[tests] == _QUARANTINED if marks else False)
        self.count[label_ids] += 1
        self.runs.append(facts)

    def _grow(self, size):
        if size <= len(self.count):
            return
        size = max(size, 2 * len(self.count))

        def grown(array):
            return numpy.concatenate([array, numpy.zeros((size - len(array),) + array.shape[1:], dtype=array.dtype)])

        self.count, self.run, self.status = grown(self.count), grown(self.run), grown(self.status)
        self.attempts, self.quarantined = grown(self.attempts), grown(self.quarantined)

    def _order(self, label_id):
        """The slots of a test's window, oldest first."""
        count = int(self.count[label_id])
        if count <= self.window:
            return list(range(count))
        start = count % self.window
        return list(range(start, self.window)) + list(range(start))

    def entries(self, label_id):
        """quarantine.runs_by_test()' entries of one test: [(RunFacts, status, attempts)], oldest first."""
        return [(self.runs[int(self.run[label_id, slot])], STATUSES.get(chr(int(self.status[label_id, slot])), "?"),
                 int(self.attempts[label_id, slot])) for slot in self._order(label_id)]

    def figures(self, labels):
        """Every test that flaked or was quarantined in its window: the decision --quarantine auto would take, its
        last statuses, and how many of its last runs failed every attempt (the page shows those in red: quarantine
        keeps the run green, not the test)."""
        filled = numpy.arange(self.window)[None, :] < self.count[:, None]
        not_passed = ((self.status != _PASSED) & filled).any(axis=1)
        ever_quarantined = (self.quarantined & filled).any(axis=1)
        last_quarantined = self.quarantined[numpy.arange(len(self.count)), (self.count - 1) % self.window]
        shown = []
        for label_id in numpy.flatnonzero(not_passed | ever_quarantined):
            entries = self.entries(int(label_id))
            label = labels[int(label_id)]
            decision = quarantine.auto_decisions({label: entries}, self.policy).get(label)
            if decision is None and not ever_quarantined[label_id]:
                continue
            if decision is None:
                decision = quarantine.Decision(label, bool(last_quarantined[label_id]), "file",
                                               "quarantined in {} of its last {} runs (not by its flakes: a quarantine "
                                               "file)".format(int(self.quarantined[label_id][filled[label_id]].sum()),
                                                              len(entries)))
            verdict = None
            if decision.quarantined or ever_quarantined[label_id]:  # broken: out of quarantine, not flaky
                verdict = quarantine.broken(decision, quarantine.failing_streak(entries), self.policy)
            failing = 0
            while failing < len(entries) and entries[-1 - failing][1] in quarantine.ALL_ATTEMPTS_FAILED:
                failing += 1
            flakes = len(decision.evidence) if decision.source == quarantine.AUTO else 0
            shown.append({"label": label, "runs": len(entries), "flakes": flakes,
                          "flake_rate": round(flakes / len(entries), 4), "broken": verdict is not None,
                          "quarantined": decision.quarantined and verdict is None,
                          "decision": (verdict or decision).reason, "evidence": decision.evidence,
                          "last_statuses": [status for _, status, _ in entries[-LAST:]],
                          "failing_at_last_runs": failing})
        return sorted(shown, key=lambda t: (-t["failing_at_last_runs"], -t["flake_rate"], t["label"]))
