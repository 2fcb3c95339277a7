"""dispatch, ci and pr on a fixture monorepo: real Bazel, real git, the real registry and store."""

import json
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ElementTree

import pytest

from conftest import TEST_PASSWORD, TEST_SIGNING_KEY, TEST_USER, key_secrets
from helpers.servers import REPO_ROOT, NginxStore, Registry, RegistryProxy
from helpers.workspace import BAZEL, Workspace, git
from releasekit.running.sharding import shard

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
LOAD = 'load("@rules_release//rules:defs.bzl", "container_release", "deploy_release", "image_layout")\n\n'


def image_package(name, repository, tests=""):
    return LOAD + (
        'image_layout(name = "image", files = {{"run.sh": "/run.sh"}}, entrypoint = ["/run.sh"])\n\n'
        'container_release(name = "{0}", image = ":image", repository = "{1}", visibility = '
        '["//visibility:public"])\n\n{2}').format(name, repository, tests)


FLAKY_TEST = """#!/bin/sh
# Fails on its first attempt, passes on the second: the marker outlives the attempt.
marker="$FLAKY_MARKER_DIR/$(basename "$0")"
if [ -e "$marker" ]; then exit 0; fi
touch "$marker"
exit 1
"""

FILES = {
    ".gitignore": "/bazel-*\n/releasekit-logs/\n",
    # Each test tests its app's run.sh, which the app's image packages: they share it in the target graph.
    "apps/a/BUILD.bazel": image_package("a", "fixture/a",
                                        'sh_test(name = "a_test", srcs = ["ok.sh"], data = ["run.sh"])\n'),
    "apps/a/run.sh": "#!/bin/sh\necho a\n",
    "apps/a/ok.sh": "#!/bin/sh\nexit 0\n",
    "apps/b/BUILD.bazel": image_package("b", "denied/b"),
    "apps/b/run.sh": "#!/bin/sh\necho b\n",
    "apps/c/BUILD.bazel": image_package("c", "fixture/c",
                                        'sh_test(name = "flaky_test", srcs = ["flaky.sh"], data = ["run.sh"])\n\n'
                                        'sh_test(name = "broken_test", srcs = ["broken.sh"], data = ["run.sh"])\n'),
    "apps/c/run.sh": "#!/bin/sh\necho c\n",
    "apps/c/flaky.sh": FLAKY_TEST,
    "apps/c/broken.sh": "#!/bin/sh\nexit 1\n",
    "apps/d/BUILD.bazel": image_package("d", "fixture/d",
                                        'sh_test(name = "d_test", srcs = ["fails.sh"], data = ["run.sh"])\n'),
    "apps/d/run.sh": "#!/bin/sh\necho d\n",
    "apps/d/fails.sh": "#!/bin/sh\nexit 1\n",
    # Run by name only (manual): a test long enough for a release to build while it runs.
    "slow/BUILD.bazel": 'sh_test(name = "slow_test", srcs = ["slow.sh"], tags = ["manual"])\n',
    "slow/slow.sh": "#!/bin/sh\nsleep 4\n",
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
    result = run(fixture_repo, "ci", "--base", fixture_repo.base, "--head", "HEAD", "--workers", "3", "--gate", "deps",
                 "--quarantine", str(quarantine), "--flaky-test-attempts", "2", "--report", str(report),
                 "--junit", str(junit), "--logs", str(tmp_path / "logs"), "--",
                 "--test_env=FLAKY_MARKER_DIR={}".format(markers),
                 env={"CI": "true", "RELEASEKIT_CONFIG": str(config), "RELEASEKIT_DEPLOY_USERNAME": TEST_USER,
                      "RELEASEKIT_DEPLOY_PASSWORD": TEST_PASSWORD, "RELEASEKIT_REGISTRY_USERNAME": TEST_USER,
                      "RELEASEKIT_REGISTRY_PASSWORD": TEST_PASSWORD, "RELEASEKIT_RETRY_ATTEMPTS": "2",
                      "RELEASEKIT_SIGNING_KEY": TEST_SIGNING_KEY})
    assert result.returncode == 1, result.stdout + result.stderr
    # No secret in what the run wrote: its output, every release log and record, the build logs, the report, JUnit;
    # nor the signing key, whole or any line of it.
    written = [report, junit] + [os.path.join(d, n) for d, _, names in os.walk(tmp_path / "logs") for n in names]
    assert len(written) > 5
    for path in written:
        with open(path, "rb") as handle:
            content = handle.read()
        assert TEST_PASSWORD.encode() not in content, path
        assert not [line for line in key_secrets(TEST_SIGNING_KEY) if line.encode() in content], path
    assert TEST_PASSWORD not in result.stdout + result.stderr
    assert not [line for line in key_secrets(TEST_SIGNING_KEY) if line in result.stdout + result.stderr]
    outcomes = {t["label"]: t for t in json.load(open(report))["targets"]}
    assert outcomes["//apps/a:a_test"]["status"] == "passed"
    assert outcomes["//apps/c:flaky_test"]["status"] == "flaky"
    assert outcomes["//apps/c:broken_test"]["status"] == "failed" and outcomes["//apps/c:broken_test"]["quarantined"]
    assert outcomes["//apps/d:d_test"]["status"] == "failed"
    assert outcomes["//apps/a:a.ci"]["status"] == "published"
    # The gate by dependencies: a release is held back by a failing test that shares its dependencies (its run.sh),
    # also a quarantined one that failed every attempt; a release whose image did not publish is held back too.
    assert outcomes["//apps/c:c.ci"]["status"] == "held back", outcomes["//apps/c:c.ci"]
    assert outcomes["//apps/c:c.ci"]["reason"] == ("held back (gate deps): //apps/c:broken_test failed (quarantined) "
                                                   "(shares //apps/c:run.sh)")
    assert outcomes["//apps/b:b.ci"]["status"] == "failed" and "403" in outcomes["//apps/b:b.ci"]["reason"]
    assert outcomes["//apps/d:d.ci"]["status"] == "held back"
    assert outcomes["//apps/d:d.ci"]["reason"] == ("held back (gate deps): //apps/d:d_test failed "
                                                   "(shares //apps/d:run.sh)")
    assert outcomes["//deploy:both.ci"]["status"] == "held back"
    assert outcomes["//deploy:both.ci"]["reason"] == "held back: its dependency //apps/b:b.ci (failed) did not publish"
    assert outcomes["//apps/a:a.ci"]["record"]["digest"].startswith("sha256:")
    assert outcomes["//apps/a:a.ci"]["record"]["provenance"]["signed_by"].startswith("ci key ")
    assert os.path.exists(outcomes["//apps/b:b.ci"]["log"])
    # Every release that ran was forked by the fork server, published or refused alike, and its log says why.
    assert all(outcomes[label]["forked"] for label in ("//apps/a:a.ci", "//apps/b:b.ci"))
    assert "403" in open(outcomes["//apps/b:b.ci"]["log"]).read()
    assert "prod/fixture/a" in registry.catalog()
    assert "prod/fixture/c" not in registry.catalog() and "prod/fixture/d" not in registry.catalog()
    assert not os.path.exists(store.path("deploy"))

    suites = {s.get("name"): s for s in ElementTree.parse(junit).getroot()}
    failures = {c.get("name") for c in suites["releases"] if c.find("failure") is not None}
    skipped = {c.get("name"): c.find("skipped").get("message")
               for c in suites["releases"] if c.find("skipped") is not None}
    assert failures == {"//apps/b:b.ci"}
    assert skipped == {label: outcomes[label]["reason"] for label in ("//apps/c:c.ci", "//apps/d:d.ci",
                                                                      "//deploy:both.ci")}
    test_failures = {c.get("name"): c.find("failure") for c in suites["tests"] if c.find("failure") is not None}
    assert set(test_failures) == {"//apps/d:d_test", "//apps/c:broken_test"}
    assert test_failures["//apps/c:broken_test"].get("type") == "failed (quarantined)"
    assert test_failures["//apps/c:broken_test"].get("message").startswith("quarantined: ")
    assert "flaky" in result.stdout and "quarantined" in result.stdout
    assert "gate: 3 releases held back:" in result.stdout and "  //apps/d:d.ci: held back (gate deps)" in result.stdout


@pytest.mark.parametrize("dev_namespace", ["dev", "prod/dev"])
def test_pr_builds_releases_and_publishes_nothing(fixture_repo, tmp_path, dev_namespace):
    """prod/dev: a dev channel nested in CI's. Before: pr, which publishes nothing, ran the channel check and exited 2;
    a run that publishes still refuses such a file before anything runs."""
    empty = Registry(str(tmp_path / "registry"))
    try:
        config = tmp_path / "releasekit.yaml"
        config.write_text("channels:\n  ci: {{registry: 'http://{0}/prod'}}\n  dev: {{registry: 'http://{0}/{1}'}}\n"
                          .format(empty.host, dev_namespace))
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
        # The tests' `bazel test` built the release targets too: no `bazel build` of their own.
        assert not os.path.exists(tmp_path / "logs" / "bazel-build.log")
        if dev_namespace == "prod/dev":
            publishing = run(fixture_repo, "ci", "--base", "HEAD", "--logs", str(tmp_path / "ci-logs"),
                             env={"CI": "true", "RELEASEKIT_CONFIG": str(config)})
            assert publishing.returncode == 2 and "could overwrite production" in publishing.stderr, publishing.stderr
            assert not os.path.exists(tmp_path / "ci-logs")
    finally:
        git(fixture_repo.path, "checkout", "--", "apps/a/run.sh", "apps/a/ok.sh")
        empty.stop()


@pytest.mark.parametrize("bazelrc, flags, built_apart", [
    ("test --test_output=errors --test_summary=short\ntest:unused --copt=-DUNUSED\n", [], None),
    ("test --copt=-DONLY_UNDER_TEST\n", [], "`test --copt`"),
    ("build:fixture --verbose_failures\ntest:fixture --copt=-DONLY_UNDER_TEST\n", ["--config=fixture"],
     "`test:fixture --copt`"),
])
def test_releases_are_built_with_the_tests_only_when_a_build_would_build_the_same(fixture_repo, tmp_path, bazelrc,
                                                                                   flags, built_apart):
    """An rc option that `bazel test` takes and `bazel build` does not, and that may change a build, makes the
    release targets build apart, as CI's build builds them; test-only options and unused configs do not."""
    try:
        fixture_repo.write(".bazelrc", bazelrc)
        fixture_repo.write("apps/a/run.sh", "#!/bin/sh\necho changed in a pull request\n", executable=True)
        fixture_repo.write("apps/a/ok.sh", "#!/bin/sh\n# changed in a pull request\nexit 0\n", executable=True)
        result = run(fixture_repo, "pr", "--base", "HEAD", "--logs", str(tmp_path / "logs"), "--", *flags,
                     env={"CI": "true"})
        assert result.returncode == 0, result.stdout + result.stderr
        outcomes = {t["label"]: t["status"] for t in json.load(open(tmp_path / "logs" / "report.json"))["targets"]}
        assert outcomes["//apps/a:a.ci"] == "built" and outcomes["//apps/a:a_test"] == "passed", outcomes
        built_alone = tmp_path / "logs" / "bazel-build.log"
        if built_apart:
            assert "built by a `bazel build` of their own" in result.stdout and built_apart in result.stdout
            assert os.path.exists(built_alone)
        else:
            assert "of their own" not in result.stdout and not os.path.exists(built_alone)
    finally:
        os.unlink(os.path.join(fixture_repo.path, ".bazelrc"))
        git(fixture_repo.path, "checkout", "--", "apps/a/run.sh", "apps/a/ok.sh")


def test_dispatch_takes_collect_files_and_shards(fixture_repo, tmp_path):
    tests = {"format_version": 1, "targets": [{"label": "//apps/a:a_test", "kind": "sh_test", "reasons": []}]}
    (tmp_path / "tests.json").write_text(json.dumps(tests))
    result = run(fixture_repo, "dispatch", "--tests", str(tmp_path / "tests.json"), "--logs", str(tmp_path / "logs"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    other = run(fixture_repo, "dispatch", "--tests", str(tmp_path / "tests.json"), "--shard", "2/2",
                "--logs", str(tmp_path / "logs2"))
    assert other.returncode == 0 and "shard 2/2: 0 tests" in other.stdout

    # Balanced by the previous run's reports (a directory of them, as the pipelines download them): the long
    # test has a shard to itself, so shard 2/2 runs a_test alone.
    both = {"format_version": 1, "targets": [{"label": label, "kind": "sh_test", "reasons": []}
                                             for label in ("//apps/a:a_test", "//apps/d:d_test")]}
    (tmp_path / "both.json").write_text(json.dumps(both))
    reports = tmp_path / "releasekit-reports"
    reports.mkdir()
    (reports / "report-tests-1.json").write_text(json.dumps({"targets": [
        {"label": "//apps/d:d_test", "duration_seconds": 90.0},
        {"label": "//apps/a:a_test", "duration_seconds": 1.0}]}))
    balanced = run(fixture_repo, "dispatch", "--tests", str(tmp_path / "both.json"), "--shard", "2/2",
                   "--previous-report", str(reports), "--logs", str(tmp_path / "logs3"), "--report",
                   str(tmp_path / "r.json"))
    assert balanced.returncode == 0, balanced.stdout + balanced.stderr
    assert "shard 2/2: 1 test," in balanced.stdout
    assert [t["label"] for t in json.load(open(tmp_path / "r.json"))["targets"]] == ["//apps/a:a_test"]


def test_the_fork_server_starts_while_the_tests_run(fixture_repo, registry, tmp_path):
    """Before: it started once `bazel test` had exited, and the first release waited for it to import the publisher."""
    config = tmp_path / "releasekit.yaml"
    config.write_text("channels:\n  ci: {registry: 'http://%s/early'}\n" % registry.host)
    for kind, label in (("tests", "//slow:slow_test"), ("releases", "//apps/a:a.ci")):
        (tmp_path / (kind + ".json")).write_text(json.dumps({"format_version": 1, "targets": [
            {"label": label, "kind": "sh_test" if kind == "tests" else "artifact_ci_release", "reasons": []}]}))
    logs = tmp_path / "logs"
    result = run(fixture_repo, "dispatch", "--tests", str(tmp_path / "tests.json"), "--releases",
                 str(tmp_path / "releases.json"), "--logs", str(logs), "--report", str(tmp_path / "report.json"),
                 env={"CI": "true", "RELEASEKIT_CONFIG": str(config)})
    assert result.returncode == 0, result.stdout + result.stderr
    outcomes = {t["label"]: t for t in json.load(open(tmp_path / "report.json"))["targets"]}
    assert outcomes["//apps/a:a.ci"]["status"] == "published" and outcomes["//apps/a:a.ci"]["forked"]
    assert "early/fixture/a" in registry.catalog()
    # The server's log is opened when it starts; the build event file is written until Bazel ends.
    started, bazel_ended = os.stat(logs / "fork-server.log").st_mtime, os.stat(logs / "tests.bep.json").st_mtime
    assert started < bazel_ended - 2, (started, bazel_ended)


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

    from releasekit.running.progress import Progress
    from releasekit.running.run_report import Outcome

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
    env = dict(os.environ, RELEASEKIT_CONFIG=str(config), RELEASEKIT_USER="tester",
               RELEASEKIT_STARTED_FD=str(write_end),
               RELEASEKIT_RETRY_ATTEMPTS="1", RELEASEKIT_REPORT=str(tmp_path / "record.json"))
    release = subprocess.Popen([os.path.join(fixture_repo.path, "bazel-bin/apps/a/a.dev")], cwd=fixture_repo.path,
                               env=env,
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

    from releasekit.selection.bazelquery import Bazel
    from releasekit.running.dispatch import DispatchOptions, Dispatcher
    from releasekit.running.progress import Progress

    config = tmp_path / "releasekit.yaml"
    config.write_text("channels:\n  dev: {registry: 'http://%s/run-start'}\n" % registry.host)
    environ = dict(os.environ, RELEASEKIT_CONFIG=str(config), RELEASEKIT_USER="tester",
                   XDG_CACHE_HOME=fixture_repo.cache)
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
    """Both pipelines pass their engine's own schema (check-jsonschema's built-in copies), compute one base commit per
    run, run every test shard before any release shard, publish only from the main line with the destinations'
    credentials from the engine's secrets, carry the previous run's reports, hand every release shard this run's test
    reports (the gate), and never publish from two runs at once (the engine's concurrency). They run as generated:
    tests/running/test_pipelines_run.py."""
    import re

    import yaml

    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "releasekit.yaml").write_text(
        "channels:\n  ci: {registry: 'ghcr.io/acme/prod', maven: 'https://repo.example.com/releases'}\n"
        "  dev: {registry: 'ghcr.io/acme/dev'}\nhistory: 's3://ci-history/main'\n"
        "credentials:\n  repo.example.com: {username: REPO_USER, password: REPO_PASSWORD}\n")

    def emit(kind):
        result = subprocess.run([sys.executable, ENTRY, "pipeline", "--format", kind, "--shards", "3"],
                                capture_output=True, text=True, timeout=60, cwd=str(workspace))
        assert result.returncode == 0, result.stderr
        path = tmp_path / (kind + ".yml")
        path.write_text(result.stdout)
        schema = {"buildkite": "vendor.buildkite", "github-actions": "vendor.github-workflows"}[kind]
        checked = subprocess.run(["check-jsonschema", "--builtin-schema", schema, str(path)], capture_output=True,
                                 text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "&id" not in result.stdout  # every step written out, no YAML anchors
        return yaml.safe_load(result.stdout)

    steps = emit("buildkite")["steps"]
    assert steps[0]["key"] == "base" and steps[1] == "wait"
    base = " ".join(steps[0]["commands"])
    assert "meta-data get releasekit-last-passed --build \"$$RELEASEKIT_PREVIOUS_BUILD\"" in base
    assert 'main_branch="$$BUILDKITE_PULL_REQUEST_BASE_BRANCH"' in base and "git merge-base HEAD" in base
    waits = [i for i, s in enumerate(steps) if s == "wait"]
    tests, releases = steps[waits[0] + 1:waits[1]], steps[waits[1] + 1:waits[2]]
    assert steps[waits[2] + 1]["commands"] == [
        'buildkite-agent meta-data set releasekit-last-passed "$$BUILDKITE_COMMIT"']

    def shards(step_list, what):
        return [re.search(r"dispatch --{0} {0}.json --shard (\S+)".format(what), " ".join(s["commands"])).group(1)
                for s in step_list]

    assert shards(tests, "tests") == ["1/3", "2/3", "3/3"] and shards(releases, "releases") == ["1/3", "2/3", "3/3"]
    for step in tests + releases:
        commands = " ".join(step["commands"])
        assert commands.startswith("bazel run --script_path=")
        assert '"$${TMPDIR:-/tmp}/releasekit-$$BUILDKITE_JOB_ID" collect "$$@" --head HEAD' in commands
        assert "buildkite-agent meta-data get releasekit-base" in commands
        # Target graphs are recorded by main-line builds only: never a pull request's, never another branch's.
        assert ('[ "$${BUILDKITE_PULL_REQUEST:-false}" = false ] && [ "$$BUILDKITE_BRANCH" = '
                '"$$BUILDKITE_PIPELINE_DEFAULT_BRANCH" ] && echo --record-target-graphs') in commands
        assert "--previous-report releasekit-reports" in commands and "--quarantine auto" in commands
        assert "buildkite-agent secret get" in commands
    assert all(s["env"] == {"CI": "true"} and s["branches"] == "main" and s["if"] == "build.pull_request.id == null"
               for s in releases)
    assert not any("env" in s for s in tests)
    assert all(s["artifact_paths"] == ["report-tests-{}.json".format(i)] for i, s in enumerate(tests, 1))
    # collect selects again what the previous run left undone, in the test and the release shards alike.
    assert all(re.search(r"collect [^;]*--previous-report releasekit-reports", " ".join(s["commands"]))
               for s in tests + releases)
    for step in releases:  # this build's test reports, for the gate; one release job at a time, oldest build first
        commands = " ".join(step["commands"])
        assert 'artifact download "report-tests-*.json" releasekit-test-reports' in commands
        assert "--test-reports releasekit-test-reports --tests-selection tests.json" in commands
        assert "REPO_USER REPO_PASSWORD" in commands and "RELEASEKIT_REGISTRY_PASSWORD" in commands
        assert step["concurrency"] == 1
        assert step["concurrency_group"] == "releasekit/${BUILDKITE_PIPELINE_SLUG}/releases"
    assert not any("--test-reports" in " ".join(s["commands"]) or "concurrency" in s for s in tests)
    assert not any("REPO_USER" in " ".join(s["commands"]) for s in tests)  # test jobs get the history's, not these

    workflow = emit("github-actions")
    assert workflow["on"] == {"push": {"branches": ["main"]}, "pull_request": {}, "workflow_dispatch": {}}
    jobs = workflow["jobs"]
    assert jobs["tests"]["needs"] == "base" and jobs["releases"]["needs"] == ["base", "tests"]
    assert jobs["releases"]["if"] == "needs.base.outputs.main-line == 'true'"
    assert jobs["releases"]["env"] == {"CI": "true"} and "env" not in jobs["tests"]
    # A CI registry on ghcr.io: the workflow's token pushes there, which needs `packages: write` (release jobs only).
    assert workflow["permissions"] == {"contents": "read", "actions": "read"}
    assert jobs["releases"]["permissions"] == {"contents": "read", "actions": "read", "packages": "write"}
    assert [entry["shard"] for entry in jobs["tests"]["strategy"]["matrix"]["include"]] == ["1/3", "2/3", "3/3"]
    base_steps = {step.get("id"): step for step in jobs["base"]["steps"]}
    previous = base_steps["previous"]["run"]
    assert "--json databaseId,headSha" in previous and "--branch 'main'" in previous
    assert base_steps["base"]["env"]["LAST_SUCCESSFUL"] == (
        "${{ github.event_name != 'pull_request' && github.ref == 'refs/heads/main' && steps.previous.outputs.head-sha "
        "|| '' }}")
    assert base_steps["base"]["env"]["PUSHED_AFTER"] == "${{ github.event.before }}"
    for job in ("tests", "releases"):
        uses = [step.get("uses", "") for step in jobs[job]["steps"]]
        assert "actions/download-artifact@v4" in uses and "actions/upload-artifact@v4" in uses
        assert jobs[job]["steps"][1]["run"] == 'bazel run --script_path="$RUNNER_TEMP/releasekit" ' \
                                               '@rules_release//tools:releasekit\n'
        step = next(step for step in jobs[job]["steps"] if step.get("name") == job.capitalize())
        assert "dispatch --{0} {0}.json --shard ${{{{ matrix.shard }}}}".format(job) in step["run"]
        assert "--previous-report releasekit-reports" in step["run"] and "--quarantine auto" in step["run"]
        assert "${{ needs.base.outputs.main-line == 'true' && '--record-target-graphs' || '' }}" in step["run"]
        assert ("--test-reports releasekit-test-reports --tests-selection tests.json" in step["run"]) == (
            job == "releases")
        assert re.search(r"collect [^\n]*--previous-report releasekit-reports", step["run"])
        assert step["env"]["BASE_COMMIT"] == "${{ needs.base.outputs.commit }}"
        # The history is on S3: AWS's variables, not the HTTP stores' ones.
        assert step["env"]["AWS_SECRET_ACCESS_KEY"] == "${{ secrets.AWS_SECRET_ACCESS_KEY }}"
        assert "RELEASEKIT_HISTORY_TOKEN" not in step["env"]
        assert ("REPO_PASSWORD" in step["env"]) == (job == "releases")
    releases_step = next(step for step in jobs["releases"]["steps"] if step.get("name") == "Releases")
    assert releases_step["env"]["REPO_PASSWORD"] == "${{ secrets.REPO_PASSWORD }}"
    assert releases_step["env"]["RELEASEKIT_REGISTRY_PASSWORD"] == \
        "${{ secrets.RELEASEKIT_REGISTRY_PASSWORD || secrets.GITHUB_TOKEN }}"
    gate = [step for step in jobs["releases"]["steps"] if step.get("with", {}).get("path") == "releasekit-test-reports"]
    assert gate == [{"name": "Download this run's test reports, for the gate", "uses": "actions/download-artifact@v4",
                     "with": {"pattern": "releasekit-report-tests-*", "merge-multiple": True,
                              "path": "releasekit-test-reports"}}]  # no run-id: this run's
    assert workflow["concurrency"] == {"group": "releasekit-${{ github.ref }}",
                                       "cancel-in-progress": "${{ github.event_name == 'pull_request' }}"}


def test_previous_reports_of_every_shard_balance_the_next_run(tmp_path):
    """--previous-report takes a directory of the shards' reports, as the pipelines download them."""
    from releasekit.running.sharding import durations_from_report, shard

    reports = tmp_path / "releasekit-reports"
    reports.mkdir()
    (reports / "report-tests-1.json").write_text(json.dumps({"targets": [{"label": "//a:slow_test",
                                                                          "duration_seconds": 90}]}))
    (reports / "report-tests-2.json").write_text(json.dumps({"targets": [{"label": "//b:t1", "duration_seconds": 1},
                                                                         {"label": "//b:t2", "duration_seconds": 1}]}))
    durations = durations_from_report(str(reports))
    assert durations == {"//a:slow_test": 90, "//b:t1": 1, "//b:t2": 1}
    labels = ["//a:slow_test", "//b:t1", "//b:t2"]
    assert shard(labels, 1, 2, durations) == ["//a:slow_test"]
    assert shard(labels, 2, 2, durations) == ["//b:t1", "//b:t2"]

@pytest.mark.parametrize("limit", [1, None])
def test_releases_start_up_one_per_cpu_at_a_time(fixture_repo, servers, tmp_path, limit):
    """Start-up is CPU work: at most `limit` releases (by default one per CPU) are loading at any moment,
    however many workers wait on the network."""
    from releasekit.selection.bazelquery import Bazel
    from releasekit.running.dispatch import DispatchOptions, Dispatcher
    from releasekit.running.progress import Progress

    proxy, _ = servers
    config = tmp_path / "releasekit.yaml"
    config.write_text("channels:\n  dev: {{registry: 'http://{}/dev'}}\n".format(proxy.host))
    environ = dict(os.environ, RELEASEKIT_CONFIG=str(config), XDG_CACHE_HOME=str(tmp_path / "cache"),
                   RELEASEKIT_USER="t")
    environ.pop("CI", None)
    options = DispatchOptions(workers=4, report_dir=str(tmp_path / "logs"), environ=environ, concurrent_startups=limit)
    dispatcher = Dispatcher(fixture_repo.path, Bazel(fixture_repo.path, command=BAZEL), options,
                            Progress(stream=open(os.devnull, "w"), live=False))
    labels = ["//apps/{}:{}.dev".format(app, app) for app in "abcd"]
    outcomes = [o for o in dispatcher.run_releases(labels) if o.kind == "release"]
    assert sorted(o.label for o in outcomes) == labels
    windows = sorted((o.launched_at, o.started_up_at) for o in outcomes)
    assert all(launched < started for launched, started in windows), windows
    allowed = limit or os.cpu_count()
    for launched, _ in windows:  # how many are loading when each one is launched, itself included
        loading = sum(1 for other_launched, other_started in windows if other_launched <= launched < other_started)
        assert loading <= allowed, (limit, windows)
    if limit == 1:
        assert all(later[0] >= earlier[1] for earlier, later in zip(windows, windows[1:])), windows


def test_ci_publishes_what_bazel_build_builds_when_a_test_rc_line_would_build_it_otherwise(tmp_path):
    """Integrity: `test --define` makes `bazel test` build the release's file differently from `bazel build`. The
    tests' invocation must not be the one that builds what is published: the image holds the build's file."""
    registry = Registry(str(tmp_path / "registry"))
    workspace = Workspace(str(tmp_path / "repo"))
    try:
        workspace.write("WORKSPACE", 'local_repository(name = "rules_release", path = "{}")\n'.format(REPO_ROOT))
        workspace.write(".gitignore", FILES[".gitignore"])
        workspace.init_git()
        base = git(workspace.path, "rev-parse", "HEAD").strip()
        workspace.write(".bazelrc", "build --define=FLAVOR=release\ntest --define=FLAVOR=test\n")
        workspace.write("apps/e/BUILD.bazel", LOAD + (
            'genrule(name = "flavor", outs = ["flavor.txt"], cmd = "echo $(FLAVOR) > $@")\n\n'
            'image_layout(name = "image", files = {":flavor": "/flavor.txt"})\n\n'
            'container_release(name = "e", image = ":image", repository = "fixture/e")\n\n'
            'sh_test(name = "e_test", srcs = ["ok.sh"])\n'))
        workspace.write("apps/e/ok.sh", "#!/bin/sh\nexit 0\n", executable=True)
        workspace.commit("a release whose file depends on --define")
        workspace.cache = str(tmp_path / "cache")
        config = tmp_path / "releasekit.yaml"
        config.write_text("channels:\n  ci: {{registry: 'http://{0}/prod'}}\n  dev: {{registry: 'http://{0}/dev'}}\n"
                          .format(registry.host))
        result = run(workspace, "ci", "--base", base, "--head", "HEAD", "--logs", str(tmp_path / "logs"),
                     "--report", str(tmp_path / "report.json"), env={"CI": "true", "RELEASEKIT_CONFIG": str(config)})
        assert result.returncode == 0, result.stdout + result.stderr
        assert "built by a `bazel build` of their own: the rc option `test --define`" in result.stdout
        outcomes = {t["label"]: t for t in json.load(open(tmp_path / "report.json"))["targets"]}
        assert outcomes["//apps/e:e_test"]["status"] == "passed"
        digest = outcomes["//apps/e:e.ci"]["record"]["digest"]
        copy = tmp_path / "published"
        subprocess.run(["skopeo", "copy", *registry.skopeo_args(), "docker://{}/prod/fixture/e@{}".format(
            registry.host, digest), "dir:" + str(copy)], check=True, capture_output=True)
        flavors = []
        for name in os.listdir(copy):
            if tarfile.is_tarfile(copy / name):
                with tarfile.open(copy / name) as layer:
                    flavors += [layer.extractfile(m).read().decode().strip() for m in layer.getmembers()
                                if m.name.lstrip("./") == "flavor.txt"]
        assert flavors == ["release"]
    finally:
        workspace.shutdown()
        registry.stop()
