"""`bazel run @rules_release//tools:releasekit -- COMMAND`: the command line as the rules pin it, with real Bazel.

The workspace uses rules_release as an outside repository (local_repository), as a user's does; its Bazel is the
agent's `bazel` on PATH, which the tool also runs for its own queries.
"""

import json
import os
import subprocess

import pytest

from helpers.servers import REPO_ROOT
from helpers.workspace import BAZEL, Workspace, git

TOOL = "@rules_release//tools:releasekit"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    path = tmp_path_factory.mktemp("tool") / "ws"
    path.mkdir()
    workspace = Workspace(str(path))
    workspace.write("WORKSPACE", 'local_repository(name = "rules_release", path = "{}")\n'.format(REPO_ROOT))
    workspace.write(".gitignore", "/bazel-*\n")
    workspace.write("releasekit.yaml", "channels:\n  dev: {registry: 'localhost:5000/dev'}\n")
    workspace.write("app/BUILD.bazel", 'sh_test(name = "app_test", srcs = ["t.sh"])\n')
    workspace.write("app/t.sh", "#!/bin/sh\nexit 0\n", executable=True)
    workspace.init_git()
    workspace.base = git(workspace.path, "rev-parse", "HEAD").strip()
    workspace.write("app/t.sh", "#!/bin/sh\n# changed\nexit 0\n", executable=True)
    workspace.commit("a change")
    agent_bin = tmp_path_factory.mktemp("agent-bin")
    os.symlink(BAZEL, str(agent_bin / "bazel"))  # the agent's Bazel, as `bazel` on PATH
    workspace.environ = dict(os.environ, PATH="{}:{}".format(agent_bin, os.environ["PATH"]))
    workspace.environ.pop("RELEASEKIT_BAZEL", None)
    try:
        yield workspace
    finally:
        workspace.shutdown()


def bazel_run(workspace, *args, cwd=None, env=None):
    return subprocess.run([BAZEL, "run", "--noshow_progress", TOOL, "--", *args], cwd=cwd or workspace.path,
                          env=dict(workspace.environ, **(env or {})), capture_output=True, text=True, timeout=600)


def test_the_tool_acts_on_the_workspace_and_runs_bazel_itself(workspace):
    """Started from a subdirectory, it works in the workspace root, where relative paths are taken from; its own
    `bazel query` runs in the workspace `bazel run` came from: Bazel let go of its server before starting it."""
    result = bazel_run(workspace, "collect", "--base", workspace.base, "--tests-out", "tests.json",
                       cwd=os.path.join(workspace.path, "app"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 changed files: 1 tests, 0 releases selected" in result.stdout
    with open(os.path.join(workspace.path, "tests.json")) as handle:
        assert [t["label"] for t in json.load(handle)["targets"]] == ["//app:app_test"]
    shown = bazel_run(workspace, "config", cwd=os.path.join(workspace.path, "app"))
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "config: {}".format(os.path.join(workspace.path, "releasekit.yaml")) in shown.stdout


def test_the_script_bazel_writes_runs_the_tool_without_bazel(workspace, tmp_path):
    """What the generated pipelines do: `bazel run --script_path` once, then the script with the secrets set, so
    that Bazel's client never sees them."""
    script = str(tmp_path / "releasekit")
    built = subprocess.run([BAZEL, "run", "--script_path=" + script, TOOL], cwd=workspace.path, env=workspace.environ,
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    result = subprocess.run([script, "collect", "--base", workspace.base], cwd=str(tmp_path), env=workspace.environ,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.split("\n", 1)[1])["tests"]["targets"][0]["label"] == "//app:app_test"


def test_a_python_without_releasekit_s_packages_is_named_with_the_pip_command(workspace, tmp_path):
    bare = tmp_path / "python-without-site-packages"
    bare.write_text('#!/bin/sh\nexec python3 -I -S "$@"\n')
    bare.chmod(0o755)
    result = bazel_run(workspace, "config", env={"RELEASEKIT_PYTHON": str(bare)})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "UsageError: The Python running releasekit (" in result.stderr
    assert "lacks requests, PyYAML. Install them with `" in result.stderr
    assert "-m pip install requests PyYAML`, or point RELEASEKIT_PYTHON at an interpreter" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_table_of_python_packages_is_pyproject_s():
    import re

    from releasekit.core import python_packages

    with open(os.path.join(REPO_ROOT, "pyproject.toml")) as handle:
        dependencies = re.search(r"^dependencies = \[(.*?)^\]", handle.read(), re.M | re.S).group(1)
    names = {name.lower() for name in re.findall(r'"([A-Za-z0-9_.-]+)', dependencies)}
    assert {package.lower() for package in python_packages.packages()} <= names
