"""What CI runs cost in CPU, from the run records that carry it (run_record: "cpu", and the targets' "cpu_seconds"):
per run and per command, releasekit's processes apart from the Bazel servers, and the releases that cost the most.
Records written before releasekit measured CPU are counted as runs elsewhere and left out here."""

import collections

import numpy

TOP = 15


class CpuFigures:
    def __init__(self):
        self.runs = []  # (command, CPU seconds in all, releasekit's, the Bazel servers' or None, wall seconds)
        self.targets = collections.defaultdict(lambda: [0.0, 0])  # label: [CPU seconds, runs measured]

    def add(self, record):
        cpu = record.get("cpu")
        if isinstance(cpu, dict) and isinstance(cpu.get("seconds"), (int, float)):
            self.runs.append((record.get("command") or "?", float(cpu["seconds"]), cpu.get("releasekit"),
                              cpu.get("bazel"), float(record["wall_seconds"])))
        targets = record["targets"]
        per_target = targets.get("cpu_seconds")
        if isinstance(per_target, list) and len(per_target) == len(targets["labels"]):
            for label, seconds in zip(targets["labels"], per_target):
                if isinstance(seconds, (int, float)):
                    sums = self.targets[label]
                    sums[0] += seconds
                    sums[1] += 1

    def result(self):
        """{"runs": how many carry CPU, P50/P90 of CPU seconds per run, "per_command": [...], "targets": [...]}"""
        if not self.runs:
            return {"runs": 0, "per_command": [], "targets": self._targets()}
        commands = numpy.array([run[0] for run in self.runs])
        per_command = []
        for command in numpy.unique(commands):
            chosen = [run for run in self.runs if run[0] == command]
            cpu = numpy.array([run[1] for run in chosen])
            bazel = [run[3] for run in chosen if isinstance(run[3], (int, float))]
            per_command.append({
                "command": str(command), "runs": len(chosen), **_percentiles(cpu),
                "mean_releasekit_seconds": _mean([run[2] for run in chosen if isinstance(run[2], (int, float))]),
                "mean_bazel_seconds": _mean(bazel),
                # CPU seconds per wall second: how many cores a run keeps busy, on average
                "cores_busy": round(float(cpu.sum() / max(1e-9, sum(run[4] for run in chosen))), 2)})
        return {"runs": len(self.runs), **_percentiles(numpy.array([run[1] for run in self.runs])),
                "per_command": per_command, "targets": self._targets()}

    def _targets(self):
        means = [{"label": label, "runs": runs, "mean_cpu_seconds": round(total / runs, 3)}
                 for label, (total, runs) in self.targets.items() if runs]
        return sorted(means, key=lambda row: (-row["mean_cpu_seconds"], row["label"]))[:TOP]


def _percentiles(values):
    p50, p90 = numpy.percentile(values, (50, 90))
    return {"p50_seconds": round(float(p50), 2), "p90_seconds": round(float(p90), 2)}


def _mean(values):
    return round(float(numpy.mean(values)), 2) if values else None
