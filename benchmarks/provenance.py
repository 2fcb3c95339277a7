#!/usr/bin/env python3
"""What signed provenance costs a release: requests and milliseconds, per kind, with and without it.

Each kind's CI release runs in this process (the publisher's library, as the release target's process runs it, less
the interpreter's start) through a counting proxy in front of a local registry (Debian's distribution, no referrers
API: the tag-schema fallback) and an nginx WebDAV store. Each sample publishes a fresh version (a new image, jar,
file or deploy version), alternating with and without provenance, signed with an Ed25519 key. Kinds: an image, a jar,
a file, and the example's deploy release (built once by Bazel) with a deploy_registry, so its images and its Flux
artifact are attached too. Ends with one JSON line; --out writes the results file the docs quote.
"""

import argparse
import datetime
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))

from conftest import TEST_PASSWORD, TEST_USER, _new_key  # noqa: E402
from helpers import releases  # noqa: E402
from helpers.images import make_layout  # noqa: E402
from helpers.servers import NginxStore, Registry  # noqa: E402
from helpers.slow_proxy import KillGate, SlowProxy  # noqa: E402
from helpers.workspace import Workspace  # noqa: E402
from releasekit.publishing.publisher import PublishOptions, publish  # noqa: E402

SEED = 20261206


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8, help="releases per kind and arm (default 8)")
    parser.add_argument("--out", help="write the results file (JSON) here")
    parser.add_argument("--skip-deploy", action="store_true", help="leave out the deploy release (it needs Bazel)")
    args = parser.parse_args()
    rng = random.Random(SEED)
    work = tempfile.mkdtemp(prefix="provenance-bench-")
    registry = Registry(os.path.join(work, "registry"))
    store = NginxStore(os.path.join(work, "store"), TEST_USER, TEST_PASSWORD)
    gate = KillGate()
    registry_proxy = SlowProxy(registry.host, gate=gate, name="registry")
    store_proxy = SlowProxy("127.0.0.1:{}".format(store.port), gate=gate, name="store")
    workspace = None
    try:
        config = os.path.join(work, "releasekit.yaml")
        with open(config, "w") as handle:
            handle.write("channels:\n  ci: {{registry: 'http://{0}/prod', maven: '{1}/maven', files: '{1}/files', "
                         "deploy: '{1}/deploy', deploy_registry: 'http://{0}/deploy'}}\n"
                         "  dev: {{registry: 'http://{0}/dev', maven: '{1}/maven-dev'}}\n".format(
                             registry_proxy.host, store_proxy.url))
        environ = dict(os.environ, CI="true", RELEASEKIT_CONFIG=config, RELEASEKIT_COMMIT=releases.COMMIT,
                       RELEASEKIT_DIRTY="false", RELEASEKIT_SIGNING_KEY=_new_key("ed25519"),
                       XDG_CACHE_HOME=os.path.join(work, "cache"), RELEASEKIT_MAVEN_USERNAME=TEST_USER,
                       RELEASEKIT_MAVEN_PASSWORD=TEST_PASSWORD, RELEASEKIT_FILES_USERNAME=TEST_USER,
                       RELEASEKIT_FILES_PASSWORD=TEST_PASSWORD, RELEASEKIT_DEPLOY_USERNAME=TEST_USER,
                       RELEASEKIT_DEPLOY_PASSWORD=TEST_PASSWORD)
        kinds = {"image": image_release(work), "jar": jar_release(work), "file": file_release(work)}
        if not args.skip_deploy:
            workspace, kinds["deploy"] = deploy_release(work)
        figures = {}
        for kind, make in kinds.items():
            samples = {True: [], False: []}
            make(environ, "warm-up", gate)  # the channel marker, owner records and first pointers: once per place
            for index in range(args.samples):
                arms = [True, False] if index % 2 == 0 else [False, True]
                for with_provenance in arms:
                    samples[with_provenance].append(make(environ, "{}-{}".format(index, with_provenance), gate,
                                                         with_provenance, rng))
            figures[kind] = {arm: summary(samples[flag]) for arm, flag in (("with", True), ("without", False))}
            figures[kind]["added_requests"] = figures[kind]["with"]["requests"] - figures[kind]["without"]["requests"]
            timed = figures[kind]
            timed["added_ms"] = round(timed["with"]["median_ms"] - timed["without"]["median_ms"], 1)
        result = {"benchmark": "provenance", "samples": args.samples, "seed": SEED, "kinds": figures,
                  "commit": _commit(), "date": datetime.date.today().isoformat(), "cpus": os.cpu_count()}
        line = json.dumps(result, sort_keys=True)
        print(line)
        if args.out:
            with open(args.out, "w") as handle:
                handle.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    finally:
        if workspace is not None:
            workspace.shutdown()
        registry_proxy.stop()
        store_proxy.stop()
        registry.stop()
        store.stop()


def summary(samples):
    requests = sorted(s[0] for s in samples)
    milliseconds = [s[1] for s in samples]
    return {"requests": requests[len(requests) // 2], "median_ms": round(statistics.median(milliseconds), 1),
            "min_ms": round(min(milliseconds), 1), "max_ms": round(max(milliseconds), 1)}


def _publish(manifest, runfiles, environ, gate, with_provenance=True, version=None):
    env = dict(environ, RELEASEKIT_VERSION=version) if version else environ
    gate.arm(None)
    started = time.perf_counter()
    record = publish(manifest, PublishOptions(runfiles_dir=runfiles, environ=env, provenance=with_provenance))
    elapsed = (time.perf_counter() - started) * 1000
    assert record.get("status", "published") in ("published", "completed"), record
    assert ("provenance" in record) == with_provenance, record
    return len(gate.seen), elapsed


def image_release(work):
    def release(environ, name, gate, with_provenance=True, rng=None):
        layout = os.path.join(work, "img-" + name)
        make_layout(layout, {"/app/data": (rng or random.Random(1)).randbytes(100_000), "/n": name.encode()})
        manifest, runfiles = releases.container_release(os.path.join(work, "ri-" + name), layout, "bench/app", "ci",
                                                        ["stable"])
        return _publish(manifest, runfiles, environ, gate, with_provenance)
    return release


def jar_release(work):
    numbers = itertools.count()

    def release(environ, name, gate, with_provenance=True, rng=None):
        jar = releases.make_jar(os.path.join(work, "lib-{}.jar".format(name)), "bench " + name)
        version = "1.0.{}".format(next(numbers))
        manifest, runfiles = releases.jar_release(os.path.join(work, "rj-" + name), jar,
                                                  "com.example.bench:lib:" + version, name="lib")
        return _publish(manifest, runfiles, environ, gate, with_provenance)
    return release


def file_release(work):
    def release(environ, name, gate, with_provenance=True, rng=None):
        path = os.path.join(work, "bundle-" + name)
        with open(path, "wb") as handle:
            handle.write((rng or random.Random(2)).randbytes(100_000))
        manifest, runfiles = releases.file_release(os.path.join(work, "rf-" + name), path, "ci", name="bundle")
        return _publish(manifest, runfiles, environ, gate, with_provenance, version="v-" + name)
    return release


def deploy_release(work):
    """The example's deploy release, built once; each sample is a new version of the same YAML and image."""
    workspace = Workspace.copy_of(os.path.join(REPO_ROOT, "examples"), os.path.join(work, "examples"))
    workspace.bazel("build", "//services/hello:hello_deploy.ci")
    runfiles = os.path.join(workspace.path, "bazel-bin/services/hello/hello_deploy.ci.runfiles")
    manifest = subprocess.run(["find", runfiles, "-name", "hello_deploy.ci.release.json"], capture_output=True,
                              text=True, check=True).stdout.split()[0]

    head = subprocess.run(["git", "-C", workspace.path, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()

    def release(environ, name, gate, with_provenance=True, rng=None):
        env = dict(environ, BUILD_WORKSPACE_DIRECTORY=workspace.path, RELEASEKIT_COMMIT=head)
        return _publish(manifest, runfiles, env, gate, with_provenance, version="v-" + name)
    return workspace, release


def _commit():
    result = subprocess.run(["git", "-C", REPO_ROOT, "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip()


if __name__ == "__main__":
    main()
