"""One CI run as the history keeps it: an immutable JSON object, column by column so that ten thousand runs of
two thousand targets read in seconds.

    {"format": "releasekit-run", "format_version": 1, "id", "command", "commit", "commit_time", "base",
     "branch", "pull_request", "start", "end", "wall_seconds", "shard", "machine", "exit_code", "build_only",
     "ci", "dirty", "tree", "flags", "platform",
     "targets": {"labels": [...], "kinds": "TTR", "statuses": "PKR", "other_statuses": {"7": "incomplete"},
                 "seconds": [...], "attempts": [...], "cached": "10-", "quarantined": "010",
                 "finished_at": {"2": 1764600000.5}, "reasons": {"2": "held back (gate all): ..."}},
     "quarantine": [decisions], "gate": {"mode", "held_back", ...}, "profile": {"critical_path", "slowest_actions"},
     "cpu": {"seconds": 41.2, "releasekit": 3.1, "bazel": 38.1}}

kinds: T test, R release. statuses: one letter per target (STATUS_LETTERS), X with the status in other_statuses.
cached: 1 from a cache, 0 executed, - not known. finished_at: releases, seconds since the epoch. reasons: why a
release did not publish. What the run's results are the results of, so that quarantine tells a flake (a pass and a
failure at the same inputs) from a regression: ci (the CI variable was true), dirty (the checkout had changes or
files git does not track), tree (the commit's tree, when clean), flags (a digest of the Bazel flags the run
passed), platform (operating system and machine).
Optional, absent from older records (readers take them where they are): "cpu", the run's CPU seconds in all, of
releasekit's processes and of the Bazel servers (None where they could not be read; see core/usage.py); and the
targets' "cpu_seconds" column, a release's process and children (null for tests and where unknown).
"""

import datetime
import hashlib
import os
import platform
import socket
import uuid

from releasekit.core import ci_context, process
from releasekit.core.errors import GitError

FORMAT = "releasekit-run"
FORMAT_VERSION = 1
STATUS_LETTERS = {"passed": "P", "flaky": "K", "failed": "F", "build failed": "B", "timeout": "T", "skipped": "S",
                  "built": "U", "published": "R", "no status": "N", "held back": "H", "refused": "D"}
STATUSES = {letter: status for status, letter in STATUS_LETTERS.items()}


def new_record(command, outcomes, context):
    """The history object of a run: context has start, end, commit, commit_time, base, shard, exit_code, and cpu
    where it was measured."""
    targets = {"labels": [o.label for o in outcomes],
               "kinds": "".join("T" if o.kind == "test" else "R" for o in outcomes),
               "statuses": "".join(STATUS_LETTERS.get(o.status, "X") for o in outcomes),
               "other_statuses": {str(i): o.status for i, o in enumerate(outcomes) if o.status not in STATUS_LETTERS},
               "seconds": [round(o.duration_seconds, 3) for o in outcomes], "attempts": [o.attempts for o in outcomes],
               "cached": "".join("-" if o.cached is None else "1" if o.cached else "0" for o in outcomes),
               "quarantined": "".join("1" if o.quarantined else "0" for o in outcomes),
               "finished_at": {str(i): o.finished_at for i, o in enumerate(outcomes) if o.finished_at},
               "reasons": {str(i): o.reason for i, o in enumerate(outcomes)
                           if o.kind == "release" and o.reason and o.status not in ("published", "built")}}
    if any(o.cpu_seconds is not None for o in outcomes):
        targets["cpu_seconds"] = [o.cpu_seconds for o in outcomes]
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, "id": uuid.uuid4().hex, "command": command,
              "machine": socket.gethostname(), "targets": targets}
    record.update(context)
    record["start"], record["end"] = round(record["start"], 3), round(record["end"], 3)
    record["wall_seconds"] = round(record["end"] - record["start"], 3)
    return record


def object_name(record):
    """runs/<day>/<start>-<commit>-<id>.json: sorted by start time, one directory per UTC day, never two alike."""
    start = datetime.datetime.fromtimestamp(record["start"], datetime.timezone.utc)
    # To the millisecond, as the record's start: runs a second apart (a cached rerun, shards) keep their order.
    stamp = "{}.{:03d}Z".format(start.strftime("%Y%m%dT%H%M%S"), start.microsecond // 1000)
    return "runs/{}/{}-{}-{}.json".format(start.strftime("%Y-%m-%d"), stamp, (record.get("commit") or "unknown")[:12],
                                          record["id"][:12])


def check_record(data):
    """None when data is a run record this reader understands, else why not."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return "not a releasekit run record"
    if data.get("format_version") != FORMAT_VERSION:
        return "run record format version {} (this releasekit reads {})".format(data.get("format_version"),
                                                                                FORMAT_VERSION)
    targets = data.get("targets")
    try:
        count = len(targets["labels"])
        columns_agree = all(len(targets[key]) == count for key in ("kinds", "statuses", "seconds", "attempts",
                                                                   "cached"))
        times_are_numbers = all(isinstance(data[key], (int, float)) for key in ("start", "end", "wall_seconds"))
    except (TypeError, KeyError):
        return "a run record without its targets, start or end"
    if not columns_agree or not times_are_numbers:
        return "a run record whose columns disagree"
    return None


def flags_digest(flags):
    """What the record keeps of the Bazel flags a run passed: a digest, the same for the same flags in order."""
    return hashlib.sha256("\0".join(flags).encode("utf-8")).hexdigest()[:16]


def where_it_ran(workspace, environ):
    """What a run record says of where it ran: the commit and its time, the branch and pull request, and what its
    results are the results of (the tree when clean, the platform, whether CI ran it)."""
    commit = _git(workspace, "rev-parse", "HEAD")
    commit_time = _git(workspace, "show", "-s", "--format=%ct", "HEAD")
    changes = _git(workspace, "status", "--porcelain")  # untracked files count: globs take them
    dirty = changes is None or bool(changes)
    branch = ci_context.branch(environ) or _git(workspace, "rev-parse", "--abbrev-ref", "HEAD")
    pull_request = ci_context.pull_request(environ)
    return {"commit": commit, "commit_time": int(commit_time) if commit_time and commit_time.isdigit() else None,
            "branch": None if branch == "HEAD" else branch, "pull_request": pull_request,
            "ci": environ.get("CI", "").lower() == "true", "dirty": dirty,
            "tree": None if dirty else _git(workspace, "rev-parse", "HEAD^{tree}"),
            "platform": "{}-{}".format(platform.system().lower(), platform.machine())}


def _git(workspace, *args):
    result = process.run(["git", *args], GitError("git is not installed; the run record names no commit."),
                         cwd=workspace)
    return result.stdout.strip() if result.returncode == 0 else None


def pending_directory(report_dir):
    """Where a run keeps its record when the history store cannot take it; the next run sends it."""
    return os.path.join(report_dir, "history-pending")
