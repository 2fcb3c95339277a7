#!/usr/bin/env python3
"""Releases through faults: releasekit against `skopeo copy --retry-times 3`, on the same work.

Each tool has its own fault-injecting proxy (same seed, same rate) in front of one local registry,
answering a share of requests with a fault (503; 429 with Retry-After; a reset mid-body; a slow answer;
a response cut in half). Both push the same 3-layer image (three 1 MiB layers of random data) --releases
times, each run to a fresh repository of its own, so every run uploads every blob; the order alternates
per run. releasekit runs with its defaults (60 s per request, 6 tries within 300 s); skopeo with its
defaults plus `--retry-times 3` (its default is no retry at all). Reports completions, the bytes each
tool sent through its proxy, and time. Ends with one JSON line; `ratio` = releasekit's time / skopeo's.
Target: releasekit completes every release.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))

from helpers import releases
from helpers.servers import Registry
from helpers.slow_proxy import SlowProxy
from releasekit.publishing.layout_builder import build_layout

SEED = 20261122
FAILURES = []  # releasekit's last line of each failed release


def three_layer_image(workdir):
    """Three layers, each 1 MiB of random data, built one on top of the other."""
    base = None
    for index in range(3):
        layout = os.path.join(workdir, "image{}".format(index))
        source = os.path.join(workdir, "layer{}.bin".format(index))
        with open(source, "wb") as handle:
            handle.write(os.urandom(1 << 20))
        build_layout(layout, [("/layer{}/data.bin".format(index), source)], base_dir=base)
        base = layout
    return base


def push_with_releasekit(workdir, layout, proxy, index):
    manifest, runfiles = releases.container_release(os.path.join(workdir, "rk{}".format(index)), layout,
                                                    "bench/releasekit{}".format(index), "ci", ["r{}".format(index)])
    config = releases.write_config(os.path.join(workdir, "releasekit.yaml"), proxy.host)
    env = dict(os.environ, RELEASEKIT_CONFIG=config, CI="true", RELEASEKIT_COMMIT=releases.COMMIT,
               RELEASEKIT_DIRTY="false",
               XDG_CACHE_HOME=os.path.join(workdir, "cache{}".format(index)))
    result = subprocess.run([sys.executable, releases.ENTRY, "publish", "--manifest", manifest, "--runfiles", runfiles],
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        FAILURES.append(result.stderr.strip().splitlines()[-1][:400] if result.stderr.strip() else "exit {}".format(
            result.returncode))
    return result.returncode == 0


def push_with_skopeo(workdir, layout, proxy, index):
    return subprocess.run(["skopeo", "copy", "--quiet", "--retry-times", "3", "--dest-tls-verify=false",
                           "oci:" + layout,
                           "docker://{}/bench/skopeo{}:r{}".format(proxy.host, index, index)],
                          capture_output=True, text=True).returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="releasekit-bench-faults-")
    registry = Registry(os.path.join(workdir, "registry"))
    tools = {
        "releasekit": {"push": push_with_releasekit, "completed": 0, "seconds": 0.0,
                       "proxy": SlowProxy(registry.host, fault_rate=args.fault_rate, slow_seconds=1.0, seed=SEED)},
        "skopeo": {"push": push_with_skopeo, "completed": 0, "seconds": 0.0,
                   "proxy": SlowProxy(registry.host, fault_rate=args.fault_rate, slow_seconds=1.0, seed=SEED)},
    }
    try:
        layout = three_layer_image(workdir)
        for index in range(args.releases):
            order = ["releasekit", "skopeo"] if index % 2 == 0 else ["skopeo", "releasekit"]
            for name in order:
                tool = tools[name]
                started = time.perf_counter()
                tool["completed"] += tool["push"](workdir, layout, tool["proxy"], index)
                tool["seconds"] += time.perf_counter() - started
        ours, theirs = tools["releasekit"], tools["skopeo"]
        result = {
            "benchmark": "faults",
            "fault_rate": args.fault_rate,
            "releases": args.releases,
            "layers": 3,
            "releasekit_completed": ours["completed"],
            "skopeo_completed": theirs["completed"],
            "releasekit_s": round(ours["seconds"], 1),
            "skopeo_s": round(theirs["seconds"], 1),
            "releasekit_sent_bytes": ours["proxy"].bytes_received,
            "skopeo_sent_bytes": theirs["proxy"].bytes_received,
            "ratio": round(ours["seconds"] / theirs["seconds"], 3),
            "releasekit_faults_injected": ours["proxy"].injected,
            "releasekit_failures": FAILURES,
            "skopeo_faults_injected": theirs["proxy"].injected,
        }
        print("at a {fault_rate:.0%} fault rate, {layers}-layer image, fresh repository per run: releasekit "
              "{releasekit_completed}/{releases} in {releasekit_s}s sending {releasekit_sent_bytes} bytes; skopeo "
              "--retry-times 3 {skopeo_completed}/{releases} in {skopeo_s}s sending {skopeo_sent_bytes} "
              "bytes".format(**result))
        print(json.dumps(result))
    finally:
        for tool in tools.values():
            tool["proxy"].stop()
        registry.stop()
        subprocess.run(["rm", "-rf", workdir])


if __name__ == "__main__":
    main()
