"""dispatch, ci and pr on a fixture monorepo: real Bazel, real git, the real registry and store."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from conftest import TEST_PASSWORD, TEST_USER
from helpers.servers import REPO_ROOT, NginxStore, Registry, RegistryProxy
from helpers.workspace import BAZEL, Workspace, git
from releasekit.dispatch import shard

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
LOAD = 'load("@rules_release//rules:defs.bzl", "container_release", "deploy_release", "image_layout")\n\n'


def image_package(name, repository, tests=""):
    return LOAD + (
        'image_layout(name = "image", files = {{"run.sh": "/run.sh"}}, entrypoint = ["/run.sh"])\n\n'
        'container_release(name = "{0}", image = ":image", repository = "{1}", visibility = ["//visibility:public"])\n\n{2}').format(name, repository, tests)


FLAKY_TEST = """#!/bin/sh
# Fails on its first attempt, passes on the second: the marker outlives the attempt.
marker="$FLAKY_MARKER_DIR/$(basename "$0")"
if [ -e "$marker" ]; then exit 0; fi
touch "$marker"
exit 1
"""

FILES = {
    ".gitignore": "/bazel-*\n/releasekit-logs/\n",
    "apps/a/BUILD.bazel": image_package("a", "fixture/a", 'sh_test(name = "a_test", srcs = ["ok.sh"])\n'),
    "apps/a/run.sh": "#!/bin/sh\necho a\n",
    "apps/a/ok.sh": "#!/bin/sh\nexit 0\n",
    "apps/b/BUILD.bazel": image_package("b", "denied/b"),
    "apps/b/run.sh": "#!/bin/sh\necho b\n",
    "apps/c/BUILD.bazel": image_package("c", "fixture/c",
                                        'sh_test(name = "flaky_test", srcs = ["flaky.sh"])\n\n'
                                        'sh_test(name = "broken_test", srcs = ["broken.sh"])\n'),
    "apps/c/run.sh": "#!/bin/sh\necho c\n",
    "apps/c/flaky.sh": FLAKY_TEST,
    "apps/c/broken.sh": "#!/bin/sh\nexit 1\n",
    "apps/d/BUILD.bazel": image_package("d", "fixture/d", 'sh_test(name = "d_test", srcs = ["fails.sh"])\n'),
    "apps/d/run.sh": "#!/bin/sh\necho d\n",
    "apps/d/fails.sh": "#!/bin/sh\nexit 1\n",
    "deploy/BUILD.bazel": LOAD + 'deploy_release(name = "both", manifests = ["both.yaml"], platform = "generic",\n'
                                 '               images = {"a-image": "//apps/a", "b-image": "//apps/b"})\n',
    "deploy/both.yaml": "services:\n  - {name: a, image: a-image}\n  - {name: b, image: b-image}\n",
}


@pytest.fixture(scope="module")
def fixture_repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("dispatch") / "repo"
    path.mkdir()
    workspace = Workspace(str(path))
    workspace.write("WORKSPACE", 'local_repository(name = "rules_release", path = "{}")\n'.format(REPO_ROOT))
    workspace.write(".gitignore", FILES[".gitignore"])
    workspace.init_git()
    workspace.base = git(workspace.path, "rev-parse", "HEAD").strip()
    for name, text in FILES.items():
        workspace.write(name, text, executable=name.endswith(".sh"))
    workspace.commit("the monorepo")
    workspace.cache = str(tmp_path_factory.mktemp("dispatch-cache"))
    try:
        yield workspace
    finally:
        workspace.shutdown()


@pytest.fixture(scope="module")
def servers(tmp_path_factory, registry):
    proxy = RegistryProxy(str(tmp_path_factory.mktemp("proxy")), registry, denied=["prod/denied", "dev/denied"])
    store = NginxStore(str(tmp_path_factory.mktemp("dispatch-store")), TEST_USER, TEST_PASSWORD)
    yield proxy, store
    proxy.stop()
    store.stop()


def run(repo, command, *args, env=None):
    run_env = dict(os.environ, RELEASEKIT_BAZEL=BAZEL, XDG_CACHE_HOME=repo.cache)
    run_env.pop("CI", None)
    run_env.update(env or {})
    return subprocess.run([sys.executable, ENTRY, command, *args], cwd=repo.path, capture_output=True, text=True,
                          env=run_env, timeout=900)


def test_ci_runs_tests_then_releases_and_reports_failures(fixture_repo, servers, registry, tmp_path):
    proxy, store = servers
    config = tmp_path / "releasekit.yaml"
    config.write_text("channels:\n  ci: {{registry: 'http://{0}/prod', deploy: '{1}/deploy'}}\n"
                      "  dev: {{registry: 'http://{0}/dev', deploy: '{1}/deploy-dev'}}\n".format(proxy.host, store.url))
    quarantine = tmp_path / "quarantine.txt"
    quarantine.write_text("//apps/c:broken_test\n")
    markers = tmp_path / "markers"
    markers.mkdir()
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    result = run(fixture_repo, "ci", "--base", fixture_repo.base, "--head", "HEAD", "--workers", "3",
                 "--quarantine", str(quarantine), "--flaky-test-attempts", "2", "--report", str(report),
                 "--junit", str(junit), "--logs", str(tmp_path / "logs"), "--",
                 "--test_env=FLAKY_MARKER_DIR={}".format(markers),
                 env={"CI": "true", "RELEASEKIT_CONFIG": str(config), "RELEASEKIT_DEPLOY_USERNAME": TEST_USER,
                      "RELEASEKIT_DEPLOY_PASSWORD": TEST_PASSWORD, "RELEASEKIT_RETRY_ATTEMPTS": "2"})
    assert result.returncode == 1, result.stdout + result.stderr
    outcomes = {t["label"]: t for t in json.load(open(report))["targets"]}
    assert outcomes["//apps/a:a_test"]["status"] == "passed"
    assert outcomes["//apps/c:flaky_test"]["status"] == "flaky"
    assert outcomes["//apps/c:broken_test"]["status"] == "failed" and outcomes["//apps/c:broken_test"]["quarantined"]
    assert outcomes["//apps/d:d_test"]["status"] == "failed"
    assert outcomes["//apps/a:a.ci"]["status"] == "published"
    assert outcomes["//apps/c:c.ci"]["status"] == "published"  # its only failing test is quarantined
    assert outcomes["//apps/b:b.ci"]["status"] == "failed" and "403" in outcomes["//apps/b:b.ci"]["reason"]
    assert outcomes["//apps/d:d.ci"]["status"] == "skipped"
    assert "a test in its package failed" in outcomes["//apps/d:d.ci"]["reason"]
    assert outcomes["//deploy:both.ci"]["status"] == "skipped"
    assert "//apps/b:b.ci did not publish" in outcomes["//deploy:both.ci"]["reason"]
    assert outcomes["//apps/a:a.ci"]["record"]["digest"].startswith("sha256:")
    assert os.path.exists(outcomes["//apps/b:b.ci"]["log"])
    assert "prod/fixture/a" in registry.catalog() and "prod/fixture/c" in registry.catalog()
    assert "prod/fixture/d" not in registry.catalog()
    assert not os.path.exists(store.path("deploy"))

    suites = {s.get("name"): s for s in ElementTree.parse(junit).getroot()}
    failures = {c.get("name") for c in suites["releases"] if c.find("failure") is not None}
    skipped = {c.get("name") for c in suites["releases"] if c.find("skipped") is not None}
    assert failures == {"//apps/b:b.ci"} and skipped == {"//apps/d:d.ci", "//deploy:both.ci"}
    assert {c.get("name") for c in suites["tests"] if c.find("failure") is not None} == {"//apps/d:d_test"}
    assert "flaky" in result.stdout and "quarantined" in result.stdout


def test_pr_builds_releases_and_publishes_nothing(fixture_repo, tmp_path):
    empty = Registry(str(tmp_path / "registry"))
    try:
        config = tmp_path / "releasekit.yaml"
        config.write_text("channels:\n  ci: {{registry: 'http://{0}/prod'}}\n  dev: {{registry: 'http://{0}/dev'}}\n"
                          .format(empty.host))
        fixture_repo.write("apps/a/run.sh", "#!/bin/sh\necho changed in a pull request\n", executable=True)
        fixture_repo.write("apps/a/ok.sh", "#!/bin/sh\n# changed in a pull request\nexit 0\n", executable=True)
        result = run(fixture_repo, "pr", "--base", "HEAD", "--logs", str(tmp_path / "logs"),
                     env={"CI": "true", "RELEASEKIT_CONFIG": str(config)})
        assert result.returncode == 0, result.stdout + result.stderr
        outcomes = {t["label"]: t for t in json.load(open(tmp_path / "logs" / "report.json"))["targets"]}
        assert outcomes["//apps/a:a.ci"]["status"] == "built"
        assert outcomes["//apps/a:a_test"]["status"] == "passed"
        assert "//deploy:both.ci" in outcomes
        assert empty.catalog() == []
    finally:
        git(fixture_repo.path, "checkout", "--", "apps/a/run.sh", "apps/a/ok.sh")
        empty.stop()


def test_dispatch_takes_collect_files_and_shards(fixture_repo, tmp_path):
    tests = {"format_version": 1, "targets": [{"label": "//apps/a:a_test", "kind": "sh_test", "reasons": []}]}
    (tmp_path / "tests.json").write_text(json.dumps(tests))
    result = run(fixture_repo, "dispatch", "--tests", str(tmp_path / "tests.json"), "--logs", str(tmp_path / "logs"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    other = run(fixture_repo, "dispatch", "--tests", str(tmp_path / "tests.json"), "--shard", "2/2",
                "--logs", str(tmp_path / "logs2"))
    assert other.returncode == 0 and "shard 2/2: 0 tests" in other.stdout


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_shards_cover_every_target_exactly_once(count):
    labels = ["//pkg{}:t{}".format(i % 7, i) for i in range(41)]
    durations = {label: float((i * 37) % 11 + 1) for i, label in enumerate(labels)}
    for weights in (None, durations):
        parts = [shard(labels, index, count, weights) for index in range(1, count + 1)]
        flat = [label for part in parts for label in part]
        assert sorted(flat) == sorted(labels) and len(flat) == len(set(flat))
        assert parts == [shard(list(reversed(labels)), index, count, weights) for index in range(1, count + 1)]
        if weights is None:
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
        else:
            loads = [sum(durations[label] for label in part) for part in parts]
            assert max(loads) - min(loads) <= max(durations.values())


def test_bad_shard_and_selection_files(fixture_repo, tmp_path):
    bad = run(fixture_repo, "dispatch", "--tests", str(tmp_path / "missing.json"))
    assert bad.returncode == 2 and "Cannot read the tests selection" in bad.stderr
    (tmp_path / "t.json").write_text(json.dumps({"format_version": 1, "targets": []}))
    shard_error = run(fixture_repo, "dispatch", "--tests", str(tmp_path / "t.json"), "--shard", "3/2")
    assert shard_error.returncode == 2 and "--shard '3/2' must be K/N" in shard_error.stderr


def test_two_output_bases_share_one_http_remote_cache(tmp_path):
    """Workers on separate machines share results through Bazel's HTTP cache, here nginx with WebDAV PUT."""
    from helpers.servers import NginxStore

    cache = NginxStore(str(tmp_path / "cache-server"))
    workspace = Workspace(str(tmp_path / "ws"))
    workspace.write("WORKSPACE", 'workspace(name = "cached")\n')
    workspace.write("BUILD.bazel", 'genrule(name = "work", srcs = ["in.txt"], outs = ["out.txt"], '
                                   'cmd = "tr a-z A-Z < $< > $@")\n')
    workspace.write("in.txt", "shared work\n")
    bases = [str(tmp_path / "base-one"), str(tmp_path / "base-two")]
    flags = ["--remote_cache={}/cache".format(cache.url), "--noshow_progress"]
    try:
        first = workspace.bazel("--output_base=" + bases[0], "build", "//:work", *flags)
        assert "remote cache hit" not in first.stderr
        second = workspace.bazel("--output_base=" + bases[1], "build", "//:work", *flags)
        assert "1 remote cache hit" in second.stderr, second.stderr[-2000:]
        assert os.listdir(cache.path("cache/ac")) and os.listdir(cache.path("cache/cas"))
        output = os.path.join(bases[1], "execroot", "cached", "bazel-out", "k8-fastbuild", "bin", "out.txt")
        assert open(output).read() == "SHARED WORK\n"
    finally:
        for base in bases:
            subprocess.run([BAZEL, "--output_base=" + base, "shutdown"], cwd=workspace.path, capture_output=True)
        cache.stop()


def test_live_progress_on_a_terminal_and_plain_lines_in_logs():
    import io

    from releasekit.dispatch import Outcome, Progress

    terminal = io.StringIO()
    live = Progress(stream=terminal, live=True)
    live.started("//a:one.ci")
    live.started("//a:two.ci")
    live.finished(Outcome("//a:one.ci", "release", "published", 1.5))
    live.finished(Outcome("//a:two.ci", "release", "failed", 0.5, reason="HTTP 403"))
    live.close()
    screen = terminal.getvalue()
    assert "\r\033[K" in screen and "[0 done, 0 failed, 2 running] //a:one.ci, //a:two.ci" in screen
    assert "[2 done, 1 failed, 0 running]" in screen and "failed     //a:two.ci (0.5s): HTTP 403" in screen

    log = io.StringIO()
    plain = Progress(stream=log, live=False)
    plain.started("//a:one.ci")
    plain.finished(Outcome("//a:one.ci", "release", "published", 1.5))
    assert log.getvalue() == "started    //a:one.ci\npublished  //a:one.ci (1.5s)\n"


def test_a_release_signals_its_start_up_before_its_first_request(fixture_repo, tmp_path):
    """Dispatch paces start-ups on this signal: it must come once the release is loaded, before any network."""
    import select
    import socket

    fixture_repo.bazel("build", "//apps/a:a.dev")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(120)
    config = tmp_path / "releasekit.yaml"
    config.write_text("channels:\n  dev: {registry: 'http://127.0.0.1:%d/dev'}\n" % listener.getsockname()[1])
    read_end, write_end = os.pipe()
    env = dict(os.environ, RELEASEKIT_CONFIG=str(config), RELEASEKIT_USER="tester", RELEASEKIT_STARTED_FD=str(write_end),
               RELEASEKIT_RETRY_ATTEMPTS="1", RELEASEKIT_REPORT=str(tmp_path / "record.json"))
    release = subprocess.Popen([os.path.join(fixture_repo.path, "bazel-bin/apps/a/a.dev")], cwd=fixture_repo.path, env=env,
                               pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        connection, _ = listener.accept()
        signalled, _, _ = select.select([read_end], [], [], 0)
        assert signalled and os.read(read_end, 1) == b"S"
        connection.close()
        assert release.wait(timeout=120) != 0  # the fake registry answered nothing
    finally:
        release.kill()
        release.wait()
        listener.close()
        os.close(read_end)


def test_every_release_of_a_run_publishes_where_the_configuration_said_when_the_run_began(
        fixture_repo, registry, tmp_path, monkeypatch):
    import io

    from releasekit.bazelquery import Bazel
    from releasekit.dispatch import DispatchOptions, Dispatcher, Progress

    config = tmp_path / "releasekit.yaml"
    config.write_text("channels:\n  dev: {registry: 'http://%s/run-start'}\n" % registry.host)
    environ = dict(os.environ, RELEASEKIT_CONFIG=str(config), RELEASEKIT_USER="tester", XDG_CACHE_HOME=fixture_repo.cache)
    options = DispatchOptions(workers=2, report_dir=str(tmp_path / "logs"), environ=environ)
    dispatcher = Dispatcher(fixture_repo.path, Bazel(fixture_repo.path, command=BAZEL), options,
                            Progress(stream=io.StringIO(), live=False))
    run_executables = dispatcher._run_executables

    def edited_once_the_run_has_begun(*args):
        config.write_text("channels:\n  dev: {registry: 'http://%s/mid-run'}\n" % registry.host)
        return run_executables(*args)

    monkeypatch.setattr(dispatcher, "_run_executables", edited_once_the_run_has_begun)
    outcomes = dispatcher.run_releases(["//apps/a:a.dev", "//apps/c:c.dev"])
    assert [o.status for o in outcomes] == ["published", "published"], [o.reason for o in outcomes]
    published = set(registry.catalog())
    assert {"run-start/fixture/a", "run-start/fixture/c"} <= published
    assert not any(name.startswith("mid-run/") for name in published)


def test_pipelines_run_every_shard_of_the_tests_before_any_release(tmp_path):
    import re

    import yaml

    def emit(kind):
        result = subprocess.run([sys.executable, ENTRY, "pipeline", "--format", kind, "--shards", "3", "--base", "abc123",
                                 "--head", "def456"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    steps = yaml.safe_load(emit("buildkite"))["steps"]
    wait = steps.index("wait")
    tests, releases = steps[:wait], steps[wait + 1:]
    assert [re.search(r"dispatch --tests tests.json --shard (\S+)", s["command"]).group(1) for s in tests] == ["1/3", "2/3", "3/3"]
    assert [re.search(r"dispatch --releases releases.json --shard (\S+)", s["command"]).group(1) for s in releases] == [
        "1/3", "2/3", "3/3"]
    assert all("collect --base abc123 --head def456" in s["command"] for s in tests + releases)
    assert all(s["env"] == {"CI": "true"} for s in releases) and not any("env" in s for s in tests)

    matrix = json.loads(emit("github-actions"))
    assert [entry["shard"] for entry in matrix["include"]] == ["1/3", "2/3", "3/3"]
