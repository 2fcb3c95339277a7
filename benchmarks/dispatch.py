#!/usr/bin/env python3
"""Release dispatch: the makespan of 24 releases with 8 workers against 1 worker, in one run.

--samples alternating pairs (1 worker then 8, then 8 then 1, ...) give the median and range of
the speedup. --startup-limits 1,2,3,4,8 also runs the 8-worker arm with each limit on how
many releases start up at once (DispatchOptions.concurrent_startups; the default is one per
CPU), alternating, and prints each median. The CPU a release costs (its process and
children, publishing included) is measured on the 1-worker runs.

A generated workspace declares 24 container releases (distinct images). They are built
once; then `Dispatcher.run_releases` runs them against a fresh local registry (blobs in
memory) reached through a proxy that delays each request, so that each release spends
about a second on the network, as it would against a remote registry. Ends with one JSON line;
`ratio` = median makespan with 8 workers / median with 1. Target: speedup >= 7 (ratio <= 0.143).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))

from helpers.servers import Registry
from helpers.slow_proxy import SlowProxy
from helpers.workspace import BAZEL, Workspace
from releasekit.selection.bazelquery import Bazel
from releasekit.running.dispatch import DispatchOptions, Dispatcher
from releasekit.running.progress import Progress


def generate(workspace, count):
    workspace.write("WORKSPACE", 'local_repository(name = "rules_release", path = "{}")\n'.format(REPO_ROOT))
    workspace.write(".gitignore", "/bazel-*\n")
    for index in range(count):
        package = "apps/app{}".format(index)
        workspace.write(package + "/run.sh", "#!/bin/sh\necho app {}\n".format(index), executable=True)
        workspace.write(package + "/BUILD.bazel", (
            'load("@rules_release//rules:defs.bzl", "container_release", "image_layout")\n\n'
            'image_layout(name = "image", files = {{"run.sh": "/run.sh"}}, entrypoint = ["/run.sh"])\n\n'
            'container_release(name = "app", image = ":image", repository = "bench/app{}")\n').format(index))
    workspace.init_git()


def makespan(workspace, labels, workers, delay, workdir, name, startup_limit=None):
    """(makespan, median release duration, registry requests, CPU seconds of the release processes)."""
    import resource

    # Blobs stay in the registry's memory: a remote registry's disk writes would not land on this machine,
    # and here they would compete with the releases for its two cores and its disk.
    registry = Registry(os.path.join(workdir, name), in_memory=True)
    proxy = SlowProxy(registry.host, delay)
    config = os.path.join(workdir, name + ".yaml")
    with open(config, "w") as handle:
        handle.write("channels:\n  dev: {{registry: 'http://{}/dev'}}\n".format(proxy.host))
    environ = dict(os.environ, RELEASEKIT_CONFIG=config, XDG_CACHE_HOME=os.path.join(workdir, name + "-cache"),
                   RELEASEKIT_USER="bench")
    options = DispatchOptions(workers=workers, report_dir=os.path.join(workdir, name + "-logs"), environ=environ,
                              concurrent_startups=startup_limit)
    dispatcher = Dispatcher(workspace.path, Bazel(workspace.path, command=BAZEL), options,
                            Progress(stream=open(os.devnull, "w"), live=False))
    try:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        outcomes = dispatcher.run_releases(labels)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        failed = [o for o in outcomes if o.status != "published"]
        if failed:
            raise SystemExit("benchmark: releases failed: {}".format([(o.label, o.reason) for o in failed]))
        durations = [o.duration_seconds for o in outcomes]
        cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
        return elapsed, statistics.median(durations), proxy.requests, cpu
    finally:
        proxy.stop()
        registry.stop()


def _spread(values, digits=2):
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--releases", type=int, default=24)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.15, help="seconds added to every registry request")
    parser.add_argument("--samples", type=int, default=5, help="alternating pairs of 1-worker and n-worker runs")
    parser.add_argument("--startup-limits", default="",
                        help="comma-separated start-up limits to compare, e.g. 1,2,3,4,8")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="releasekit-bench-dispatch-")
    workspace = Workspace(os.path.join(workdir, "ws"))
    try:
        generate(workspace, args.releases)
        labels = ["//apps/app{}:app.dev".format(i) for i in range(args.releases)]
        workspace.bazel("build", *labels)  # built once, untimed; run_releases' own build is then a no-op
        serial, parallel, speedups, serial_each, cpu_each, requests = [], [], [], [], [], 0
        for sample in range(args.samples):
            arms = [1, args.workers] if sample % 2 == 0 else [args.workers, 1]
            times = {}
            for workers in arms:
                elapsed, each, requests, cpu = makespan(workspace, labels, workers, args.delay, workdir,
                                                        "s{}w{}".format(sample, workers))
                times[workers] = elapsed
                if workers == 1:
                    serial_each.append(each)
                    cpu_each.append(cpu / args.releases)
            serial.append(times[1])
            parallel.append(times[args.workers])
            speedups.append(times[1] / times[args.workers])
        limits = {}
        for round_index in range(args.samples if args.startup_limits else 0):
            order = [int(limit) for limit in args.startup_limits.split(",")]
            for limit in order if round_index % 2 == 0 else list(reversed(order)):
                elapsed, _, _, _ = makespan(workspace, labels, args.workers, args.delay, workdir,
                                            "l{}r{}".format(limit, round_index), startup_limit=limit)
                limits.setdefault(limit, []).append(statistics.median(serial) / elapsed)
        result = {
            "benchmark": "dispatch",
            "releases": args.releases,
            "workers": args.workers,
            "samples": args.samples,
            "makespan_1_worker_s": _spread(serial),
            "makespan_n_workers_s": _spread(parallel),
            "speedup": _spread(speedups),
            "ratio": round(statistics.median(parallel) / statistics.median(serial), 3),
            "median_release_s_1_worker": round(statistics.median(serial_each), 2),
            "release_cpu_s": _spread(cpu_each, 3),
            "registry_requests_per_release": round(requests / args.releases, 1),
            "delay_per_request_s": args.delay,
        }
        if limits:
            result["speedup_by_startup_limit"] = {str(limit): _spread(values)
                                                  for limit, values in sorted(limits.items())}
        print("{releases} releases, {samples} alternating samples: 1 worker {makespan_1_worker_s[median]}s, {workers} "
              "workers {makespan_n_workers_s[median]}s, speedup median {speedup[median]}x (range {speedup[min]}-"
              "{speedup[max]}); each release {median_release_s_1_worker}s alone, {release_cpu_s[median]}s of "
              "CPU".format(**result))
        for limit, spread in result.get("speedup_by_startup_limit", {}).items():
            print("  {} starting up at once: speedup median {} (range {}-{})".format(limit, spread["median"],
                                                                                     spread["min"],
                                                                                   spread["max"]))
        print(json.dumps(result))
    finally:
        workspace.shutdown()
        subprocess.run(["rm", "-rf", workdir])


if __name__ == "__main__":
    main()
