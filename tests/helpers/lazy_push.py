"""A fresh CI agent's side of lazy push tests: a Bazel output base of its own, and `releasekit dispatch` run as CI
runs it. `lazy` is the test module's state: its root directory, Workspace, the build's flags, the agents started."""

import json
import os
import subprocess
import sys

from helpers.releases import ENTRY
from helpers.workspace import BAZEL, Workspace

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_workspace(root, registry, data, images):
    """The module's workspace at root/ws, committed: a genrule of reproducible bytes that do not compress (a rebuild
    makes the same layer) for each (name, seed, size) of data, an image_layout for each (name, base image or None,
    data name) of images, and container releases `app` of app_image and `other` of other_image, publishing to
    registry (a helpers.servers.Registry)."""
    rules = ['load("@rules_release//rules:defs.bzl", "container_release", "image_layout")\n']
    for name, seed, size in data:
        write = "sys.stdout.buffer.write(random.Random({}).randbytes({}))".format(seed, size)
        rules.append('genrule(\n    name = "data_{0}",\n    outs = ["{0}.bin"],\n'
                     '    cmd = "python3 -c \'import random, sys; {1}\' > $@",\n)\n'.format(name, write))
    for name, base, layer in images:
        rules.append('image_layout(name = "{}",{} files = {{":data_{}": "/{}.bin"}})\n'.format(
            name, ' base = ":{}",'.format(base) if base else "", layer, layer))
    rules.append('container_release(name = "app", image = ":app_image", repository = "lazy/app")\n'
                 'container_release(name = "other", image = ":other_image", repository = "lazy/other")\n')
    workspace = Workspace(os.path.join(root, "ws"))
    os.makedirs(workspace.path)
    workspace.write("WORKSPACE", 'workspace(name = "lazy")\nlocal_repository(name = "rules_release", path = "{}")\n'
                    .format(REPO_ROOT))
    workspace.write("BUILD.bazel", "\n".join(rules))
    workspace.write(".gitignore", "/bazel-*\n/releasekit-logs/\n")
    write_registry(workspace, registry)
    workspace.init_git()
    return workspace


def write_registry(workspace, registry):
    workspace.write("releasekit.yaml", "channels:\n  ci: {{registry: 'http://{0}/prod'}}\n"
                    "  dev: {{registry: 'http://{0}/dev'}}\n".format(registry.host))


class Agent:
    """A Bazel output base of its own, as on a fresh CI agent: a wrapper that dispatch runs as its Bazel."""

    def __init__(self, workspace, root, name):
        self.workspace, self.output_base = workspace, os.path.join(root, name + "-output-base")
        self.bazel = os.path.join(root, name + "-bazel")
        with open(self.bazel, "w") as handle:
            handle.write('#!/bin/sh\nexec {} --output_base={} "$@"\n'.format(BAZEL, self.output_base))
        os.chmod(self.bazel, 0o755)

    def run(self, *args):
        return subprocess.run([self.bazel, *args], cwd=self.workspace.path, capture_output=True, text=True, timeout=600)

    def bin(self, relative):
        return os.path.join(self.output_base, "execroot", "lazy", "bazel-out", "k8-fastbuild", "bin", relative)

    def shutdown(self):
        self.run("shutdown")


def fresh_agent(lazy, name):
    agent = Agent(lazy["workspace"], lazy["root"], name)
    lazy["agents"].append(agent)
    return agent


def dispatch(lazy, agent, label, logs, tests=()):
    selections = os.path.join(lazy["root"], "selections")
    os.makedirs(selections, exist_ok=True)
    for kind, targets in (("tests", list(tests)), ("releases", [label])):
        with open(os.path.join(selections, kind + ".json"), "w") as handle:
            json.dump({"format_version": 1, "kind": kind, "targets": [{"label": t, "kind": "artifact_ci_release",
                                                                       "reasons": []} for t in targets]}, handle)
    # The agent's own cache directory: where it remembers which repositories hold a blob, to mount it.
    env = dict(os.environ, CI="true", XDG_CACHE_HOME=agent.output_base + "-xdg")
    result = subprocess.run([sys.executable, ENTRY, "dispatch", "--workspace", lazy["workspace"].path,
                             "--bazel", agent.bazel, "--tests", os.path.join(selections, "tests.json"),
                             "--releases", os.path.join(selections, "releases.json"),
                             "--logs", os.path.join(lazy["root"], logs), "--", *lazy["flags"]],
                            cwd=lazy["workspace"].path, capture_output=True, text=True, env=env, timeout=900)
    report = os.path.join(lazy["root"], logs, "report.json")
    outcomes = json.load(open(report))["targets"] if os.path.exists(report) else []
    return result, {o["label"]: o for o in outcomes}


def everything_said(lazy, logs, result):
    said = result.stdout + result.stderr
    directory = os.path.join(lazy["root"], logs)
    for name in os.listdir(directory):
        if not name.endswith(".bep.json"):  # Bazel's own record of its command line holds what it was given
            said += open(os.path.join(directory, name), errors="replace").read()
    return said


def layer_files(agent, image):
    blobs = agent.bin(image + "/blobs/sha256")
    return os.listdir(blobs) if os.path.isdir(blobs) else []
