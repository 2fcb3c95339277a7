"""The figures of `releasekit insight`, from run records read once, oldest first.

Each record is folded into running sums as it arrives (per target and week: executed seconds and runs; per day:
cache hits), a few numpy operations per run; nothing per target is kept but the sums and each test's own last
`window` CI runs (per_test.py), so memory grows with the number of targets, not of runs. Only the run wall
times and outcomes and the published releases' lead times are kept whole. A window that spans a day or less is
drawn per run rather than per day, and one of two weeks or more per week as well.
"""

import collections
import datetime

import numpy

from releasekit.insight.cpu_figures import CpuFigures
from releasekit.insight.gate_figures import GateFigures
from releasekit.insight.run_record import STATUS_LETTERS
from releasekit.insight.per_test import PerTestWindows

DAY = 86400.0
WEEKS_FROM = 14 * DAY  # a window this long is also drawn per week
PERCENTILES = (50, 90, 99)
TOP = 15
_CACHED = ord("1")
_PUBLISHED = ord(STATUS_LETTERS["published"])
# Targets that did not run: a release the gate held back, a test Bazel skipped or gave no result. Their seconds are 0.
_NOT_RUN = numpy.array([ord(STATUS_LETTERS[status]) for status in ("held back", "skipped", "no status")],
                       dtype=numpy.uint8)


class Figures:
    def __init__(self, auto_quarantine):
        self.policy = auto_quarantine
        self.runs = []  # (start, wall seconds, commit, id)
        self.label_ids, self.labels = {}, []
        # Per label id: executed seconds and executed runs, in all and per week (a Monday's day number).
        self.total, self.executed = numpy.zeros(0), numpy.zeros(0, dtype=numpy.int64)
        self.weekly = {}
        self.cache_per_day = collections.defaultdict(lambda: [0, 0])  # day number: [test results known, cached]
        self.lead_times = []  # per run: (label ids, seconds from commit to publication) of its published releases
        self.profiles = []  # (wall, run id, commit, profile)
        self.tests = PerTestWindows(auto_quarantine)
        self.gate = GateFigures()
        self.cpu = CpuFigures()
        self.cache_per_run = []  # (start, test results known, cached)
        self.skipped = []

    def skip(self, name, why):
        self.skipped.append({"object": name, "why": why})

    def _ids(self, labels):
        ids = list(map(self.label_ids.get, labels))
        if None in ids:
            for label in labels:
                if label not in self.label_ids:
                    self.label_ids[label] = len(self.labels)
                    self.labels.append(label)
            ids = list(map(self.label_ids.get, labels))
            if len(self.labels) > len(self.total):
                size = max(len(self.labels), 2 * len(self.total))
                self.total, self.executed = _grown(self.total, size), _grown(self.executed, size)
                self.weekly = {week: (_grown(t, size), _grown(c, size)) for week, (t, c) in self.weekly.items()}
        return numpy.array(ids, dtype=numpy.int64)

    def add(self, record):
        targets = record["targets"]
        ids = self._ids(targets["labels"])  # a label appears once in a run, so ids[...] += adds once per label
        cached = targets["cached"]
        executed = numpy.frombuffer(cached.encode("ascii"), dtype=numpy.uint8) != _CACHED  # a hit says nothing of time
        executed &= ~numpy.isin(numpy.frombuffer(targets["statuses"].encode("ascii"), dtype=numpy.uint8), _NOT_RUN)
        seconds = numpy.array(targets["seconds"], dtype=numpy.float64) * executed
        self.total[ids] += seconds
        self.executed[ids] += executed
        day = int(record["start"] // DAY)
        week = day - (day + 3) % 7  # 1970-01-01 was a Thursday: weeks start on Mondays
        if week not in self.weekly:
            self.weekly[week] = (numpy.zeros(len(self.total)), numpy.zeros(len(self.total), dtype=numpy.int64))
        self.weekly[week][0][ids] += seconds
        self.weekly[week][1][ids] += executed
        hits = cached.count("1")  # only tests have a cache flag
        counts = self.cache_per_day[day]
        counts[0] += hits + cached.count("0")
        counts[1] += hits
        self.cache_per_run.append((record["start"], hits + cached.count("0"), hits))
        self.runs.append((record["start"], record["wall_seconds"], record.get("commit") or "", record["id"],
                          record.get("command") or "?"))
        finished = targets.get("finished_at")
        if record.get("commit_time") and finished:
            indices = numpy.array(list(map(int, finished)), dtype=numpy.int64)
            statuses = numpy.frombuffer(targets["statuses"].encode("ascii"), dtype=numpy.uint8)
            published = statuses[indices] == _PUBLISHED
            lead = numpy.array(list(finished.values()), dtype=numpy.float64) - record["commit_time"]
            self.lead_times.append((ids[indices[published]], lead[published]))
        if record.get("profile"):
            self.profiles.append((record["wall_seconds"], record["id"], record.get("commit"), record["profile"]))
        self.tests.add(record, ids)
        self.gate.add(record)
        self.cpu.add(record)

    def result(self, compare_at=None):
        starts = numpy.array([run[0] for run in self.runs], dtype=numpy.float64)
        walls = numpy.array([run[1] for run in self.runs], dtype=numpy.float64)
        span = float(starts.max() - starts.min()) if len(starts) else 0.0
        per_run = span <= DAY
        figures = {"runs": len(self.runs), "skipped_objects": self.skipped,
                   "window": [_day(starts.min()), _day(starts.max())] if len(starts) else None,
                   "periods": ["run"] if per_run else ["day"] if span < WEEKS_FROM else ["week", "day"],
                   "wall_seconds": _percentiles(walls), "per_day": _grouped(starts, walls, "day"),
                   "per_week": _grouped(starts, walls, "week"), "histogram": _histogram(walls),
                   "per_run": [{"start": round(float(start), 3), "wall_seconds": round(float(wall), 3)}
                               for start, wall in zip(starts, walls)] if per_run else []}
        figures["before_after"] = self._before_after(starts, walls, compare_at) if compare_at else None
        commands = numpy.array([run[4] for run in self.runs])
        figures["per_command"] = [dict({"command": str(command), "walls": walls[commands == command].tolist()},
                                       **_percentiles(walls[commands == command]))
                                  for command in numpy.unique(commands)]
        figures["slowest_targets"] = self._slowest()
        figures["cache"] = self._cache(per_run)
        figures["critical_paths"] = [{"run": run, "commit": commit, "wall_seconds": wall, **profile}
                                     for wall, run, commit, profile in sorted(self.profiles, key=lambda p: -p[0])[:5]]
        figures["lead_time"] = self._lead_time()
        figures["flaky"] = {"window_runs": self.policy.window, "tests": self.tests.figures(self.labels)}
        figures["outcomes"] = self.gate.result(per_run)
        figures["cpu"] = self.cpu.result()
        return figures

    def _before_after(self, starts, walls, compare_at):
        split = _split_time(compare_at, self.runs)
        if split is None:
            return {"at": compare_at, "error": "no run in the window has that date or commit"}
        before, after = walls[starts < split], walls[starts >= split]
        result = {"at": compare_at, "split": _day(split), "before": _percentiles(before), "after": _percentiles(after),
                  "before_walls": before.tolist(), "after_walls": after.tolist()}
        for p in PERCENTILES:
            key = "p{}".format(p)
            if result["before"].get(key) and result["after"].get(key):
                result["{}_ratio".format(key)] = round(result["before"][key] / result["after"][key], 2)
        return result

    def _slowest(self):
        count = len(self.labels)
        total, runs = self.total[:count], self.executed[:count]
        mean = numpy.divide(total, runs, out=numpy.zeros_like(total), where=runs > 0)
        slowest = []
        for label_id in (int(i) for i in numpy.argsort(-mean, kind="stable")[:TOP] if runs[i]):
            trend = [{"week": _day(week * DAY), "mean_seconds": round(float(t[label_id] / c[label_id]), 2)}
                     for week, (t, c) in sorted(self.weekly.items()) if c[label_id]]
            slowest.append({"label": self.labels[label_id], "runs": int(runs[label_id]),
                            "mean_seconds": round(float(mean[label_id]), 2), "trend": trend})
        return slowest

    def _cache(self, per_run):
        tests = sum(known for known, _ in self.cache_per_day.values())
        hits = sum(cached for _, cached in self.cache_per_day.values())
        per_day = [{"day": _day(day * DAY), "tests": known, "hit_rate": round(cached / known, 4)}
                   for day, (known, cached) in sorted(self.cache_per_day.items()) if known]
        return {"tests": tests, "cached": hits, "hit_rate": round(hits / tests, 4) if tests else None,
                "per_day": per_day,
                "per_run": [{"start": start, "tests": known, "hit_rate": round(cached / known, 4)}
                            for start, known, cached in self.cache_per_run if known] if per_run else []}

    def _lead_time(self):
        if not self.lead_times:
            return []
        ids = numpy.concatenate([ids for ids, _ in self.lead_times])
        lead = numpy.concatenate([lead for _, lead in self.lead_times])
        order = numpy.lexsort((lead, ids))
        ids, lead = ids[order], lead[order]
        bounds = numpy.flatnonzero(numpy.diff(ids)) + 1
        rows = [{"release": self.labels[int(group_ids[0])], "published": int(len(group)),
                 "p50_seconds": round(float(numpy.median(group)), 1), "max_seconds": round(float(group[-1]), 1)}
                for group_ids, group in zip(numpy.split(ids, bounds), numpy.split(lead, bounds))]
        return sorted(rows, key=lambda row: -row["p50_seconds"])


def _grown(array, size):
    grown = numpy.zeros(size, dtype=array.dtype)
    grown[:len(array)] = array
    return grown


def _percentiles(values):
    if not len(values):
        return {"runs": 0}
    points = numpy.percentile(values, PERCENTILES)
    return dict({"runs": int(len(values))},
                **{"p{}".format(p): round(float(v), 2) for p, v in zip(PERCENTILES, points)})


def _week_starts(starts):
    days = numpy.floor(starts / DAY)
    return (days - (days + 3) % 7) * DAY  # 1970-01-01 was a Thursday: weeks start on Mondays


def _grouped(starts, walls, unit):
    keys = numpy.floor(starts / DAY) * DAY if unit == "day" else _week_starts(starts)
    return [dict({unit: _day(key)}, **_percentiles(walls[keys == key])) for key in numpy.unique(keys)]


def _histogram(walls):
    if not len(walls):
        return {"edges": [], "counts": []}
    counts, edges = numpy.histogram(walls, bins=min(40, max(5, len(walls) // 5)))
    return {"edges": [round(float(e), 2) for e in edges], "counts": counts.tolist()}


def _split_time(compare_at, runs):
    try:
        return datetime.datetime.strptime(compare_at, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        matching = [start for start, _, commit, *_ in runs if commit and commit.startswith(compare_at.lower())]
        return min(matching) if matching else None


def _day(timestamp):
    return datetime.datetime.fromtimestamp(float(timestamp), datetime.timezone.utc).strftime("%Y-%m-%d")
