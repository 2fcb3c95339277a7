#!/usr/bin/env python3
"""Releases through faults: releasekit against `skopeo copy --retry-times 3`, same proxy, same image.

A fault-injecting proxy in front of a local registry answers 30% of requests with a fault
(503; 429 with Retry-After; a reset mid-body; a slow answer; a response cut in half). Each
tool pushes the same 3-layer image 20 times, each to a fresh tag. Ends with one JSON line;
`ratio` = releasekit's time / skopeo's. Target: releasekit completes 20 of 20.
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

from helpers import releases  # noqa: E402
from helpers.servers import Registry  # noqa: E402
from helpers.slow_proxy import SlowProxy  # noqa: E402
from helpers.images import make_layout  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="releasekit-bench-faults-")
    registry = Registry(os.path.join(workdir, "registry"))
    proxy = SlowProxy(registry.host, fault_rate=args.fault_rate, slow_seconds=1.0, seed=20261122)
    try:
        layout = os.path.join(workdir, "image")
        make_layout(layout, {"/a": os.urandom(1 << 20), "/b": os.urandom(1 << 20), "/c": os.urandom(1 << 20)})
        config = releases.write_config(os.path.join(workdir, "releasekit.yaml"), proxy.host)
        ours = {"completed": 0, "seconds": 0.0}
        theirs = {"completed": 0, "seconds": 0.0}
        for index in range(args.releases):
            manifest, runfiles = releases.container_release(os.path.join(workdir, "rk{}".format(index)), layout,
                                                            "bench/releasekit", "ci", ["r{}".format(index)])
            env = dict(os.environ, RELEASEKIT_CONFIG=config, CI="true", RELEASEKIT_COMMIT=releases.COMMIT, RELEASEKIT_DIRTY="false",
                       XDG_CACHE_HOME=os.path.join(workdir, "cache{}".format(index)), RELEASEKIT_HTTP_TIMEOUT="5")
            started = time.perf_counter()
            result = subprocess.run([sys.executable, releases.ENTRY, "publish", "--manifest", manifest,
                                     "--runfiles", runfiles], env=env, capture_output=True, text=True)
            ours["seconds"] += time.perf_counter() - started
            ours["completed"] += result.returncode == 0
            started = time.perf_counter()
            result = subprocess.run(["skopeo", "copy", "--quiet", "--retry-times", "3", "--dest-tls-verify=false",
                                     "oci:" + layout, "docker://{}/bench/skopeo{}:r{}".format(proxy.host, index, index)],
                                    capture_output=True, text=True)
            theirs["seconds"] += time.perf_counter() - started
            theirs["completed"] += result.returncode == 0
        result = {
            "benchmark": "faults",
            "fault_rate": args.fault_rate,
            "releases": args.releases,
            "releasekit_completed": ours["completed"],
            "skopeo_completed": theirs["completed"],
            "releasekit_s": round(ours["seconds"], 1),
            "skopeo_s": round(theirs["seconds"], 1),
            "ratio": round(ours["seconds"] / theirs["seconds"], 3),
            "faults_injected": proxy.injected,
        }
        print("at a {fault_rate:.0%} fault rate: releasekit {releasekit_completed}/{releases} in {releasekit_s}s, "
              "skopeo --retry-times 3 {skopeo_completed}/{releases} in {skopeo_s}s".format(**result))
        print(json.dumps(result))
    finally:
        proxy.stop()
        registry.stop()
        subprocess.run(["rm", "-rf", workdir])


if __name__ == "__main__":
    main()
