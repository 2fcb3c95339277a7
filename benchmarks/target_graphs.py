#!/usr/bin/env python3
"""Target graphs: `releasekit ci` on a fresh agent, with the graph read from the store against Bazel loading it.

On the CI replay's monorepo (benchmarks/replay/monorepo.py, --seed), an agent of the replay's arm 3 replays the
history up to the last commit measured, as CI would (each commit on a fresh agent; the runs that load //... record
their graph). Then each measured commit (service changes) is run again, --samples times each way, alternating which
goes first: with the arm's `target_graphs` store (collect reads the recorded graph) and without it (collect's query
loads //... in the agent's new Bazel server, as without a store). Both ways are the same `releasekit ci` on the same
commit with the same remote cache, so the tests' results come from the cache after the first run: the difference is
what collect costs, and what `bazel test` then pays to start its server and load the packages itself.
Ends with one JSON line; `ratio` is the median with the graph read / the median with the query.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))

from replay.arms import ARMS, Agent, shared_install_base
from replay.monorepo import make_history


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--services", type=int, default=16)
    parser.add_argument("--measured", type=int, default=4, help="how many service changes are measured")
    parser.add_argument("--samples", type=int, default=4, help="runs of each commit, each way")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="releasekit-target-graphs-")
    agent = None
    try:
        origin = os.path.join(workdir, "origin")
        history, _ = make_history(origin, args.services, 40, args.seed)
        measured = [n for n, (_, kind, _) in enumerate(history) if kind == "service source" and n > 0][:args.measured]
        agent = Agent(ARMS[2], workdir, origin, 8, shared_install_base(workdir, origin))
        with open(agent.config) as handle:
            with_store = handle.read()
        without_store = "".join(line for line in with_store.splitlines(True) if not line.startswith("target_graphs:"))
        agent.run(history[0][0], history[0][0], "1.0.0", warm_up=True)
        for number in range(1, max(measured) + 1):
            agent.run(history[number][0], history[number - 1][0], "1.0.{}".format(number))
            agent.empty_trash()
        medians, version = {"read": [], "query": []}, 0
        for number in measured:
            sha, kind, message = history[number]
            times = {"read": [], "query": []}
            for sample in range(args.samples):
                for way in ("read", "query") if sample % 2 == 0 else ("query", "read"):
                    with open(agent.config, "w") as handle:
                        handle.write(with_store if way == "read" else without_store)
                    version += 1
                    run = agent.run(sha, history[number - 1][0], "2.0.{}".format(version))
                    agent.empty_trash()
                    if (run.graph == "read") != (way == "read"):
                        raise SystemExit("target_graphs: commit {} ran {} with graph {!r}".format(number, way,
                                                                                                  run.graph))
                    times[way].append(run.seconds)
            for way in times:
                medians[way].append(statistics.median(times[way]))
            print("commit {:>2} {} ({}): graph read {} s, query {} s; medians {:.2f} s and {:.2f} s".format(
                number, sha[:10], message, times["read"], times["query"], medians["read"][-1], medians["query"][-1]),
                flush=True)
        read, query = statistics.median(medians["read"]), statistics.median(medians["query"])
        print(json.dumps({"benchmark": "target_graphs", "seed": args.seed, "commits": len(measured),
                          "samples": args.samples, "read_median_s": round(read, 2), "query_median_s": round(query, 2),
                          "saved_s": round(query - read, 2), "ratio": round(read / query, 2)}))
    finally:
        if agent is not None:
            agent.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
