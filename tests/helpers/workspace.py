"""Bazel workspaces under git for tests, run with the offline Bazel wrapper."""

import os
import shutil
import subprocess
import sys

from .servers import REPO_ROOT

BAZEL = os.path.join(REPO_ROOT, "tests", "bazel", "bazel")
ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


class Workspace:
    """A copy of a workspace in a temp dir, committed to a fresh git repository."""

    def __init__(self, path):
        self.path = path

    @classmethod
    def copy_of(cls, source, destination):
        shutil.copytree(source, destination, ignore=shutil.ignore_patterns("bazel-*"))
        workspace_file = os.path.join(destination, "WORKSPACE")
        with open(workspace_file) as handle:
            text = handle.read()
        with open(workspace_file, "w") as handle:
            handle.write(text.replace('path = "..",', 'path = "{}",'.format(REPO_ROOT)))
        workspace = cls(destination)
        workspace.init_git()
        return workspace

    def init_git(self):
        git(self.path, "init", "-q", "-b", "main")
        git(self.path, "config", "user.email", "test@example.com")
        git(self.path, "config", "user.name", "Test")
        self.commit("base")

    def commit(self, message):
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.path, "rev-parse", "HEAD").strip()

    def change(self, files, message):
        """Write files ({path: text}; `.sh` files executable) and commit them. Returns the commit."""
        for name, text in files.items():
            self.write(name, text, executable=name.endswith(".sh"))
        return self.commit(message)

    def releasekit(self, command, *args, env=None):
        """Run `releasekit COMMAND ARGS` here as CI does (CI=true, the offline Bazel, this workspace's cache)."""
        run_env = dict(os.environ, RELEASEKIT_BAZEL=BAZEL, XDG_CACHE_HOME=self.cache, CI="true")
        run_env.update(env or {})
        return subprocess.run([sys.executable, ENTRY, command, *args], cwd=self.path, capture_output=True, text=True,
                              env=run_env, timeout=900)

    def write(self, relative, text, executable=False):
        path = os.path.join(self.path, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)
        if executable:
            os.chmod(path, 0o755)
        return path

    def bazel(self, *args, env=None, check=True, timeout=600):
        run_env = dict(os.environ)
        run_env.pop("CI", None)
        run_env.update(env or {})
        result = subprocess.run(
            [BAZEL, *args], cwd=self.path, env=run_env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError("bazel {} failed:\n{}\n{}".format(" ".join(args), result.stdout[-3000:],
                                                                   result.stderr[-5000:]))
        return result

    def build_package_expecting_failure(self, package, build, files=None, target=None):
        """Write a package (files, then a BUILD loading rules_release's defs.bzl) and build it; returns stderr.

        Fails the test if the build succeeds or if a Python traceback shows instead of a message.
        """
        for name, content in (files or {}).items():
            self.write("{}/{}".format(package, name), content)
        load = ('load("@rules_release//rules:defs.bzl", "container_release", "deploy_release", "file_release", '
                '"jar_release")\n\n')
        self.write(package + "/BUILD.bazel", load + build + "\n")
        result = self.bazel("build", target or "//{}:all".format(package), check=False)
        if result.returncode == 0:
            raise AssertionError("building //{} succeeded; it should have failed".format(package))
        if '.py", line' in result.stderr:
            raise AssertionError("a Python traceback instead of a message:\n" + result.stderr[-3000:])
        return result.stderr

    def query(self, expression):
        result = self.bazel("query", expression, "--output=label_kind")
        return sorted(line for line in result.stdout.splitlines() if line.strip())

    def shutdown(self):
        subprocess.run([BAZEL, "shutdown"], cwd=self.path, capture_output=True, timeout=120)


def rules_monorepo(tmp_path_factory, name, files, workspace_lines=(), before_commit=None):
    """A module fixture's body (yield from it): a git checkout whose WORKSPACE brings in these rules (then
    workspace_lines), its .gitignore first (files[".gitignore"]), then files ({path: text}; `.sh` executable)
    committed as "the monorepo". Its `base` is the commit before them and its `cache` a directory for releasekit's
    home cache; before_commit(workspace) adds what is not text. Its Bazel server is stopped afterwards."""
    path = tmp_path_factory.mktemp(name) / "repo"
    path.mkdir()
    workspace = Workspace(str(path))
    lines = ['local_repository(name = "rules_release", path = "{}")'.format(REPO_ROOT), *workspace_lines]
    workspace.write("WORKSPACE", "\n\n".join(lines) + "\n")
    workspace.write(".gitignore", files[".gitignore"])
    workspace.init_git()
    workspace.base = git(workspace.path, "rev-parse", "HEAD").strip()
    workspace.cache = str(tmp_path_factory.mktemp(name + "-cache"))
    if before_commit is not None:
        before_commit(workspace)
    workspace.change(files, "the monorepo")
    try:
        yield workspace
    finally:
        workspace.shutdown()
