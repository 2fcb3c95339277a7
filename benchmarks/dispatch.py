#!/usr/bin/env python3
"""Release dispatch: the makespan of 24 releases with 8 workers against 1 worker, in one run.

A generated workspace declares 24 container releases (distinct images). They are built
once; then `Dispatcher.run_releases` runs them against a fresh local registry (blobs in
memory) reached through a proxy that delays each request, so that each release spends
about a second on the network, as it would against a remote registry. Ends with one JSON line;
`ratio` = makespan with 8 workers / makespan with 1. Target: speedup >= 6 (ratio <= 0.167).
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

from helpers.servers import Registry  # noqa: E402
from helpers.slow_proxy import SlowProxy  # noqa: E402
from helpers.workspace import BAZEL, Workspace  # noqa: E402
from releasekit.bazelquery import Bazel  # noqa: E402
from releasekit.dispatch import DispatchOptions, Dispatcher, Progress  # noqa: E402


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


def makespan(workspace, labels, workers, delay, workdir, name):
    # Blobs stay in the registry's memory: a remote registry's disk writes would not land on this machine,
    # and here they would compete with the releases for its two cores and its disk.
    registry = Registry(os.path.join(workdir, name), in_memory=True)
    proxy = SlowProxy(registry.host, delay)
    config = os.path.join(workdir, name + ".yaml")
    with open(config, "w") as handle:
        handle.write("channels:\n  dev: {{registry: 'http://{}/dev'}}\n".format(proxy.host))
    environ = dict(os.environ, RELEASEKIT_CONFIG=config, XDG_CACHE_HOME=os.path.join(workdir, name + "-cache"),
                   RELEASEKIT_USER="bench")
    options = DispatchOptions(workers=workers, report_dir=os.path.join(workdir, name + "-logs"), environ=environ)
    dispatcher = Dispatcher(workspace.path, Bazel(workspace.path, command=BAZEL), options,
                            Progress(stream=open(os.devnull, "w"), live=False))
    try:
        started = time.perf_counter()
        outcomes = dispatcher.run_releases(labels)
        elapsed = time.perf_counter() - started
        failed = [o for o in outcomes if o.status != "published"]
        if failed:
            raise SystemExit("benchmark: releases failed: {}".format([(o.label, o.reason) for o in failed]))
        durations = [o.duration_seconds for o in outcomes]
        return elapsed, statistics.median(durations), proxy.requests
    finally:
        proxy.stop()
        registry.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--releases", type=int, default=24)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.15, help="seconds added to every registry request")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="releasekit-bench-dispatch-")
    workspace = Workspace(os.path.join(workdir, "ws"))
    try:
        generate(workspace, args.releases)
        labels = ["//apps/app{}:app.dev".format(i) for i in range(args.releases)]
        workspace.bazel("build", *labels)  # built once, untimed; run_releases' own build is then a no-op
        serial, serial_each, requests = makespan(workspace, labels, 1, args.delay, workdir, "one")
        parallel, parallel_each, _ = makespan(workspace, labels, args.workers, args.delay, workdir, "many")
        result = {
            "benchmark": "dispatch",
            "releases": args.releases,
            "workers": args.workers,
            "makespan_1_worker_s": round(serial, 2),
            "makespan_n_workers_s": round(parallel, 2),
            "speedup": round(serial / parallel, 2),
            "ratio": round(parallel / serial, 3),
            "median_release_s_1_worker": round(serial_each, 2),
            "median_release_s_n_workers": round(parallel_each, 2),
            "registry_requests_per_release": round(requests / args.releases, 1),
            "delay_per_request_s": args.delay,
        }
        print("{releases} releases: 1 worker {makespan_1_worker_s}s, {workers} workers {makespan_n_workers_s}s, speedup "
              "{speedup}x (each release {median_release_s_1_worker}s alone)".format(**result))
        print(json.dumps(result))
    finally:
        workspace.shutdown()
        subprocess.run(["rm", "-rf", workdir])


if __name__ == "__main__":
    main()
