#!/usr/bin/env python3
"""CI replay: CI wall time, P50 and P90, and what each commit costs, over a monorepo's history, for three ways of
running CI, on fresh agents (--agents cold, the default) or persistent ones (--agents warm).

Generates (from --seed) a monorepo and a history of --commits commits drawn from a stated mix of change kinds
(benchmarks/replay/monorepo.py), then replays every commit in each of three arms (benchmarks/replay/arms.py):
1. everything: `bazel test //...` and every CI release it built, run side by side (`workers` at a time);
2. Bazel alone: `bazel test //...` and those releases through `releasekit dispatch` with the same workers;
3. `releasekit ci --base <previous commit>` with its workers and a run history.
Each arm has its own nginx (the HTTP remote cache and the artifact store) and registry. Cold: each commit runs on a
fresh agent (a new Bazel output base and server, a clean checkout). Warm: each arm has one agent that keeps its
Bazel server, output base and home cache, its checkout moved by git. The first commit warms each arm and is not
counted; the arms take turns going first. --repeat N replays the same seed N times, on new servers each time.

Per commit and arm: wall time, tests executed and cached, releases run, CPU seconds (processes and Bazel servers),
bytes pulled from and pushed to the remote cache, pushed to the registry and stores, peak memory, and for arm 3 where
its time went (benchmarks/replay/timeline.py); for warm agents, what each keeps after each commit (servers,
worktrees, disk), checked to stay bounded. Then P50 and P90 per arm, the ratios against arm 1 and arm 2, and their
spread over the repeats. The replay is an oracle too: a test that arm 1 really executed (not a cache hit) had
changed inputs, so arm 3 must have selected it; a release whose artifact changed since the previous commit in arm 1
must have been run by arm 3. Cold mode also replays arm 3's slowest commits as the pipeline `releasekit pipeline`
writes with 2 and 4 shards: N test jobs, then N release jobs handed the test jobs' reports, each job alone on a fresh
agent whose remote cache is the arm's as it was before the commit; the makespan is the slowest test job plus the
slowest release job (jobs that would run on N machines run one after another on this one).

Writes <out>/results.json (releasekit's commit, the machine, the date, the seed, the figures), commits.json, and the
run history drawn by `releasekit insight`; a full run renders docs/benchmarks.md's figures from the committed
results files. --quick (8 services, 12 commits, unless given) writes to a scratch directory, never to docs/.
Ends with one JSON line: the headline ratios, missed, seed, mode. Exits 1 if a selection was missed or a persistent
agent's footprint was not bounded.
"""

import argparse
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))

from replay import costs, results
from replay.arms import ARMS, ENTRY, Agent, count_targets, shared_install_base
from replay.monorepo import MIX, make_history
from releasekit.insight.run_record import new_record, object_name

DOCS = os.path.join(REPO_ROOT, "docs", "benchmarks.md")
COMMITTED = os.path.join(REPO_ROOT, "docs", "ci-replay")
FULL = {"services": 16, "commits": 40, "shard_commits": 1}
QUICK = {"services": 8, "commits": 12, "shard_commits": 1}


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--services", type=int, help="services in the monorepo (16; --quick: 8)")
    parser.add_argument("--commits", type=int, help="commits replayed (40; --quick: 12)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--agents", choices=("cold", "warm"), default="cold",
                        help="cold: a fresh agent per commit; warm: one persistent agent per arm")
    parser.add_argument("--repeat", type=int, default=1, help="replays of the same seed, for the figures' spread")
    parser.add_argument("--shard-commits", type=int, help="cold: arm 3's slowest commits replayed in shards (1)")
    parser.add_argument("--quick", action="store_true", help="a smaller replay into a scratch directory")
    parser.add_argument("--out", help="where the results, per-commit figures, page and charts go (default: "
                                      "docs/ci-replay/<agents>; --quick: a new scratch directory)")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.repeat < 1 or args.commits < 2 or args.services < 1:
        parser.error("--repeat must be at least 1, --commits at least 2 and --services at least 1")
    committed = os.path.realpath(COMMITTED) + os.sep
    if args.quick:
        if args.out and (os.path.realpath(args.out) + os.sep).startswith(committed):
            parser.error("--quick writes to a scratch directory, not to docs/ci-replay/: its figures are not the "
                         "committed ones. Drop --out, or give a directory outside docs/ci-replay/.")
        args.out = args.out or tempfile.mkdtemp(prefix="releasekit-ci-replay-quick-")
    else:
        args.out = args.out or os.path.join(COMMITTED, args.agents)
    args.render_docs = (os.path.realpath(args.out) + os.sep).startswith(committed)
    return args


def write_history(history, run, arm, commit_time):
    """The arm's run as a run record, with the CPU the harness measured, for `releasekit insight`."""
    cost = run.costs or {}
    record = new_record(arm, run.outcomes, {"start": run.start, "end": run.start + run.seconds, "commit": run.commit,
                                            "commit_time": commit_time, "base": None, "branch": "main",
                                            "pull_request": None, "shard": None, "exit_code": 1 if run.failed else 0,
                                            "build_only": False, "quarantine": [],
                                            "cpu": {"seconds": cost.get("cpu_seconds"), "releasekit": None,
                                                    "bazel": None}})
    path = os.path.join(history, object_name(record))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(record, handle)


def oracle(everything, ours, previous_digests):
    """(missed, extra): tests arm 1 executed that arm 3 did not select, releases whose artifact changed that arm 3
    did not run; and what arm 3 selected beyond that."""
    must_tests = set(everything.tests_executed)
    changed = {label for label, digest in everything.release_digests.items() if previous_digests.get(label) != digest}
    selected_tests, run_releases = set(ours.tests_selected), set(ours.releases_run)
    missed = sorted(must_tests - selected_tests) + sorted(changed - run_releases)
    extra = sorted(selected_tests - must_tests) + sorted(run_releases - changed)
    return missed, extra


def _stop_on_term(signum, frame):
    raise SystemExit("replay: stopped by signal {}".format(signum))


def main(argv=None):
    args = parse_arguments(argv)
    signal.signal(signal.SIGTERM, _stop_on_term)  # the servers and agents are stopped on the way out
    if args.quick:
        print("quick run: {} services, {} commits; its figures go to {}, a scratch directory (not docs/ci-replay/)"
              .format(args.services, args.commits, args.out), flush=True)
    if not costs.become_subreaper():
        print("note: cannot wait for stopped Bazel servers here (no PR_SET_CHILD_SUBREAPER): the CPU of a server "
              "that stops during a commit is not counted", flush=True)
    workdir = tempfile.mkdtemp(prefix="releasekit-ci-replay-")
    started, machine, at_start = time.time(), results.machine(), results.source(REPO_ROOT)
    clock_at_start = results.cpu_clock()
    try:
        origin = os.path.join(workdir, "origin")
        history, _ = make_history(origin, args.services, args.commits, args.seed)
        counts = collections.Counter(kind for _, kind, _ in history[1:])
        print("seed {}: {} services, {} commits, {} agents; the mix (weight: drawn):".format(
            args.seed, args.services, args.commits, args.agents))
        for kind, (weight, meaning) in sorted(MIX.items()):
            print("  {:<16} {:>3}%: {:>2}  {}".format(kind, weight, counts.get(kind, 0), meaning))
        install_base = shared_install_base(workdir, origin)
        ci_releases, tests = count_targets(workdir, origin, install_base)
        print("the generated repository: {} CI releases and {} tests (bazel query)".format(ci_releases, tests),
              flush=True)
        commit_times = {sha: int(subprocess.run(["git", "show", "-s", "--format=%ct", sha], cwd=origin, check=True,
                                                capture_output=True, text=True).stdout) for sha, _, _ in history}
        pooled_history = os.path.join(workdir, "history")
        repeats, all_rows, shards, footprint = [], [], [], {}
        for repeat in range(1, args.repeat + 1):
            rows, last_shards = replay_once(args, repeat, os.path.join(workdir, "repeat{}".format(repeat)), origin,
                                            history, install_base, commit_times, pooled_history)
            repeats.append(results.summarize(rows))
            all_rows += rows
            shards = last_shards or shards
            if repeat == 1 and args.agents == "warm":
                footprint = footprint_summary(rows)
            print_summary(repeat, repeats[-1])
        headline = results.across(repeats)
        outcome = {
            "benchmark": "ci_replay", "date": results.now(), "machine": machine,
            "source": results.source_of_run(at_start, results.source(REPO_ROOT)),
            "run": {"seed": args.seed, "services": args.services, "commits": args.commits, "workers": args.workers,
                    "agents": args.agents, "repeats": args.repeat, "quick": args.quick, "ci_releases": ci_releases,
                    "tests": tests, "mix": {kind: counts.get(kind, 0) for kind in sorted(MIX)},
                    "minutes": round((time.time() - started) / 60, 1)},
            "headline": headline, "repeats": repeats, "footprint": footprint, "shards": shards,
            "arm3_at_p50": kinds_at(all_rows, 50), "arm3_at_p90": kinds_at(all_rows, 90)}
        outcome["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
        outcome["machine"]["others_cpu_share"] = results.others_share(clock_at_start, results.cpu_clock(),
                                                                      time.time() - started, machine["cores"])
        outcome["targets"] = results.targets_met(args.agents, headline)
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "commits.json"), "w") as handle:
            json.dump(all_rows, handle, indent=1)
        results.write(os.path.join(args.out, "results.json"), outcome)
        outcome["page"] = draw(pooled_history, args.out)
        if args.render_docs and not args.quick:
            results.render_docs(DOCS, COMMITTED)
        problems = [p for f in footprint.values() for p in f["problems"]]
        for problem in problems:
            print("footprint not bounded: " + problem)
        print(json.dumps({"benchmark": "ci_replay", "agents": args.agents, "seed": args.seed, "repeats": args.repeat,
                          **{key: value["median"] for key, value in headline["ratios"].items()},
                          "missed": headline["missed"], "results": os.path.join(args.out, "results.json")}))
        return 1 if headline["missed"] or problems else 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def replay_once(args, repeat, workdir, origin, history, install_base, commit_times, pooled_history):
    """One replay of the whole history, on servers and agents of its own; (per-commit rows, shards)."""
    os.makedirs(workdir)
    agents = []
    try:
        agents = [Agent(arm, workdir, origin, args.workers, install_base, warm=args.agents == "warm") for arm in ARMS]
        digests = {}
        warm = history[0][0]
        for agent in agents:  # the first commit warms each arm's cache, registry and store (and a warm agent)
            run = agent.run(warm, warm, "1.0.0", warm_up=True)
            agent.empty_trash()
            if agent.arm == ARMS[0]:
                digests = dict(run.release_digests)
            print("run {}: warm-up {}: {:.1f} s".format(repeat, agent.arm, run.seconds), flush=True)
        rows, cache_snapshots = [], {}
        for number, (sha, kind, message) in enumerate(history[1:], start=1):
            commit_started = time.time()
            previous = history[number - 1][0]
            turn = (number + repeat - 1) % 3
            runs = {}
            for agent in agents[turn:] + agents[:turn]:
                if agent.arm == ARMS[2] and args.agents == "cold":
                    cache_snapshots[sha] = agent.snapshot_cache()
                runs[agent.arm] = agent.run(sha, previous, "{}.0.{}".format(repeat, number))
                write_history(pooled_history, runs[agent.arm], agent.arm, commit_times[sha])
            for agent in agents:
                agent.empty_trash()
            missed, extra = oracle(runs[ARMS[0]], runs[ARMS[2]], digests)
            digests.update(runs[ARMS[0]].release_digests)
            rows.append(row_of(repeat, sha, kind, message, missed, extra, runs))
            print_row(number, rows[-1], time.time() - commit_started)
        shards = scale_out(agents[2], rows, history, cache_snapshots, args.shard_commits) \
            if args.agents == "cold" and repeat == args.repeat else []
        return rows, shards
    finally:
        for agent in agents:
            agent.stop()


def row_of(repeat, sha, kind, message, missed, extra, runs):
    row = {"repeat": repeat, "commit": sha[:10], "kind": kind, "change": message, "missed": missed, "extra": len(extra)}
    for arm, run in runs.items():
        row[arm] = {"seconds": run.seconds, "tests_executed": len(run.tests_executed),
                    "tests_cached": len(run.tests_cached), "releases": len(run.releases_run),
                    "bytes_pushed": run.bytes_pushed, "failed": run.failed, "costs": run.costs, "phases": run.phases,
                    "footprint": run.footprint}
    row[ARMS[2]]["graph"] = runs[ARMS[2]].graph
    row[ARMS[2]]["reported_cpu"] = runs[ARMS[2]].reported_cpu
    return row


def print_row(number, row, seconds):
    three = row[ARMS[2]]
    print("{:>2} {:<16} {:>6.1f} s {:>6.1f} s {:>6.1f} s  cpu {:>5.1f} {:>5.1f} {:>5.1f} s  tests run {:>3}/{:>3}  "
          "releases {:>2}/{:>2}  missed {} extra {}  graph {:<8}  {}  ({:.0f} s in all)".format(
              number, row["kind"], *(row[a]["seconds"] for a in ARMS),
              *(row[a]["costs"].get("cpu_seconds", 0) for a in ARMS), three["tests_executed"],
              row[ARMS[0]]["tests_executed"], three["releases"], row[ARMS[0]]["releases"], len(row["missed"]),
              row["extra"], three["graph"] or "-", row["change"], seconds), flush=True)


def print_summary(repeat, summary):
    p = summary["percentiles"]
    print("\nrun {}:\n{:<18} {:>8} {:>8} {:>10}".format(repeat, "arm", "P50 s", "P90 s", "CPU P50 s"))
    for arm in ARMS:
        print("{:<18} {:>8.1f} {:>8.1f} {:>10}".format(arm, p[arm]["p50"], p[arm]["p90"],
                                                      summary["costs"].get(arm, {}).get("cpu_seconds_p50", "-")))
    print("ratios: {}; missed {}".format(", ".join("{} {}".format(k, v) for k, v in summary["ratios"].items()),
                                         summary["missed"]))
    print("arm 3, mean seconds per change kind and phase:")
    for kind, entry in summary["per_kind"].items():
        phases = entry.get("arm3_phases", {})
        print("  {:<16} {:>5.1f} s  {}".format(kind, entry[ARMS[2]], "  ".join(
            "{} {:.2f}".format(phase, seconds) for phase, seconds in phases.items() if seconds >= 0.005)))
    print(flush=True)


def kinds_at(rows, p):
    """The change kinds of arm 3's commits nearest the percentile p, most common first."""
    ordered = sorted(rows, key=lambda row: row[ARMS[2]]["seconds"])
    if not ordered:
        return []
    rank = round((len(ordered) - 1) * p / 100.0)
    near = ordered[max(0, rank - 2):rank + 3]
    return [kind for kind, _ in collections.Counter(row["kind"] for row in near).most_common()]


def footprint_summary(rows):
    summary = {}
    for arm in ARMS:
        prints = [row[arm]["footprint"] for row in rows if row[arm].get("footprint")]
        if prints:
            summary[arm] = {"servers_max": max(p["servers"] for p in prints),
                            "worktrees_max": max(p["worktrees"] for p in prints),
                            "base_checkouts_max": max(p["base_checkouts"] for p in prints),
                            "disk_first": prints[0]["disk_bytes"], "disk_last": prints[-1]["disk_bytes"],
                            "releasekit_cache_max": max(p["releasekit_cache_bytes"] for p in prints),
                            "per_commit_disk": [p["disk_bytes"] for p in prints],
                            "problems": results.footprint_limits(rows, arm)}
    return summary


def scale_out(agent, rows, history, snapshots, count):
    """Makespan of arm 3's slowest commits replayed as N shards, each alone on a fresh agent."""
    three = ARMS[2]
    slowest = sorted(range(len(rows)), key=lambda i: -rows[i][three]["seconds"])[:count]
    found = []
    for index in slowest:
        sha, previous = history[index + 1][0], history[index][0]
        entry = {"commit": sha[:10], "kind": rows[index]["kind"], "one_machine": rows[index][three]["seconds"]}
        for shards in (2, 4):
            times = {}
            reports = os.path.join(agent.root, "shard-reports-{}-{}".format(sha[:8], shards))
            os.makedirs(reports)
            for job in ("tests", "releases"):
                times[job] = []
                for shard in range(1, shards + 1):
                    agent.restore_cache(snapshots[sha])
                    config = agent.scratch_config("shard-{}-{}-{}".format(sha[:8], shard, shards))
                    run = agent.run(sha, previous, "9.{}.{}".format(index, shard), shard="{}/{}".format(shard, shards),
                                    config=config, job=job, reports=reports)
                    agent.empty_trash()
                    times[job].append(run.seconds)
            entry["makespan_{}".format(shards)] = round(max(times["tests"]) + max(times["releases"]), 1)
            entry["shards_{}".format(shards)] = times
        print("shards of {} ({}): 1 machine {:.1f} s, 2: {:.1f} s, 4: {:.1f} s".format(
            entry["commit"], entry["kind"], entry["one_machine"], entry["makespan_2"], entry["makespan_4"]), flush=True)
        found.append(entry)
    return found


def draw(history, out):
    page = os.path.join(out, "ci-replay.html")
    subprocess.run([sys.executable, ENTRY, "insight", "--history", "file://" + history, "--out", page, "--json",
                    os.path.join(out, "insight.json"), "--charts", os.path.join(out, "charts")],
                   check=True, capture_output=True)
    return page


if __name__ == "__main__":
    sys.exit(main())
