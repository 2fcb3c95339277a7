#!/usr/bin/env python3
"""The main job on the example monorepo, end to end, on this machine alone.

Starts a local OCI registry, then: select what to test and release, run the tests,
build the release targets once and run the CI releases side by side, publish one dev
release, and show what the registry now holds. Stops everything it started.
"""

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))

from helpers.servers import Registry  # noqa: E402

BAZEL = os.environ.get("BAZEL") or os.path.join(REPO_ROOT, "tests", "bazel", "bazel")


def step(title):
    print("\n== {}".format(title), flush=True)


def bazel(*args, capture=False):
    result = subprocess.run([BAZEL, *args], cwd=HERE, text=True, capture_output=capture)
    if result.returncode != 0:
        if capture:
            sys.stderr.write(result.stderr[-4000:])
        raise SystemExit("demo: bazel {} failed".format(args[0]))
    return result.stdout


def query(expression):
    return bazel("query", expression, "--order_output=no", capture=True).split()


def main():
    workdir = tempfile.mkdtemp(prefix="releasekit-demo-")
    registry = Registry(os.path.join(workdir, "registry"))
    try:
        config = os.path.join(workdir, "releasekit.yaml")
        with open(config, "w") as handle:
            handle.write("channels:\n  ci: {{registry: 'http://{0}/prod'}}\n  dev: {{registry: 'http://{0}/dev'}}\n".format(registry.host))
        env = dict(os.environ, RELEASEKIT_CONFIG=config, XDG_CACHE_HOME=os.path.join(workdir, "cache"))
        print("local registry: {}  (config {})".format(registry.url, config))

        step("select: tests and CI releases of the example monorepo (no-ci and manual left out)")
        skip = "attr(tags, '\\bno-ci\\b|\\bmanual\\b', //...)"
        tests = query("tests(//...) except {}".format(skip))
        releases = query("kind(artifact_ci_release, //...) except {}".format(skip))
        print(json.dumps({"tests": tests, "releases": releases}, indent=2))

        step("test")
        bazel("test", *tests)

        step("release: one build, then the built release executables side by side")
        bazel("build", *releases)
        ci_env = dict(env, CI="true")

        def run(label):
            package, name = label[2:].split(":")
            executable = os.path.join(HERE, "bazel-bin", package, name)
            report = os.path.join(workdir, name + ".record.json")
            result = subprocess.run([executable], env=dict(ci_env, RELEASEKIT_REPORT=report, BUILD_WORKSPACE_DIRECTORY=HERE),
                                    capture_output=True, text=True)
            return label, result

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            failed = False
            for label, result in pool.map(run, releases):
                print((result.stdout or result.stderr).strip())
                failed = failed or result.returncode != 0
        if failed:
            raise SystemExit("demo: a release failed")

        step("dev release, as a developer would from a laptop")
        subprocess.run([BAZEL, "run", "//services/greeter:greeter.dev"], cwd=HERE, env=env, check=True,
                       stderr=subprocess.DEVNULL)

        step("what the registry holds now (skopeo)")
        for repository in sorted(registry.catalog()):
            tags = registry.tags(repository)
            digest = registry.inspect("{}:{}".format(repository, tags[0]))["Digest"]
            print("{}/{}  {}  tags: {}".format(registry.host, repository, digest[:19], ", ".join(tags)))
    finally:
        registry.stop()
        subprocess.run([BAZEL, "shutdown"], cwd=HERE, capture_output=True)


if __name__ == "__main__":
    main()
