#!/usr/bin/env python3
"""Image push: releasekit against `skopeo copy`, on the same generated image and registry.

Generates an OCI layout of 3 layers (~300 MB of random data), then on a local
distribution registry: a cold push by each tool to a registry of its own (median of
--rounds, alternating which tool goes first, the disk synced before each push), a re-push by releasekit
(bytes sent must be 0), and the publisher's peak memory pushing a 1 GB layer. Ends with one JSON line;
`ratio` = releasekit / skopeo.
Targets: ratio <= 1.0, re-push < 0.5 s, peak memory < 150 MB.
"""

import argparse
import gzip
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))

from helpers import releases
from helpers.servers import Registry
from releasekit.publishing.oci import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, canonical_json
from releasekit.publishing.layout_builder import write_blob


class _HashingWriter:
    """Hashes the uncompressed tar stream (the layer's diff_id) on its way into gzip."""

    def __init__(self, target):
        self.target, self.hasher = target, hashlib.sha256()

    def write(self, data):
        self.hasher.update(data)
        return self.target.write(data)

    def tell(self):
        return self.target.tell()


def write_random_layer(directory, size):
    """A gzip'd tar of one file of random bytes, streamed to disk (gzip level 0 keeps it fast)."""
    tmp = os.path.join(directory, "layer.tmp")
    with open(tmp, "wb") as out, gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=0, mtime=0) as gz:
        writer = _HashingWriter(gz)
        with tarfile.open(fileobj=writer, mode="w") as tar:
            info = tarfile.TarInfo("data/random.bin")
            info.size = size
            tar.addfile(info, _RandomReader(size))
    digest = hashlib.sha256()
    with open(tmp, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    os.replace(tmp, os.path.join(directory, "blobs", "sha256", digest.hexdigest()))
    return {"mediaType": OCI_LAYER + "+gzip", "digest": "sha256:" + digest.hexdigest(), "size": os.path.getsize(
        os.path.join(directory, "blobs", "sha256", digest.hexdigest()))}, "sha256:" + writer.hasher.hexdigest()


class _RandomReader:
    def __init__(self, size):
        self.left = size

    def read(self, count=-1):
        count = self.left if count < 0 else min(count, self.left)
        self.left -= count
        return os.urandom(count)


def make_image(directory, layer_sizes):
    os.makedirs(os.path.join(directory, "blobs", "sha256"), exist_ok=True)
    layers, diff_ids = [], []
    for size in layer_sizes:
        layer, diff_id = write_random_layer(directory, size)
        layers.append(layer)
        diff_ids.append(diff_id)
    config = canonical_json({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    manifest = canonical_json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": write_blob(directory, config), "size": len(config)},
        "layers": layers,
    })
    digest = write_blob(directory, manifest)
    with open(os.path.join(directory, "index.json"), "wb") as handle:
        handle.write(canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)}]}))
    with open(os.path.join(directory, "oci-layout"), "wb") as handle:
        handle.write(b'{"imageLayoutVersion":"1.0.0"}')
    return sum(layer["size"] for layer in layers)


# Runs the command as its child and reports the child's peak RSS: measured from a small
# process, so the figure is the command's own and not pages inherited from this one.
_MEASURE = (
    "import os, resource, subprocess, sys; "
    "code = subprocess.call(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
)


def timed(command, env=None):
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _MEASURE, *command], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit("benchmark: {} failed:\n{}".format(command[0], result.stderr[-2000:]))
    peak_kb = int(result.stderr.strip().splitlines()[-1])
    return elapsed, peak_kb / 1024.0, result.stdout


def releasekit_push(workdir, layout, registry, repository, name):
    manifest, runfiles = releases.container_release(os.path.join(workdir, name), layout, repository, "dev")
    config = releases.write_config(os.path.join(workdir, name, "releasekit.yaml"), registry.host)
    report = os.path.join(workdir, name, "record.json")
    env = dict(os.environ, RELEASEKIT_CONFIG=config, RELEASEKIT_COMMIT=releases.COMMIT, RELEASEKIT_DIRTY="false",
               RELEASEKIT_REPORT=report,
               XDG_CACHE_HOME=os.path.join(workdir, name, "cache"))
    command = [sys.executable, releases.ENTRY, "publish", "--manifest", manifest, "--runfiles", runfiles]
    elapsed, peak_mb, _ = timed(command, env)
    with open(report) as handle:
        return elapsed, peak_mb, json.load(handle), command, env


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layer-mb", type=int, default=100, help="size of each of the 3 layers")
    parser.add_argument("--big-layer-mb", type=int, default=1024, help="layer size for the memory figure (0 skips it)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="releasekit-bench-push-")
    registries = []

    def fresh_registry():
        # A registry of its own per cold push: no tool can mount blobs another push left behind.
        registries.append(Registry(os.path.join(workdir, "registry{}".format(len(registries)))))
        return registries[-1]

    try:
        layout = os.path.join(workdir, "image")
        total = make_image(layout, [args.layer_mb << 20] * 3)
        ours, theirs = [], []

        def push_ours(round_index):
            nonlocal command, env
            elapsed, _, record, command, env = releasekit_push(workdir, layout, fresh_registry(), "bench/app",
                                                               "rk{}".format(round_index))
            assert record["bytes_uploaded"] >= total, record
            ours.append(elapsed)

        def push_theirs(round_index):
            registry = fresh_registry()
            theirs.append(timed(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:" + layout,
                                 "docker://{}/bench/app:latest".format(registry.host)])[0])

        command = env = None
        for round_index in range(args.rounds):
            # Alternate who goes first; before each cold push, the previous push's writes reach the disk, so
            # neither tool's time carries the other's write-back.
            for push in (push_ours, push_theirs) if round_index % 2 == 0 else (push_theirs, push_ours):
                os.sync()
                push(round_index)
        # Re-push of the last image releasekit pushed: every blob is there already. Median of 3,
        # after the registries' writes have reached the disk.
        os.sync()
        repush_s = statistics.median(timed(command, env)[0] for _ in range(3))
        with open(env["RELEASEKIT_REPORT"]) as handle:
            repush_bytes = json.load(handle)["bytes_uploaded"]

        peak_mb = None
        if args.big_layer_mb:
            big = os.path.join(workdir, "big")
            make_image(big, [args.big_layer_mb << 20])
            _, peak_mb, record, _, _ = releasekit_push(workdir, big, fresh_registry(), "bench/big", "big")
            assert record["bytes_uploaded"] >= args.big_layer_mb << 20
        result = {
            "benchmark": "push",
            "image_mb": round(total / (1 << 20)),
            "releasekit_cold_s": round(statistics.median(ours), 3),
            "skopeo_cold_s": round(statistics.median(theirs), 3),
            "ratio": round(statistics.median(ours) / statistics.median(theirs), 3),
            "repush_s": round(repush_s, 3),
            "repush_bytes": repush_bytes,
            "peak_rss_mb_big_layer": round(peak_mb, 1) if peak_mb else None,
            "big_layer_mb": args.big_layer_mb,
            "rounds": args.rounds,
        }
        print("releasekit cold push {releasekit_cold_s}s, skopeo {skopeo_cold_s}s, ratio {ratio}; re-push "
              "{repush_s}s with {repush_bytes} bytes; peak RSS {peak_rss_mb_big_layer} MB for a {big_layer_mb} MB "
              "layer".format(**result))
        print(json.dumps(result))
    finally:
        for registry in registries:
            registry.stop()
        subprocess.run(["rm", "-rf", workdir])


if __name__ == "__main__":
    main()
