#!/usr/bin/env python3
"""CI replay: CI wall time, P50 and P90, over a monorepo's history of commits, for three ways of running CI.

Generates (from --seed) a monorepo and a history of --commits commits drawn from a stated mix of change kinds
(benchmarks/replay/monorepo.py), then replays every commit in each of three arms (benchmarks/replay/arms.py):
1. everything: `bazel test //...` and every CI release, built once and run one after another;
2. Bazel alone: `bazel test //...` and every CI release through `releasekit dispatch` with the same workers;
3. `releasekit ci --base <previous commit>` with its workers.
Each arm has its own nginx (the HTTP remote cache and the artifact store) and registry; each commit runs on a
fresh agent (a new Bazel output base and server, a clean checkout) with the arm's remote cache. The first commit
warms each arm's cache and is not counted; the arms take turns going first.

Per commit and arm: wall time, tests executed and cached, releases run, bytes pushed. Then P50 and P90 per arm,
and ratios at P50 and P90 (arm 1 / arm 3, arm 2 / arm 3). The replay is an oracle too: a test that arm 1 really
executed (not a cache hit) had changed inputs, so arm 3 must have selected it; a release whose artifact changed
since the previous commit in arm 1 must have been run by arm 3. Scaling out: for the --shard-commits slowest
commits of arm 3, the pipeline `releasekit pipeline` writes with N = 2 and 4 shards: N test jobs, then N release jobs
handed the test jobs' reports, each job alone on a fresh agent whose remote cache is the arm's cache as it was
before the commit; the makespan is the slowest test job plus the slowest release job. The machine has 2 cores:
jobs that would run on N machines run one after another here.

Writes every run to a run history (commands named after the arms) and draws it with `releasekit insight`.
Ends with one JSON line: p50_ratio and p90_ratio (arm 1 / arm 3), the same against arm 2, missed, seed.
"""

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))

from replay.arms import ARMS, ENTRY, Agent, shared_install_base
from replay.monorepo import MIX, make_history
from releasekit.insight.run_record import new_record, object_name


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = (len(ordered) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def oracle(everything, ours, previous_digests):
    """(missed, extra): tests arm 1 executed that arm 3 did not select, releases whose artifact changed that arm 3
    did not run; and what arm 3 selected beyond that."""
    must_tests = set(everything.tests_executed)
    changed = {label for label, digest in everything.release_digests.items() if previous_digests.get(label) != digest}
    selected_tests, run_releases = set(ours.tests_selected), set(ours.releases_run)
    missed = sorted(must_tests - selected_tests) + sorted(changed - run_releases)
    extra = sorted(selected_tests - must_tests) + sorted(run_releases - changed)
    return missed, extra


def write_history(history, run, arm, commit_time):
    """The arm's run as a run record, for `releasekit insight`."""
    record = new_record(arm, run.outcomes, {"start": run.start, "end": run.start + run.seconds, "commit": run.commit,
                                            "commit_time": commit_time, "base": None, "branch": "main",
                                            "pull_request": None, "shard": None, "exit_code": 1 if run.failed else 0,
                                            "build_only": False, "quarantine": []})
    path = os.path.join(history, object_name(record))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(record, handle)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--services", type=int, default=16)
    parser.add_argument("--commits", type=int, default=40)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--shard-commits", type=int, default=1, help="arm 3's slowest commits replayed in shards")
    parser.add_argument("--quick", action="store_true", help="8 services, 12 commits, 1 commit in shards")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "docs", "ci-replay"),
                        help="where the page, its charts and the per-commit figures go")
    args = parser.parse_args()
    if args.quick:
        args.services, args.commits, args.shard_commits = 8, 12, 1
    workdir = tempfile.mkdtemp(prefix="releasekit-ci-replay-")
    agents = []
    started = time.time()
    try:
        origin = os.path.join(workdir, "origin")
        history, repo = make_history(origin, args.services, args.commits, args.seed)
        counts = collections.Counter(kind for _, kind, _ in history[1:])
        print("seed {}: {} services, {} commits; the mix (weight: drawn):".format(args.seed, args.services,
                                                                                  args.commits))
        for kind, (weight, meaning) in sorted(MIX.items()):
            print("  {:<16} {:>3}%: {:>2}  {}".format(kind, weight, counts.get(kind, 0), meaning))
        install_base = shared_install_base(workdir, origin)
        agents = [Agent(arm, workdir, origin, args.workers, install_base) for arm in ARMS]
        commit_times = {sha: int(subprocess.run(["git", "show", "-s", "--format=%ct", sha], cwd=origin, check=True,
                                                capture_output=True, text=True).stdout) for sha, _, _ in history}
        runs = {arm: [] for arm in ARMS}
        digests = {}
        warm = history[0][0]
        for agent in agents:  # the first commit warms each arm's cache, registry and store
            run = agent.run(warm, warm, "1.0.0", warm_up=True)
            agent.empty_trash()
            if agent.arm == ARMS[0]:
                digests = dict(run.release_digests)
            print("warm-up {}: {:.1f} s".format(agent.arm, run.seconds), flush=True)
        rows, missed_total, cache_snapshots = [], 0, {}
        for number, (sha, kind, message) in enumerate(history[1:], start=1):
            commit_started = time.time()
            previous = history[number - 1][0]
            order = agents[number % 3:] + agents[:number % 3]
            results = {}
            for agent in order:
                if agent.arm == ARMS[2]:
                    cache_snapshots[sha] = agent.snapshot_cache()
                results[agent.arm] = agent.run(sha, previous, "1.0.{}".format(number))
                runs[agent.arm].append(results[agent.arm])
                write_history(os.path.join(workdir, "history"), results[agent.arm], agent.arm, commit_times[sha])
            for agent in agents:
                agent.empty_trash()
            missed, extra = oracle(results[ARMS[0]], results[ARMS[2]], digests)
            digests.update(results[ARMS[0]].release_digests)
            missed_total += len(missed)
            row = {"commit": sha[:10], "kind": kind, "change": message, "missed": missed, "extra": len(extra)}
            for arm in ARMS:
                result = results[arm]
                row[arm] = {"seconds": result.seconds, "tests_executed": len(result.tests_executed),
                            "tests_cached": len(result.tests_cached), "releases": len(result.releases_run),
                            "bytes_pushed": result.bytes_pushed, "failed": result.failed}
            row[ARMS[2]]["graph"] = results[ARMS[2]].graph
            rows.append(row)
            print("{:>2} {:<16} {:>7.1f} s {:>7.1f} s {:>7.1f} s  tests run {:>3}/{:>3}  releases {:>2}/{:>2}  "
                  "missed {} extra {}  graph {:<8}  {}  ({:.0f} s in all)".format(
                      number, kind, *(row[a]["seconds"] for a in ARMS), row[ARMS[2]]["tests_executed"],
                      row[ARMS[0]]["tests_executed"], row[ARMS[2]]["releases"], row[ARMS[0]]["releases"], len(missed),
                      len(extra), row[ARMS[2]]["graph"] or "-", message, time.time() - commit_started), flush=True)
        summary = summarize(rows)
        shards = scale_out(agents[2], rows, history, cache_snapshots, args.shard_commits)
        page = draw(workdir, args.out)
        result = {"benchmark": "ci_replay", "seed": args.seed, "services": args.services, "commits": args.commits,
                  "workers": args.workers, "missed": missed_total, "minutes": round((time.time() - started) / 60, 1),
                  **summary, "shards": shards, "page": page}
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "commits.json"), "w") as handle:
            json.dump(rows, handle, indent=1)
        print(json.dumps(result))
    finally:
        for agent in agents:
            agent.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def summarize(rows):
    """P50 and P90 per arm, their ratios, and per change kind where arm 3's time goes."""
    times = {arm: [row[arm]["seconds"] for row in rows] for arm in ARMS}
    p = {arm: {"p50": round(percentile(t, 50), 1), "p90": round(percentile(t, 90), 1)} for arm, t in times.items()}
    one, two, three = ARMS
    print("\n{:<18} {:>8} {:>8}".format("arm", "P50 s", "P90 s"))
    for arm in ARMS:
        print("{:<18} {:>8.1f} {:>8.1f}".format(arm, p[arm]["p50"], p[arm]["p90"]))
    kinds = collections.defaultdict(list)
    for row in rows:
        kinds[row["kind"]].append(row)
    print("\nper change kind: commits, mean seconds per arm, arm 3's tests run and releases, and the commits whose "
          "collect read a recorded target graph")
    per_kind = {}
    for kind, chosen in sorted(kinds.items(), key=lambda item: -statistics.mean(r[three]["seconds"] for r in item[1])):
        means = [statistics.mean(r[arm]["seconds"] for r in chosen) for arm in ARMS]
        per_kind[kind] = {"commits": len(chosen), **{arm: round(m, 1) for arm, m in zip(ARMS, means)},
                          "tests_run": round(statistics.mean(r[three]["tests_executed"] for r in chosen), 1),
                          "releases": round(statistics.mean(r[three]["releases"] for r in chosen), 1),
                          "graph_read": sum(r[three].get("graph") == "read" for r in chosen)}
        print("  {:<16} {:>2}  {:>7.1f} {:>7.1f} {:>7.1f}   {:>5.1f} tests  {:>4.1f} releases  graph read {}".format(
            kind, len(chosen), *means, per_kind[kind]["tests_run"], per_kind[kind]["releases"],
            per_kind[kind]["graph_read"]))
    return {"p50_ratio": round(p[one]["p50"] / p[three]["p50"], 2),
            "p90_ratio": round(p[one]["p90"] / p[three]["p90"], 2),
            "p50_ratio_arm2": round(p[two]["p50"] / p[three]["p50"], 2),
            "p90_ratio_arm2": round(p[two]["p90"] / p[three]["p90"], 2), "percentiles": p, "per_kind": per_kind}


def scale_out(agent, rows, history, snapshots, count):
    """Makespan of arm 3's slowest commits replayed as N shards, each alone on a fresh agent."""
    three = ARMS[2]
    slowest = sorted(range(len(rows)), key=lambda i: -rows[i][three]["seconds"])[:count]
    results = []
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
                    times[job].append(run.seconds)
            entry["makespan_{}".format(shards)] = round(max(times["tests"]) + max(times["releases"]), 1)
            entry["shards_{}".format(shards)] = times
        print("shards of {} ({}): 1 machine {:.1f} s, 2: {:.1f} s, 4: {:.1f} s".format(
            entry["commit"], entry["kind"], entry["one_machine"], entry["makespan_2"], entry["makespan_4"]), flush=True)
        results.append(entry)
    return results


def draw(workdir, out):
    os.makedirs(out, exist_ok=True)
    page = os.path.join(out, "ci-replay.html")
    subprocess.run([sys.executable, ENTRY, "insight", "--history", "file://" + os.path.join(workdir, "history"),
                    "--out", page, "--json", os.path.join(out, "insight.json"), "--charts",
                    os.path.join(out, "charts")],
                   check=True, capture_output=True)
    return page


if __name__ == "__main__":
    main()
