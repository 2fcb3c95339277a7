#!/usr/bin/env python3
"""The main job on the example monorepo, end to end, on this machine alone.

Copies the example monorepo into a temporary git repository and commits a change to a
service and a library. Then `releasekit collect` selects the affected tests and releases,
and `releasekit dispatch` runs the tests with Bazel and the releases (built once, run side
by side) against a local OCI registry and artifact store that this script starts, and
appends the run to a run history in that store. A developer's dev release follows, what
was published is shown, and `releasekit insight` draws the history into
demo-insight.html. Everything started is stopped.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))

from helpers.servers import NginxStore, Registry
from helpers.workspace import BAZEL, Workspace

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
INSIGHT_PAGE = os.path.join(REPO_ROOT, "demo-insight.html")  # kept: open it in a browser


def step(title):
    print("\n== {}".format(title), flush=True)


def run(command, cwd, env=None, quiet=False):
    result = subprocess.run(command, cwd=cwd, env=env, text=True, capture_output=quiet)
    if result.returncode != 0:
        if quiet:
            sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        raise SystemExit("demo: {} failed".format(" ".join(command[:3])))
    return result.stdout


def main():
    workdir = tempfile.mkdtemp(prefix="releasekit-demo-")
    registry = Registry(os.path.join(workdir, "registry"))
    store = NginxStore(os.path.join(workdir, "store"), "demo", "demo-password")
    workspace = None
    try:
        config = os.path.join(workdir, "releasekit.yaml")
        with open(config, "w") as handle:
            handle.write(
                "channels:\n"
                "  ci: {{registry: 'http://{0}/prod', maven: '{1}/releases', deploy: '{1}/deploy/prod', "
                "files: '{1}/files/prod'}}\n"
                "  dev: {{registry: 'http://{0}/dev', maven: '{1}/snapshots', deploy: '{1}/deploy/dev', "
                "files: '{1}/files/dev'}}\n".format(
                    registry.host, store.url))
        env = dict(os.environ, RELEASEKIT_CONFIG=config, RELEASEKIT_BAZEL=BAZEL,
                   XDG_CACHE_HOME=os.path.join(workdir, "cache"),
                   RELEASEKIT_MAVEN_USERNAME="demo", RELEASEKIT_MAVEN_PASSWORD="demo-password",
                   RELEASEKIT_DEPLOY_USERNAME="demo", RELEASEKIT_DEPLOY_PASSWORD="demo-password",
                   RELEASEKIT_FILES_USERNAME="demo", RELEASEKIT_FILES_PASSWORD="demo-password",
                   RELEASEKIT_VERSION="1.0.0",
                   RELEASEKIT_HISTORY_USERNAME="demo", RELEASEKIT_HISTORY_PASSWORD="demo-password")
        history = store.url + "/ci-history"
        print("local registry {}, local Maven store {}, config {}".format(registry.url, store.url, config))

        step("a change: the example monorepo in a git repository, one commit touching services/hello, libs/greeting "
             "and the fleet's configuration and deploy YAML")
        workspace = Workspace.copy_of(HERE, os.path.join(workdir, "monorepo"))
        with open(os.path.join(workspace.path, "services/hello/hello.sh"), "a") as handle:
            handle.write("# a change to the hello service\n")
        with open(os.path.join(workspace.path, "libs/greeting/src/com/example/greeting/Greeting.java"), "a") as handle:
            handle.write("// a change to the greeting library\n")
        with open(os.path.join(workspace.path, "services/fleet/fleet.conf"), "a") as handle:
            handle.write("workers_per_cpu = 2\n")
        fleet_deploy = os.path.join(workspace.path, "services/fleet/deploy/fleet.yaml")
        with open(fleet_deploy) as handle:
            text = handle.read()
        with open(fleet_deploy, "w") as handle:
            handle.write(text.replace("instances: 4", "instances: 6"))
        workspace.commit("Change the hello service, the greeting library and the fleet's configuration and size")
        print(run(["git", "log", "--stat", "--format=%h %s", "-1"], workspace.path, quiet=True).strip())

        step("collect: the tests and CI releases this change affects")
        tests_json, releases_json = os.path.join(workdir, "tests.json"), os.path.join(workdir, "releases.json")
        collected = run([sys.executable, ENTRY, "collect", "--base", "HEAD~1", "--head", "HEAD",
                         "--tests-out", tests_json, "--releases-out", releases_json], workspace.path, env, quiet=True)
        print(collected.strip())
        for kind, path in (("tests", tests_json), ("releases", releases_json)):
            for target in json.load(open(path))["targets"]:
                print("  {:<8} {:<36} {:<20} because of {}".format(kind, target["label"], target["kind"],
                                                                   ", ".join(target["reasons"])))

        step("dispatch: the tests with Bazel, then the releases built once and run side by side (CI=true), the run "
             "appended to the run history")
        result = subprocess.run([sys.executable, ENTRY, "dispatch", "--tests", tests_json, "--releases", releases_json,
                                 "--workers", "4", "--logs", os.path.join(workdir, "logs"), "--history", history,
                                 "--profile"],
                                cwd=workspace.path, env=dict(env, CI="true"), text=True, capture_output=True)
        print("\n".join("  " + line for line in result.stdout.strip().splitlines()
                        if not line.startswith("report:")))
        if result.returncode != 0:
            sys.stderr.write(result.stderr[-3000:])
            raise SystemExit("demo: dispatch failed")

        step("a developer's dev release (bazel run //services/greeter:greeter.dev)")
        print("  " + run([BAZEL, "run", "--noshow_progress", "//services/greeter:greeter.dev"], workspace.path, env,
                         quiet=True).strip())

        step("what the registry holds now (skopeo inspect)")
        for repository in sorted(registry.catalog()):
            tags = registry.tags(repository)
            if repository.endswith("releasekit-channel"):
                records = [tag for tag in tags if tag.startswith(("owner.", "pointer."))]
                print("  {}/{}  tags: {}  (the CI channel's marker: dev releases refuse to write below it), and {} "
                      "owner and {} pointer records".format(
                          registry.host, repository, ", ".join(t for t in tags if t not in records),
                          sum(t.startswith("owner.") for t in records), sum(t.startswith("pointer.") for t in records)))
                continue
            digest = registry.inspect("{}:{}".format(repository, tags[0]))["Digest"]
            print("  {}/{}  {}  tags: {}".format(registry.host, repository, digest[:19], ", ".join(tags)))

        step("what the artifact store holds now (jars, deploy YAML, the fleet's bundle)")
        for directory, _, files in sorted(os.walk(store.root)):
            published = sorted(f for f in files if f.endswith((".jar", ".pom", "maven-metadata.xml", ".yaml", "latest",
                                                               ".tar.gz", ".tar.gz.sha256")))
            if published:
                print("  {}/{}/  {}".format(store.url, os.path.relpath(directory, store.root), ", ".join(published)))
        for directory, _, files in os.walk(os.path.join(store.root, "deploy")):
            for name in files:
                if name.endswith(".yaml"):
                    images = [line.strip() for line in open(os.path.join(directory, name)) if "image:" in line]
                    print("  {} pins {}".format(name, "; ".join(images)))
        step("what a CD system reads for hello's deploy (releasekit deployed): the version, the YAML, every image "
             "there")
        print("\n".join("  " + line for line in run(
            [sys.executable, ENTRY, "deployed", "//services/hello:hello_deploy", "--config", config], workspace.path,
            env,
            quiet=True).splitlines()))

        step("the run history, drawn (releasekit insight): wall time, slowest targets, critical path, lead time")
        print("\n".join("  " + line for line in run(
            [sys.executable, ENTRY, "insight", "--history", history, "--out", INSIGHT_PAGE], workspace.path, env,
            quiet=True).splitlines()))
    finally:
        registry.stop()
        store.stop()
        if workspace is not None:
            workspace.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
