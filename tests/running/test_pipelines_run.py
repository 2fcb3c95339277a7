"""The generated pipelines, run as generated: every job or step in order, each on a fresh clone, by a runner that
sets what the engine sets, for a branch's first push, a push, a force push, a pull request and (GitHub Actions) a
manual run of another branch.

Real git (the remote is a bare repository reached over file://, so a clone holds only what the remote's refs
reach), real Bazel (the agent's `bazel` on PATH), releasekit as the pipeline reaches it (`bazel run --script_path`
of @rules_release//tools:releasekit), the real registry (htpasswd) and nginx store (basic auth, through a
`credentials` entry of releasekit.yaml), a directory history and target graph store. Only the engines' own CLIs
are stubs (tests/helpers/engine_clis.py). The releases land, checked with skopeo and in the store.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import TEST_PASSWORD, TEST_USER
from helpers import engine_clis
from helpers.buildkite import Buildkite
from helpers.github_actions import GitHubActions
from helpers.servers import REPO_ROOT
from helpers.workspace import BAZEL, Workspace, git

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
LOAD = 'load("@rules_release//rules:defs.bzl", "container_release", "file_release", "image_layout")\n\n'
SECRETS = {"RELEASEKIT_REGISTRY_USERNAME": TEST_USER, "RELEASEKIT_REGISTRY_PASSWORD": TEST_PASSWORD,
           "STORE_USER": TEST_USER, "STORE_PASSWORD": TEST_PASSWORD}


def app(name):
    return LOAD + (
        'image_layout(name = "image", files = {{"run.sh": "/run.sh"}}, entrypoint = ["/run.sh"])\n\n'
        'container_release(name = "{0}", image = ":image", repository = "pipeline/{0}")\n\n'
        'sh_test(name = "{0}_test", srcs = ["test.sh"], data = ["run.sh"])\n').format(name)


class Monorepo:
    """The workspace under git, pushed to a bare remote; commits go to the remote as pushes do."""

    def __init__(self, root, engine, registry, store):
        self.engine, self.registry, self.store = engine, registry, store
        self.workspace = Workspace(os.path.join(root, "work"))
        os.makedirs(self.workspace.path)
        self.remote = os.path.join(root, "remote.git")
        self.url = "file://" + self.remote
        self.namespace = "prod-" + engine
        self.history, self.graphs = os.path.join(root, "history"), os.path.join(root, "graphs")
        files = {
            "WORKSPACE": 'local_repository(name = "rules_release", path = "{}")\n'.format(REPO_ROOT),
            ".gitignore": "/bazel-*\n",
            "releasekit.yaml": (
                "channels:\n"
                "  ci: {{registry: 'http://{reg}/{ns}', files: '{store}/files-{engine}'}}\n"
                "  dev: {{registry: 'http://{reg}/dev-{engine}', files: '{store}/files-dev-{engine}'}}\n"
                "history: 'file://{history}'\n"
                "target_graphs: 'file://{graphs}'\n"
                "credentials:\n"
                "  '127.0.0.1:{port}': {{username: STORE_USER, password: STORE_PASSWORD}}\n").format(
                    reg=registry.host, ns=self.namespace, store=store.url, engine=engine, history=self.history,
                    graphs=self.graphs, port=store.port),
            "apps/a/BUILD.bazel": app("a"), "apps/a/run.sh": "#!/bin/sh\necho a\n", "apps/a/test.sh": "#!/bin/sh\n",
            "apps/b/BUILD.bazel": app("b"), "apps/b/run.sh": "#!/bin/sh\necho b\n", "apps/b/test.sh": "#!/bin/sh\n",
            "bundle/BUILD.bazel": LOAD + 'file_release(name = "bundle", src = "bundle.txt")\n',
            "bundle/bundle.txt": "the fleet's bundle\n",
        }
        for name, text in files.items():
            self.workspace.write(name, text, executable=name.endswith(".sh"))
        git(self.workspace.path, "init", "-q", "-b", "main")
        git(self.workspace.path, "config", "user.email", "dev@example.com")
        git(self.workspace.path, "config", "user.name", "Dev")
        git(root, "init", "-q", "--bare", "-b", "main", self.remote)
        git(self.workspace.path, "remote", "add", "origin", self.url)
        # The pipeline, written by the command users run, from the workspace's releasekit.yaml, and committed.
        kind = {"github": "github-actions", "buildkite": "buildkite"}[engine]
        written = subprocess.run([sys.executable, ENTRY, "pipeline", "--format", kind, "--shards", "2"],
                                 cwd=self.workspace.path, capture_output=True, text=True, timeout=120)
        assert written.returncode == 0, written.stderr
        self.pipeline = written.stdout
        self.workspace.write(".github/workflows/releasekit.yml" if engine == "github" else ".buildkite/pipeline.yml",
                             self.pipeline)

    def commit(self, edits, message):
        for name, text in edits.items():
            self.workspace.write(name, text, executable=name.endswith(".sh"))
        return self.workspace.commit(message)

    def push(self, ref="main", force=False):
        git(self.workspace.path, "push", "-q", *(["--force"] if force else []), "origin", "HEAD:refs/heads/" + ref)

    def tags(self, name):
        return set(self.registry.tags("{}/pipeline/{}".format(self.namespace, name)) or [])

    def bundle(self, version):
        path = self.store.path("files-{}/bundle/bundle/{}/bundle.txt".format(self.engine, version))
        return open(path).read() if os.path.exists(path) else None

    def graph_records(self):
        return sorted(os.listdir(self.graphs)) if os.path.isdir(self.graphs) else []


def reports(directory, prefix):
    """{label: status} of the reports a run's shards kept (one per shard)."""
    found = {}
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if name.startswith(prefix):
            with open(os.path.join(directory, name)) as handle:
                found.update({t["label"]: t["status"] for t in json.load(handle)["targets"]})
    return found


@pytest.fixture(scope="module")
def agent_path(tmp_path_factory):
    """The agent image's tools: `bazel` (the offline wrapper), and the python3 the suite runs with."""
    bin_dir = tmp_path_factory.mktemp("agent-tools")
    os.symlink(BAZEL, str(bin_dir / "bazel"))
    return [str(bin_dir), os.path.dirname(sys.executable)]


def shutdown(agent_home, workspace):
    if os.path.isdir(workspace):
        subprocess.run([BAZEL, "shutdown"], cwd=workspace, env=dict(os.environ, HOME=agent_home), capture_output=True,
                       timeout=120)


def no_secret_in(text):
    assert TEST_PASSWORD not in text


def test_the_github_actions_workflow_runs_as_generated(tmp_path, auth_registry, nginx, agent_path):
    repo = Monorepo(str(tmp_path / "repo"), "github", auth_registry, nginx)
    runner = GitHubActions(str(tmp_path / "github"), str(tmp_path / "agent"), repo.url, agent_path, secrets=SECRETS)
    artifacts = lambda run: os.path.join(runner.state, "runs", run.run_id, "artifacts")  # noqa: E731
    timings = {}
    try:
        # A branch's first push: `before` is all zeros and no run passed before: every test and release.
        c1 = repo.commit({}, "the monorepo")
        repo.push()
        started = time.monotonic()
        run = runner.push(repo.pipeline, c1, "0" * 40)
        timings["first push"] = time.monotonic() - started
        assert run.conclusion == "success", run.log()[-6000:]
        base = run.job("base")
        assert base.outputs["commit"] == "" and "no base commit" in base.outputs["everything"], base.log
        assert base.outputs["main-line"] == "true"
        assert [j.matrix["shard"] for j in run.jobs["releases"]] == ["1/2", "2/2"]
        tests = reports(os.path.join(artifacts(run), "releasekit-report-tests-1"), "report")
        tests.update(reports(os.path.join(artifacts(run), "releasekit-report-tests-2"), "report"))
        assert tests == {"//apps/a:a_test": "passed", "//apps/b:b_test": "passed"}
        assert c1 in repo.tags("a") and c1 in repo.tags("b") and repo.bundle(c1) == "the fleet's bundle\n"
        assert repo.graph_records(), "a main-line run records its target graph"

        # A push: the change starts at the last successful run's commit (gh run list); only a's test and release.
        c2 = repo.commit({"apps/a/run.sh": "#!/bin/sh\necho a, changed\n"}, "a changes")
        repo.push()
        started = time.monotonic()
        run = runner.push(repo.pipeline, c2, c1)
        timings["push"] = time.monotonic() - started
        assert run.conclusion == "success", run.log()[-6000:]
        assert run.job("base").outputs["commit"] == c1
        assert c2 in repo.tags("a") and c2 not in repo.tags("b") and repo.bundle(c2) is None
        released = {}
        for index in (1, 2):
            shard_report = os.path.join(artifacts(run), "releasekit-report-releases-{}".format(index))
            released.update(reports(shard_report, "report"))
        assert released == {"//apps/a:a.ci": "published"}, released

        # A force push: the last successful run's commit and `before` are gone from the remote: everything, said.
        git(repo.workspace.path, "reset", "-q", "--hard", c1)
        c3 = repo.commit({"apps/b/run.sh": "#!/bin/sh\necho b, rewritten\n"}, "b changes, history rewritten")
        repo.push(force=True)
        started = time.monotonic()
        run = runner.push(repo.pipeline, c3, c2)
        timings["force push"] = time.monotonic() - started
        assert run.conclusion == "success", run.log()[-6000:]
        base = run.job("base")
        assert base.outputs["commit"] == "" and "{} is not in this clone".format(c2) in base.outputs["everything"]
        assert c3 in repo.tags("a") and c3 in repo.tags("b") and repo.bundle(c3) == "the fleet's bundle\n"

        # A pull request: its base; tests only, nothing published, no target graph recorded.
        git(repo.workspace.path, "checkout", "-q", "-b", "feature")
        proposed = repo.commit({"apps/b/run.sh": "#!/bin/sh\necho b, proposed\n"}, "b, proposed")
        repo.push("feature")
        git(repo.workspace.path, "checkout", "-q", "--detach", c3)
        git(repo.workspace.path, "merge", "-q", "--no-ff", "-m", "Merge feature into main", "feature")
        merge = git(repo.workspace.path, "rev-parse", "HEAD").strip()
        git(repo.workspace.path, "push", "-q", "origin", "HEAD:refs/pull/1/merge")
        tags_before, graphs_before = (repo.tags("a"), repo.tags("b")), repo.graph_records()
        started = time.monotonic()
        run = runner.pull_request(repo.pipeline, 1, merge, c3, "feature")
        timings["pull request"] = time.monotonic() - started
        assert run.conclusion == "success", run.log()[-6000:]
        assert run.job("base").outputs["commit"] == c3 and run.job("base").outputs["main-line"] == "false"
        assert all(j.status == "skipped" for j in run.jobs["releases"])
        tests = reports(os.path.join(artifacts(run), "releasekit-report-tests-1"), "report")
        tests.update(reports(os.path.join(artifacts(run), "releasekit-report-tests-2"), "report"))
        assert tests == {"//apps/b:b_test": "passed"}
        assert (repo.tags("a"), repo.tags("b")) == tags_before and repo.graph_records() == graphs_before
        no_secret_in(run.log())

        # A manual run of another branch: its merge base with the main line, not the main line's last run.
        started = time.monotonic()
        run = runner.manual(repo.pipeline, proposed, "feature")
        timings["manual run"] = time.monotonic() - started
        assert run.conclusion == "success", run.log()[-6000:]
        assert run.job("base").outputs["commit"] == c3 and run.job("base").outputs["main-line"] == "false"
        assert all(j.status == "skipped" for j in run.jobs["releases"])
        assert (repo.tags("a"), repo.tags("b")) == tags_before
        no_secret_in(run.log())
        print("github actions runs (s):", {k: round(v, 1) for k, v in timings.items()})
    finally:
        shutdown(runner.home, runner.workspace)


def test_the_buildkite_pipeline_runs_as_generated(tmp_path, auth_registry, nginx, agent_path):
    repo = Monorepo(str(tmp_path / "repo"), "buildkite", auth_registry, nginx)
    state = str(tmp_path / "buildkite")
    for name, value in SECRETS.items():
        engine_clis.set_secret(state, name, value)  # Buildkite secrets, read with `buildkite-agent secret get`
    runner = Buildkite(state, str(tmp_path / "agent"), repo.url, agent_path)

    def artifacts(build):
        return engine_clis.build_path(state, build.build_id, "artifacts", "")

    def meta_data(build, key):
        path = engine_clis.build_path(state, build.build_id, "meta-data", key)
        return open(path).read() if os.path.exists(path) else None

    timings = {}
    try:
        # The first build: no build before it is named: every test and release.
        c1 = repo.commit({}, "the monorepo")
        repo.push()
        started = time.monotonic()
        first = runner.build(repo.pipeline, c1, "main")
        timings["first push"] = time.monotonic() - started
        assert first.state == "passed", first.log()[-6000:]
        assert meta_data(first, "releasekit-base") == "none"
        assert "no base commit" in meta_data(first, "releasekit-everything")
        assert reports(artifacts(first), "report-tests") == {"//apps/a:a_test": "passed", "//apps/b:b_test": "passed"}
        assert c1 in repo.tags("a") and c1 in repo.tags("b") and repo.bundle(c1) == "the fleet's bundle\n"
        assert meta_data(first, "releasekit-last-passed") == c1
        assert repo.graph_records()

        # A push, in a build given the previous build (RELEASEKIT_PREVIOUS_BUILD): the last passed commit it recorded.
        c2 = repo.commit({"apps/a/run.sh": "#!/bin/sh\necho a, changed\n"}, "a changes")
        repo.push()
        started = time.monotonic()
        second = runner.build(repo.pipeline, c2, "main", env={"RELEASEKIT_PREVIOUS_BUILD": first.build_id})
        timings["push"] = time.monotonic() - started
        assert second.state == "passed", second.log()[-6000:]
        assert meta_data(second, "releasekit-base") == c1
        assert reports(artifacts(second), "report-releases") == {"//apps/a:a.ci": "published"}
        assert c2 in repo.tags("a") and c2 not in repo.tags("b")

        # A force push: the last passed commit is gone from the remote: everything, said.
        git(repo.workspace.path, "reset", "-q", "--hard", c1)
        c3 = repo.commit({"apps/b/run.sh": "#!/bin/sh\necho b, rewritten\n"}, "b changes, history rewritten")
        repo.push(force=True)
        started = time.monotonic()
        third = runner.build(repo.pipeline, c3, "main", env={"RELEASEKIT_PREVIOUS_BUILD": second.build_id})
        timings["force push"] = time.monotonic() - started
        assert third.state == "passed", third.log()[-6000:]
        assert meta_data(third, "releasekit-base") == "none"
        assert "{} is not in this clone".format(c2) in meta_data(third, "releasekit-everything")
        assert c3 in repo.tags("a") and c3 in repo.tags("b") and repo.bundle(c3) == "the fleet's bundle\n"

        # A pull request: the merge base with its base branch; tests only, nothing published.
        git(repo.workspace.path, "checkout", "-q", "-b", "feature")
        proposed = repo.commit({"apps/b/run.sh": "#!/bin/sh\necho b, proposed\n"}, "b, proposed")
        repo.push("feature")
        tags_before, graphs_before = (repo.tags("a"), repo.tags("b")), repo.graph_records()
        started = time.monotonic()
        fourth = runner.build(repo.pipeline, proposed, "feature", pull_request=1, base_branch="main")
        timings["pull request"] = time.monotonic() - started
        assert fourth.state == "passed", fourth.log()[-6000:]
        assert meta_data(fourth, "releasekit-base") == c3
        assert all(s.status == "skipped" for k, s in fourth.steps.items() if k.startswith("releases") or k == "passed")
        assert reports(artifacts(fourth), "report-tests") == {"//apps/b:b_test": "passed"}
        assert (repo.tags("a"), repo.tags("b")) == tags_before and repo.graph_records() == graphs_before
        for build in (first, second, third, fourth):
            no_secret_in(build.log())
        print("buildkite builds (s):", {k: round(v, 1) for k, v in timings.items()})
    finally:
        shutdown(runner.home, runner.checkout)
