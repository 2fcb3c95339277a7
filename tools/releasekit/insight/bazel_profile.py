"""Bazel's JSON trace profile (`--profile`): the critical path and the slowest actions of a run."""

import gzip
import json

from releasekit.core.errors import ReleasekitError

SLOWEST_ACTIONS = 10


def read_profile(path):
    """{"critical_path": [[step, seconds]], "slowest_actions": [[action, seconds]]} of a trace file (.gz or plain)."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            trace = json.load(handle)
    except (OSError, ValueError, EOFError) as error:
        raise ReleasekitError("Cannot read Bazel's profile {}: {}.".format(path, error)) from None
    events = trace.get("traceEvents", []) if isinstance(trace, dict) else trace
    critical, actions = [], []
    for event in events:
        if not isinstance(event, dict) or event.get("ph") != "X":
            continue
        seconds = round(event.get("dur", 0) / 1e6, 3)
        if event.get("cat") == "critical path component":
            critical.append((event.get("ts", 0), event.get("name", "?"), seconds))
        elif event.get("cat") == "action processing":
            actions.append([event.get("name", "?"), seconds])
    actions.sort(key=lambda action: -action[1])
    return {"critical_path": [[name, seconds] for _, name, seconds in sorted(critical)],
            "slowest_actions": actions[:SLOWEST_ACTIONS]}


def merge_profiles(profiles):
    """One run's view of its Bazel invocations (tests, then the release build): their critical paths in order."""
    merged = {"critical_path": [], "slowest_actions": []}
    for profile in profiles:
        merged["critical_path"] += profile["critical_path"]
        merged["slowest_actions"] += profile["slowest_actions"]
    merged["slowest_actions"] = sorted(merged["slowest_actions"], key=lambda action: -action[1])[:SLOWEST_ACTIONS]
    return merged
