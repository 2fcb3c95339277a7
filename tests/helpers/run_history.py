"""A generated run history: a month (or more) of CI runs of a monorepo, written as the history stores them.

Deterministic from its seed. Test durations are lognormal (mostly short, a long tail), a few tests flake, about
half the test results come from the cache, every fourth run is a `pr` run (the rest `ci`), and run wall time drops
from `improved_from` on, so that a before/after comparison has something to show.
"""

import dataclasses
import datetime
import json
import os
import random

from releasekit.insight.run_record import FORMAT, FORMAT_VERSION, check_record, object_name


@dataclasses.dataclass
class HistoryShape:
    runs: int = 300
    targets: int = 200
    days: int = 30
    first_day: str = "2026-10-01"
    improved_from: str = "2026-10-16"  # from this day on, runs take about 40% of the time
    flaky_tests: int = 3
    release_share: float = 0.15
    seed: int = 17


def generate(shape):
    """The run records, oldest first."""
    rng = random.Random(shape.seed)
    releases = int(shape.targets * shape.release_share)
    labels = ["//services/s{:03d}:{}".format(i // 10,
                                             "release_{}.ci".format(i) if i < releases else "test_{}".format(i))
              for i in range(shape.targets)]
    kinds = "".join("R" if i < releases else "T" for i in range(shape.targets))
    base = [rng.lognormvariate(1.0, 1.0) for _ in labels]
    flaky = set(rng.sample(range(releases, shape.targets), shape.flaky_tests))
    first = datetime.datetime.strptime(shape.first_day, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc).timestamp()
    improved = datetime.datetime.strptime(shape.improved_from, "%Y-%m-%d").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    starts = sorted(first + rng.random() * shape.days * 86400 for _ in range(shape.runs))
    records = []
    for number, start in enumerate(starts):
        factor = 0.4 if start >= improved else 1.0
        statuses, seconds, attempts, cached, finished = [], [], [], [], {}
        wall = factor * rng.lognormvariate(6.0, 0.5)
        for index, kind in enumerate(kinds):
            duration = round(base[index] * rng.uniform(0.8, 1.25), 3)
            if kind == "R":
                statuses.append("R")
                cached.append("-")
                finished[str(index)] = round(start + wall * rng.uniform(0.5, 1.0), 3)
            elif index in flaky and rng.random() < 0.25:
                statuses.append("K")
                cached.append("0")
            else:
                statuses.append("F" if rng.random() < 0.002 else "P")
                cached.append("1" if rng.random() < 0.5 else "0")
            seconds.append(duration)
            attempts.append(2 if statuses[-1] == "K" else 1)
        commit = "{:040x}".format(rng.getrandbits(160))
        record = {"format": FORMAT, "format_version": FORMAT_VERSION, "id": "{:032x}".format(rng.getrandbits(128)),
                  "command": "pr" if number % 4 == 3 else "ci", "commit": commit,
                  "commit_time": int(start - rng.uniform(60, 3600)), "base": None,
                  "branch": "main", "pull_request": None, "start": round(start, 3), "end": round(start + wall, 3),
                  "wall_seconds": round(wall, 3), "shard": None, "machine": "agent-{}".format(number % 8),
                  "exit_code": 1 if "F" in statuses else 0, "build_only": False,
                  "targets": {"labels": labels, "kinds": kinds, "statuses": "".join(statuses), "other_statuses": {},
                              "seconds": seconds, "attempts": attempts, "cached": "".join(cached),
                              "quarantined": "0" * len(labels), "finished_at": finished},
                  "quarantine": []}
        assert check_record(record) is None
        records.append(record)
    return records


def write_history(records, root):
    """Write the records as a directory history (file:// store) under root."""
    for record in records:
        path = os.path.join(root, object_name(record))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(record, separators=(",", ":")))
