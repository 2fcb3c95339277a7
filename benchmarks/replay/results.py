"""The replay's figures: per repeat, across repeats (median and spread), the results file, and the docs built from it.

A results file (results.json in the output directory) is everything docs/benchmarks.md says of a mode: what ran
(releasekit's commit, the machine, the date, the seed, the mix), and the figures. The docs' figures are rendered
from the committed results files only (render_docs), between two markers; a test keeps them equal.
"""

import collections
import datetime
import json
import os
import platform
import socket
import statistics
import subprocess

from replay.arms import ARMS
from replay.timeline import PHASES

ONE, TWO, THREE = ARMS
# The targets, each against the same run's peers: (mode, ratio key, at least).
TARGETS = [("cold", "p50_arm2", 2.0), ("cold", "p50_arm1", 3.5), ("cold", "p90_arm2", 1.5), ("warm", "p50_arm2", 2.0)]
DOCS_BEGIN = "<!-- figures: rendered by benchmarks/ci_replay.py from docs/ci-replay/*/results.json; do not edit -->"
DOCS_END = "<!-- end of figures -->"
MODES = ("cold", "warm")


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = (len(ordered) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(rows):
    """The figures of one repeat: P50 and P90 per arm, the four ratios, costs per arm, arm 3 per change kind."""
    times = {arm: [row[arm]["seconds"] for row in rows] for arm in ARMS}
    p = {arm: {"p50": round(percentile(t, 50), 2), "p90": round(percentile(t, 90), 2)} for arm, t in times.items()}
    ratios = {"p50_arm1": p[ONE]["p50"] / p[THREE]["p50"], "p90_arm1": p[ONE]["p90"] / p[THREE]["p90"],
              "p50_arm2": p[TWO]["p50"] / p[THREE]["p50"], "p90_arm2": p[TWO]["p90"] / p[THREE]["p90"]}
    return {"percentiles": p, "ratios": {k: round(v, 2) for k, v in ratios.items()},
            "missed": sum(len(row["missed"]) for row in rows), "costs": _costs(rows), "per_kind": _per_kind(rows)}


def _costs(rows):
    """Per arm, per commit: CPU seconds (median, mean), bytes (mean), peak memory (median, max)."""
    found = {}
    for arm in ARMS:
        cost = [row[arm]["costs"] for row in rows if row[arm].get("costs")]
        if not cost:
            continue
        cpu = [c["cpu_seconds"] for c in cost]
        found[arm] = {"cpu_seconds_p50": round(statistics.median(cpu), 2),
                      "cpu_seconds_mean": round(statistics.mean(cpu), 2),
                      "cpu_per_wall_second": round(sum(cpu) / sum(row[arm]["seconds"] for row in rows), 2),
                      **{key + "_mean": round(statistics.mean(c[key] for c in cost)) for key in (
                          "cache_pulled_bytes", "cache_pushed_bytes", "store_pushed_bytes")},
                      "registry_pushed_bytes_mean": round(statistics.mean(row[arm]["bytes_pushed"] for row in rows)),
                      "bazel_server_peak_mb_p50": round(statistics.median(c["bazel_server_peak_mb"] for c in cost)),
                      "bazel_server_peak_mb_max": max(c["bazel_server_peak_mb"] for c in cost),
                      "other_peak_mb_max": max(c["other_peak_mb"] for c in cost)}
    return found


def _per_kind(rows):
    kinds = collections.defaultdict(list)
    for row in rows:
        kinds[row["kind"]].append(row)
    table = {}
    for kind, chosen in kinds.items():
        entry = {"commits": len(chosen), **{arm: round(statistics.mean(r[arm]["seconds"] for r in chosen), 2)
                                            for arm in ARMS},
                 "tests_run": round(statistics.mean(r[THREE]["tests_executed"] for r in chosen), 1),
                 "releases": round(statistics.mean(r[THREE]["releases"] for r in chosen), 1),
                 "graph_read": sum(r[THREE].get("graph") == "read" for r in chosen)}
        phases = [r[THREE]["phases"] for r in chosen if r[THREE].get("phases")]
        if phases:
            entry["arm3_phases"] = {phase: round(statistics.mean(p.get(phase, 0.0) for p in phases), 2)
                                    for phase in PHASES}
        table[kind] = entry
    return dict(sorted(table.items(), key=lambda item: -item[1][THREE]))


def across(repeats):
    """Median and spread (min, max) over repeats of each arm's P50 and P90 and of each ratio."""
    def spread(values):
        return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
                "max": round(max(values), 2)}

    return {"percentiles": {arm: {p: spread([r["percentiles"][arm][p] for r in repeats]) for p in ("p50", "p90")}
                            for arm in ARMS},
            "ratios": {key: spread([r["ratios"][key] for r in repeats]) for key in repeats[0]["ratios"]},
            "missed": sum(r["missed"] for r in repeats)}


def targets_met(mode, headline):
    """[(ratio key, at least, median, met)] for the targets of this mode; missed must be 0 in every mode."""
    rows = [(key, least, headline["ratios"][key]["median"], headline["ratios"][key]["median"] >= least)
            for target_mode, key, least in TARGETS if target_mode == mode]
    return rows + [("missed", 0, headline["missed"], headline["missed"] == 0)]


def footprint_limits(rows, arm):
    """Why a persistent agent's footprint is not bounded, per commit ([] when it is): after a run, at most the
    workspace's Bazel server (and for arm 3 the base revision's, kept warm) and one base checkout, no worktree beyond
    the checkout and that one, and releasekit's own cache (the base checkout aside) no larger in the second half of
    the history than its largest in the first half, plus 64 KiB (a bounded cache settles; one that grows with each
    commit does not)."""
    prints = [(row["commit"], row[arm]["footprint"]) for row in rows if row[arm].get("footprint")]
    servers = 2 if arm == THREE else 1
    problems = []
    for commit, seen in prints:
        if seen["servers"] > servers:
            problems.append("{}: {} Bazel servers running after the run".format(commit, seen["servers"]))
        if seen["worktrees"] > 2 or seen["base_checkouts"] > 1:
            problems.append("{}: {} worktrees, {} base checkouts".format(commit, seen["worktrees"],
                                                                         seen["base_checkouts"]))
    half = len(prints) // 2
    if half:
        first = max(seen["releasekit_cache_bytes"] for _, seen in prints[:half])
        last = max(seen["releasekit_cache_bytes"] for _, seen in prints[half:])
        if last > first + 65536:
            problems.append("releasekit's cache grew from {} to {} bytes".format(first, last))
    return problems


def cpu_clock():
    """(seconds the machine's CPUs were busy, CPU seconds of this process and the children it waited for), since
    boot: the replay subtracts its own from the machine's to tell what other work took (/proc/stat)."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait
    except (OSError, ValueError, IndexError):
        return None
    own = os.times()
    return busy, own.user + own.system + own.children_user + own.children_system


def others_share(at_start, at_end, seconds, cores):
    """The share of the machine's CPU capacity that work other than the replay took while it ran, or None."""
    if not (at_start and at_end and seconds > 0):
        return None
    others = (at_end[0] - at_start[0]) - (at_end[1] - at_start[1])
    return round(max(0.0, others) / (seconds * cores), 3)


def machine():
    """What the figures were measured on, and how busy it was when the replay began."""
    model = ""
    try:
        with open("/proc/cpuinfo") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
        with open("/proc/meminfo") as handle:
            memory = int(handle.readline().split()[1]) / 1024 / 1024
    except OSError:
        memory = 0.0
    return {"host": socket.gethostname(), "cpu": model, "cores": os.cpu_count(), "memory_gib": round(memory, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}


CODE = ("tools", "benchmarks", "rules")  # what the figures are of; a commit that changes only docs changes none


def source(repo_root):
    """The commit of releasekit the figures are of, whether the checkout differed from it, and the trees of its code
    (to tell whether the code changed while the replay ran)."""
    def git(*args):
        return subprocess.run(["git", "-C", repo_root, *args], capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "uncommitted_changes": bool(git("status", "--porcelain", "--", *CODE)),
            "code": [git("rev-parse", "HEAD:" + path) for path in CODE]}


def source_of_run(at_start, at_end):
    """What a run's figures are of: the code it began with, which counts as changed when it differed from its commit
    at either end or changed while the run went on (the replay runs releasekit from the checkout)."""
    changed = at_end["uncommitted_changes"] or at_end["code"] != at_start["code"]
    return {"commit": at_start["commit"], "uncommitted_changes": at_start["uncommitted_changes"] or changed}


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def write(path, results):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as handle:
        json.dump(results, handle, indent=1)
        handle.write("\n")
    os.replace(path + ".tmp", path)


def render_docs(docs_path, results_root):
    """Rewrite the figures of docs_path (between its markers) from the results files under results_root."""
    with open(docs_path) as handle:
        text = handle.read()
    head, _, rest = text.partition(DOCS_BEGIN)
    _, _, tail = rest.partition(DOCS_END)
    updated = head + DOCS_BEGIN + "\n" + figures_markdown(results_root) + DOCS_END + tail
    if updated != text:
        with open(docs_path, "w") as handle:
            handle.write(updated)
    return updated != text


def load_results(results_root):
    found = {}
    for mode in MODES:
        path = os.path.join(results_root, mode, "results.json")
        if os.path.exists(path):
            with open(path) as handle:
                found[mode] = json.load(handle)
    return found


def figures_markdown(results_root):
    """The docs' figures, from the committed results files."""
    from replay.report import markdown

    return markdown(load_results(results_root))
