"""Sharding a selection across CI machines: deterministic, and balanced by the durations of a previous run."""

import json

from releasekit.core.errors import UsageError
from releasekit.running.run_report import report_files


def parse_shard(text):
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError("--shard '{}' must be K/N with 1 <= K <= N, e.g. 2/4.".format(text)) from None
    if not 1 <= index <= count:
        raise UsageError("--shard '{}' must be K/N with 1 <= K <= N, e.g. 2/4.".format(text))
    return index, count


def shard(labels, index, count, durations=None):
    """The labels of shard index (1-based) of count: deterministic, balanced by recorded durations if given.

    Longest first onto the least loaded shard (ties: lower shard); unknown durations count as the median.
    """
    return shard_groups([[label] for label in labels], index, count, durations)


def shard_groups(groups, index, count, durations=None):
    """shard(), for groups of labels that must land in one shard together (releases that depend on each other:
    a shard orders only its own releases). A group weighs the sum of its labels' durations."""
    durations = durations or {}
    known = sorted(durations[label] for group in groups for label in group if label in durations)
    default = known[len(known) // 2] if known else 1.0
    weighed = [(sum(durations.get(label, default) for label in group), sorted(group)) for group in groups if group]
    loads = [0.0] * count
    mine = []
    for weight, group in sorted(weighed, key=lambda item: (-item[0], item[1][0])):
        target = min(range(count), key=lambda i: (loads[i], i))
        loads[target] += weight
        if target == index - 1:
            mine += group
    return sorted(mine)


def durations_from_report(path):
    """Durations by label from a run report, or from every report in a directory (one per shard)."""
    if not path:
        return {}
    durations = {}
    for report_path in report_files(path):
        try:
            with open(report_path, encoding="utf-8") as handle:
                report = json.load(handle)
            durations.update({t["label"]: t.get("duration_seconds", 0.0) for t in report.get("targets", [])})
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            raise UsageError("Cannot read the previous report {}: {}. Give a report that releasekit dispatch "
                             "wrote (--report), or a directory of them.".format(report_path, error)) from None
    return durations
