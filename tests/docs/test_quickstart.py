"""The README's quick start, as a user follows it: its own code blocks, run in a new directory outside this checkout.

Each block the walk takes is marked by the HTML comment just before it: `<!-- quickstart: file PATH -->` (the block
is that file's content), `<!-- quickstart: background -->` (a command left running: the registry) and
`<!-- quickstart: run -->` (commands run in order, with bash, in the new workspace). Three things differ from the
text, each where only this machine can say it: the checkout's path stands for `/path/to/rules_release`, a free port
for 5000 and a temporary directory for the registry's data. Bazel is the agent's, `bazel` on PATH (Debian's 4.2.3
with the offline overrides), as in the other tests of a workspace outside the checkout.
"""

import json
import os
import re
import signal
import subprocess
import time

import pytest
import requests

from helpers.servers import REPO_ROOT, free_port
from helpers.workspace import BAZEL, git

MARK = re.compile(r"<!-- quickstart: (file (?P<path>\S+)|run|background) -->\n```[a-z]*\n(?P<body>.*?)^```",
                  re.M | re.S)


def quickstart_steps(text):
    """[(kind, path or None, body)] of the marked blocks, in the README's order."""
    return [(match.group(1).split()[0], match.group("path"), match.group("body")) for match in MARK.finditer(text)]


def test_the_readme_marks_the_whole_walk():
    """The marks themselves: a quick start whose blocks lost their marks would test nothing."""
    with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as handle:
        steps = quickstart_steps(handle.read())
    assert [path for kind, path, _ in steps if kind == "file"] == [
        "WORKSPACE", "app/BUILD.bazel", "app/hello.txt", "releasekit.yaml", ".gitignore"]
    assert [kind for kind, _, _ in steps if kind != "file"] == ["background", "run", "run", "run"]
    commands = "".join(body for kind, _, body in steps if kind == "run")
    for step in ("bazel run //app:app.dev", "bazel run @rules_release//tools:releasekit -- ci", "skopeo list-tags"):
        assert step in commands


@pytest.fixture
def walk(tmp_path):
    """The new workspace, the agent's PATH, and whatever the walk starts, stopped afterwards."""
    workspace = tmp_path / "my-workspace"
    workspace.mkdir()
    agent_bin = tmp_path / "bin"
    agent_bin.mkdir()
    os.symlink(BAZEL, str(agent_bin / "bazel"))
    state = {"workspace": str(workspace), "background": [], "port": free_port(),
             "registry_data": str(tmp_path / "registry-data"),
             "env": dict(os.environ, PATH="{}:{}".format(agent_bin, os.environ["PATH"]))}
    for name in ("CI", "RELEASEKIT_CONFIG", "RELEASEKIT_BAZEL", "BUILD_WORKSPACE_DIRECTORY"):
        state["env"].pop(name, None)  # what this test runner's own environment may hold, a user's shell not
    try:
        yield state
    finally:
        for process in state["background"]:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        subprocess.run([BAZEL, "shutdown"], cwd=str(workspace), capture_output=True, timeout=120)


def as_here(body, walk):
    return (body.replace("/path/to/rules_release", REPO_ROOT)
            .replace("127.0.0.1:5000", "127.0.0.1:{}".format(walk["port"]))
            .replace("/tmp/quickstart-registry", walk["registry_data"]))


def test_the_quick_start_as_written_publishes_a_dev_and_a_ci_release(walk):
    with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as handle:
        steps = quickstart_steps(handle.read())
    outputs = []
    for kind, path, body in steps:
        body = as_here(body, walk)
        if kind == "file":
            target = os.path.join(walk["workspace"], path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as handle:
                handle.write(body)
        elif kind == "background":
            log = open(os.path.join(os.path.dirname(walk["workspace"]), "background.log"), "w")
            walk["background"].append(subprocess.Popen(["bash", "-c", body], cwd=walk["workspace"], env=walk["env"],
                                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            wait_for_registry(walk)
        else:
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=walk["workspace"], env=walk["env"],
                                    capture_output=True, text=True, timeout=900)
            assert result.returncode == 0, "README step failed:\n{}\n{}\n{}".format(
                body, result.stdout[-3000:], result.stderr[-5000:])
            outputs.append(result.stdout)

    head = git(walk["workspace"], "rev-parse", "HEAD").strip()
    first = git(walk["workspace"], "rev-parse", "HEAD~1").strip()
    registry = "127.0.0.1:{}".format(walk["port"])
    # What the README shows each step printing.
    dev_line = r"^//app:app published sha256:[0-9a-f]{12} to " + re.escape(registry) + "/dev/quickstart/app tags dev-"
    assert re.search(dev_line, outputs[0], re.M), outputs[0]
    assert "1 changed files: 0 tests, 1 releases selected" in outputs[1], outputs[1]
    assert "published  //app:app.ci" in outputs[1], outputs[1]
    listed = json.loads(outputs[2])  # the README's own skopeo step
    assert listed["Repository"] == registry + "/prod/quickstart/app"
    assert head in listed["Tags"], listed
    dev = [tag for tag in dev_tags(registry) if tag.startswith("dev-")]
    assert len(dev) == 1 and dev[0].endswith("-" + first[:12]), dev  # dev-<user>-<the first commit>
    # The image CI published holds the file the change wrote.
    inspected = subprocess.run(["skopeo", "inspect", "--tls-verify=false",
                                "docker://{}/prod/quickstart/app:{}".format(registry, head)],
                               capture_output=True, text=True, check=True)
    assert len(json.loads(inspected.stdout)["Layers"]) == 1


def dev_tags(registry):
    response = requests.get("http://{}/v2/dev/quickstart/app/tags/list".format(registry), timeout=10)
    response.raise_for_status()
    return response.json()["tags"]


def wait_for_registry(walk):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if walk["background"][-1].poll() is not None:
            raise AssertionError("the README's registry command exited")
        try:
            requests.get("http://127.0.0.1:{}/v2/".format(walk["port"]), timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError("the README's registry did not answer within 20 s")
