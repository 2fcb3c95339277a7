#!/usr/bin/env python3
"""Lazy push: a fresh agent with a warm HTTP remote cache (nginx), eager (today) against lazy, and fan-out.

Builds an image of 4 layers (256 MiB of random bytes each, 1 GiB; --quick: 8 MiB each) with Bazel and puts it in the
remote cache from a builder's output base. Then, for each case, on a registry of its own (in memory):
  (a) the registry already has every layer (a re-release after a no-op change),
  (b) it lacks one layer (the last, 256 MiB),
  (c) it lacks all,
a fresh agent (a new output base, its Bazel server started and the release target analysed first, untimed, as
`releasekit ci`'s collect does) builds the release target and runs it:
  eager: `bazel build` as today (Bazel downloads every output), then the release reads the image from disk;
  lazy:  `bazel build --remote_download_minimal --build_runfile_links`, then the release streams the blobs the
         registry lacks from the cache (what dispatch does when the build has an HTTP remote cache).
Measured for each: bytes the cache served the agent (nginx's log), bytes the registry took, wall time of build and
release, the release's peak RSS, and what of the image's layers is on the agent's disk afterwards.
Fan-out: one release to a registry and 2 mirrors against 3 releases one after the other, one registry each (the
image on disk, fresh registries), twice: each registry behind a link of its own of --link-mib-per-second (a
rate-limited TCP proxy on loopback, benchmarks/link_proxy.py; both arms through the same links), as regional mirrors
are: fan_out_ratio; and straight to the registries on loopback, where the registries and the release share this
machine's cores and disk: fan_out_loopback_ratio.

Each case and mode runs --samples times (eager and lazy first in turn; figures are medians). Ends with one JSON line
(ratio: lazy / eager wall time when the registry has every layer, the headline; present_downloaded_bytes,
present_ratio, missing_one_ratio, missing_all_ratio, fan_out_ratio, fan_out_loopback_ratio, ...). Without --quick
the figures are written to docs/lazy-push.json with the commit, date, seed and load; --quick writes to a scratch
directory. Targets: (a) < 1 MB downloaded and <= 0.2x eager's time; (b) and (c) <= eager's time with no layer on
disk; peak RSS < 100 MB; fan-out (through the links) <= 0.5x.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))

from helpers.servers import NginxStore, Registry  # noqa: E402
from helpers.workspace import BAZEL, Workspace  # noqa: E402
from link_proxy import LinkProxy  # noqa: E402

COMMIT = "0123456789abcdef0123456789abcdef01234567"
BUILD = """load("@rules_release//rules:defs.bzl", "container_release", "image_layout")

[genrule(
    name = "data_%d" % index,
    outs = ["data_%d.bin" % index],
    cmd = ("python3 -c 'import random, sys; r = random.Random(%d); " +
           "[sys.stdout.buffer.write(r.randbytes(1 << 20)) for _ in range(%d)]' > $@") % ({seed} * 10 + index, {mib}),
) for index in range(1, 5)]

image_layout(name = "layers_1", files = {{":data_1": "/data/1.bin"}})

[image_layout(
    name = "layers_%d" % index,
    base = ":layers_%d" % (index - 1),
    files = {{":data_%d" % index: "/data/%d.bin" % index}},
) for index in range(2, 5)]

container_release(name = "big", image = ":layers_4", repository = "bench/big")
"""


class Agent:
    def __init__(self, workspace, root, name):
        self.workspace, self.output_base = workspace, os.path.join(root, name)

    def bazel(self, *args, check=True):
        result = subprocess.run([BAZEL, "--output_base=" + self.output_base, *args], cwd=self.workspace.path,
                                capture_output=True, text=True, timeout=3600)
        if check and result.returncode != 0:
            raise RuntimeError("bazel {} failed:\n{}".format(" ".join(args), result.stderr[-3000:]))
        return result

    def bin(self, relative=""):
        return os.path.join(self.output_base, "execroot", "bench", "bazel-out", "k8-fastbuild", "bin", relative)

    def release(self, config, extra_env):
        """Run the release executable; (record, peak RSS in bytes)."""
        record = os.path.join(self.output_base + "-record.json")
        env = dict(os.environ, CI="true", RELEASEKIT_CONFIG=config, RELEASEKIT_COMMIT=COMMIT, RELEASEKIT_DIRTY="false",
                   RELEASEKIT_REPORT=record, XDG_CACHE_HOME=self.output_base + "-xdg", **extra_env)
        result = subprocess.run(["/usr/bin/time", "-f", "peak-rss-kb %M", self.bin("big.ci")], cwd=self.workspace.path,
                                env=env, capture_output=True, text=True, timeout=3600)
        if result.returncode != 0:
            raise RuntimeError("the release failed:\n" + result.stdout + result.stderr)
        rss = int(re.search(r"peak-rss-kb (\d+)", result.stderr).group(1)) * 1024
        return json.load(open(record)), rss

    def layer_bytes_on_disk(self):
        blobs = self.bin("layers_4/blobs/sha256")
        return sum(os.path.getsize(os.path.join(blobs, n)) for n in os.listdir(blobs)) if os.path.isdir(blobs) else 0

    def remove(self):
        self.bazel("shutdown", check=False)
        subprocess.run(["chmod", "-R", "u+w", self.output_base], capture_output=True)
        shutil.rmtree(self.output_base, ignore_errors=True)


def cache_bytes_served(cache, since):
    """Bytes of the answers nginx sent since the log had `since` bytes."""
    with open(cache.request_log) as handle:
        handle.seek(since)
        return sum(int(m.group(1)) for m in re.finditer(r" sent=(\d+)", handle.read()))


def log_size(cache):
    return os.path.getsize(cache.request_log) if os.path.exists(cache.request_log) else 0


def config_for(path, *hosts):
    mirrors = ", ".join("'http://{}/prod'".format(host) for host in hosts[1:])
    with open(path, "w") as handle:
        handle.write("channels:\n  ci: {{registry: 'http://{}/prod'{}}}\n  dev: {{registry: 'http://{}/dev'}}\n".format(
            hosts[0], ", mirrors: [{}]".format(mirrors) if mirrors else "", hosts[0]))
    return path


def prepare_registry(registry, layout):
    """Put an image layout's blobs in the release's repository (skopeo), so that the registry already has them."""
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:" + layout,
                    "docker://{}/prod/bench/big:before".format(registry.host)], check=True, capture_output=True)


def run_case(root, workspace, cache, builder, case, mode, flags, sample):
    name = "{}-{}-{}".format(case, mode, sample)
    registry = Registry(os.path.join(root, "registry-" + name))
    agent = Agent(workspace, root, "agent-" + name)
    try:
        if case in ("a", "b"):
            prepare_registry(registry, builder.bin("layers_4" if case == "a" else "layers_3"))
        config = config_for(os.path.join(root, "releasekit-{}.yaml".format(name)), registry.host)
        build_flags = flags + (["--remote_download_minimal", "--build_runfile_links"] if mode == "lazy" else [])
        agent.bazel("build", "--nobuild", *build_flags, "//:big.ci")  # server up, target analysed: untimed
        since = log_size(cache)
        started = time.monotonic()
        agent.bazel("build", *build_flags, "//:big.ci")
        built = time.monotonic()
        extra = {"RELEASEKIT_REMOTE_CACHE": cache.url + "/cache"} if mode == "lazy" else {}
        record, rss = agent.release(config, extra)
        ended = time.monotonic()
        time.sleep(0.2)  # nginx writes a request's log line after its answer
        return {"case": case, "mode": mode, "sample": sample, "wall_seconds": round(ended - started, 3),
                "build_seconds": round(built - started, 3), "release_seconds": round(ended - built, 3),
                "downloaded_bytes": cache_bytes_served(cache, since), "uploaded_bytes": record["bytes_uploaded"],
                "peak_rss_bytes": rss, "layer_bytes_on_disk": agent.layer_bytes_on_disk(),
                "blobs_from_cache": record.get("blobs_from_cache", 0)}
    finally:
        agent.remove()
        registry.stop()
        shutil.rmtree(registry.workdir, ignore_errors=True)


def fan_out(root, builder, sample, link_rate=None):
    """(seconds of one release to 3 registries, seconds of 3 releases one registry each), the image on disk, fresh
    registries for each; the two go first in turn. link_rate: each registry behind a link of that many bytes per
    second (a LinkProxy), the same links for both; None: straight to the registries on loopback."""
    label = "{}-{}".format("link" if link_rate else "loop", sample)

    def reached(registries):
        """Each registry's address as the release reaches it, and what to stop afterwards."""
        proxies = [LinkProxy(r.host, link_rate) for r in registries] if link_rate else []
        return [p.host for p in proxies] or [r.host for r in registries], proxies

    def together():
        registries = [Registry(os.path.join(root, "fan-{}-{}".format(label, i))) for i in range(3)]
        hosts, proxies = reached(registries)
        try:
            started = time.monotonic()
            builder.release(config_for(os.path.join(root, "fan-{}.yaml".format(label)), *hosts), {})
            return time.monotonic() - started
        finally:
            _remove(registries, proxies)

    def one_by_one():
        registries = [Registry(os.path.join(root, "seq-{}-{}".format(label, i))) for i in range(3)]
        hosts, proxies = reached(registries)
        try:
            started = time.monotonic()
            for index, host in enumerate(hosts):
                builder.release(config_for(os.path.join(root, "seq-{}-{}.yaml".format(label, index)), host), {})
            return time.monotonic() - started
        finally:
            _remove(registries, proxies)

    if sample % 2 == 0:
        first = together()
        return first, one_by_one()
    second = one_by_one()
    return together(), second


def _remove(registries, proxies=()):
    for proxy in proxies:
        proxy.stop()
    for registry in registries:
        registry.stop()
        shutil.rmtree(registry.workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 MiB layers; results to a scratch directory")
    parser.add_argument("--seed", type=int, default=32)
    parser.add_argument("--samples", type=int, default=3, help="samples of each case and mode, and of fan-out (3)")
    parser.add_argument("--link-mib-per-second", type=float, default=100.0,
                        help="fan-out: the bandwidth of each registry's link (a rate-limited proxy on loopback), "
                             "in MiB per second, the same for both arms (100)")
    parser.add_argument("--out", help="the results file (default: docs/lazy-push.json; --quick: a scratch file)")
    parser.add_argument("--commit", help="the commit measured (default: this checkout's HEAD), for a copy of it")
    args = parser.parse_args()
    layer = (8 if args.quick else 256) << 20
    root = tempfile.mkdtemp(prefix="lazy-push-bench-")
    cache = NginxStore(os.path.join(root, "cache"))
    workspace = Workspace(os.path.join(root, "ws"))
    os.makedirs(workspace.path)
    workspace.write("WORKSPACE", 'workspace(name = "bench")\nlocal_repository(name = "rules_release", path = "{}")\n'
                    .format(REPO_ROOT))
    workspace.write("BUILD.bazel", BUILD.format(seed=args.seed, mib=layer >> 20))
    workspace.write(".gitignore", "/bazel-*\n")
    workspace.init_git()
    flags = ["--remote_cache={}/cache".format(cache.url), "--noshow_progress"]
    builder = Agent(workspace, root, "builder")
    load = os.getloadavg()
    try:
        builder.bazel("build", *flags, "//:big.ci")  # the warm cache every agent starts from
        rows, fans, linked_fans = [], [], []
        link_rate = int(args.link_mib_per_second * (1 << 20))
        for sample in range(args.samples):
            for index, case in enumerate(("a", "b", "c")):  # eager and lazy go first in turn
                for mode in (("eager", "lazy") if (index + sample) % 2 == 0 else ("lazy", "eager")):
                    rows.append(run_case(root, workspace, cache, builder, case, mode, flags, sample))
                    print(json.dumps(rows[-1]), file=sys.stderr)
            fans.append(fan_out(root, builder, sample))
            linked_fans.append(fan_out(root, builder, sample, link_rate))
            print(json.dumps({"fan_out_loopback": fans[-1], "fan_out_linked": linked_fans[-1]}), file=sys.stderr)
    finally:
        builder.remove()
        cache.stop()
        shutil.rmtree(root, ignore_errors=True)
    def of(case, mode, key):
        return [r[key] for r in rows if r["case"] == case and r["mode"] == mode]

    def ratio(case):  # lazy / eager, of the median wall times
        return round(statistics.median(of(case, "lazy", "wall_seconds")) /
                     statistics.median(of(case, "eager", "wall_seconds")), 3)

    together, one_by_one = (statistics.median(times) for times in zip(*fans))
    linked_together, linked_one_by_one = (statistics.median(times) for times in zip(*linked_fans))
    figures = {"ratio": ratio("a"), "present_downloaded_bytes": max(of("a", "lazy", "downloaded_bytes")),
               "present_ratio": ratio("a"), "missing_one_ratio": ratio("b"), "missing_all_ratio": ratio("c"),
               "fan_out_ratio": round(linked_together / linked_one_by_one, 3),
               "fan_out_seconds": round(linked_together, 3), "sequential_seconds": round(linked_one_by_one, 3),
               "link_mib_per_second": args.link_mib_per_second,
               "fan_out_loopback_ratio": round(together / one_by_one, 3),
               "fan_out_loopback_seconds": round(together, 3), "sequential_loopback_seconds": round(one_by_one, 3),
               "lazy_peak_rss_bytes": max(r["peak_rss_bytes"] for r in rows if r["mode"] == "lazy"),
               "lazy_layer_bytes_on_disk": max(r["layer_bytes_on_disk"] for r in rows if r["mode"] == "lazy"),
               "eager_wall_seconds": {c: statistics.median(of(c, "eager", "wall_seconds")) for c in "abc"},
               "lazy_wall_seconds": {c: statistics.median(of(c, "lazy", "wall_seconds")) for c in "abc"},
               "samples": args.samples, "layer_bytes": layer, "layers": 4}
    print(json.dumps(figures))
    commit = args.commit or subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                           text=True).stdout.strip()
    result = {"benchmark": "benchmarks/lazy_push.py" + (" --quick" if args.quick else ""), "commit": commit,
              "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "seed": args.seed,
              "load_average_at_start": [round(x, 2) for x in load], "cpus": os.cpu_count(),
              "figures": figures, "runs": rows, "fan_out_runs": [list(pair) for pair in linked_fans],
              "fan_out_loopback_runs": [list(pair) for pair in fans]}
    out = args.out or (os.path.join(tempfile.gettempdir(), "lazy-push-quick.json") if args.quick
                       else os.path.join(REPO_ROOT, "docs", "lazy-push.json"))
    with open(out, "w") as handle:
        json.dump(result, handle, indent=1)
        handle.write("\n")
    print("results: " + out, file=sys.stderr)


if __name__ == "__main__":
    main()
