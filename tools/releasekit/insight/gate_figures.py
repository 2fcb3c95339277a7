"""The gate in view: each run's outcome (green: exit 0, red: anything else), the failure rate over time, and the
releases the gate or a dependency held back, with their reasons, from history records read oldest first."""

import datetime

import numpy

from releasekit.insight.run_record import STATUS_LETTERS

DAY = 86400.0
RECENT = 50  # held-back releases listed, newest first
ROLLING = 10  # runs in the rolling failure rate of a window that spans a day or less
_HELD_BACK = STATUS_LETTERS["held back"]


class GateFigures:
    def __init__(self):
        self.runs = []  # (start, red, command, id, commit, held back)
        self.held_back = []  # (start, run id, commit, release, reason), oldest first

    def add(self, record):
        targets = record["targets"]
        statuses, reasons = targets["statuses"], targets.get("reasons", {})
        held, index = [], statuses.find(_HELD_BACK)  # str.find: a C scan, not a Python step per target
        while index != -1:
            held.append(index)
            index = statuses.find(_HELD_BACK, index + 1)
        for index in held:
            self.held_back.append((record["start"], record["id"], record.get("commit"), targets["labels"][index],
                                   reasons.get(str(index), "")))
        if len(self.held_back) > 4 * RECENT:
            del self.held_back[:-RECENT]
        self.runs.append((record["start"], record.get("exit_code") not in (0, None), record.get("command") or "?",
                          record["id"], record.get("commit"), len(held)))

    def result(self, per_run):
        """per_run: the window spans a day or less, so the failure rate is drawn per run (a rolling share of the
        last ROLLING runs), else per day."""
        red = [run[1] for run in self.runs]
        result = {"runs": len(self.runs), "red": int(sum(red)), "granularity": "run" if per_run else "day"}
        if per_run:
            result["per_run"] = [{"start": start, "red": bool(is_red), "command": command, "run": run_id,
                                  "commit": commit, "held_back": held}
                                 for start, is_red, command, run_id, commit, held in self.runs]
            rates = []
            for number in range(len(red)):
                last = red[max(0, number + 1 - ROLLING):number + 1]
                rates.append({"start": self.runs[number][0], "failure_rate": round(sum(last) / len(last), 4)})
            result["failure_rate"] = rates
        else:
            days = numpy.floor(numpy.array([run[0] for run in self.runs], dtype=numpy.float64) / DAY)
            flags = numpy.array(red, dtype=bool)
            result["failure_rate"] = [{"day": _day(day * DAY), "runs": int((days == day).sum()),
                                       "red": int(flags[days == day].sum()),
                                       "failure_rate": round(float(flags[days == day].mean()), 4)}
                                      for day in numpy.unique(days)]
        result["held_back"] = {
            "releases": sum(run[5] for run in self.runs), "runs": sum(1 for run in self.runs if run[5]),
            "recent": [{"start": start, "run": run_id, "commit": commit, "release": release, "reason": reason}
                       for start, run_id, commit, release, reason in self.held_back[::-1][:RECENT]]}
        return result


def _day(timestamp):
    return datetime.datetime.fromtimestamp(float(timestamp), datetime.timezone.utc).strftime("%Y-%m-%d")
