"""The run history on real runs: dispatch appends each run to a directory, nginx and S3 history; auto-quarantine
puts a real flaky test in quarantine after K flakes and lets it out after M clean runs; an unreachable history
never fails a run; insight reads all three stores and skips what is not a run record."""

import glob
import json
import os
import subprocess
import sys

import pytest

from conftest import TEST_PASSWORD, TEST_USER
from helpers.servers import REPO_ROOT, NginxStore
from helpers.tls import make_certificates
from helpers.workspace import BAZEL, Workspace, git
from releasekit.selection.selection_file import Selected, Selection

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
FLAKY = "//apps:flaky_test"
FLAKY_TEST = """#!/bin/sh
# Fails on its first attempt, passes on the second: the marker outlives the attempt.
marker="$FLAKY_MARKER_DIR/flaky"
if [ -e "$marker" ]; then exit 0; fi
touch "$marker"
exit 1
"""
BUILD = """sh_test(name = "ok_test", srcs = ["ok.sh"])

# Reaches outside the sandbox (its marker directory): never cached, as such tests are tagged.
sh_test(name = "flaky_test", srcs = ["flaky.sh"], tags = ["external"])
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("history")
    repo = Workspace(str(root / "repo"))
    os.makedirs(repo.path)
    repo.write("WORKSPACE", 'workspace(name = "history_fixture")\n')
    repo.write(".gitignore", "/bazel-*\n")
    repo.write("apps/BUILD.bazel", BUILD)
    repo.write("apps/ok.sh", "#!/bin/sh\nexit 0\n", executable=True)
    repo.write("apps/flaky.sh", FLAKY_TEST, executable=True)
    history = root / "history"
    repo.write("releasekit.yaml", "channels:\n  ci: {{registry: '127.0.0.1:5000/prod'}}\n"
                                  "history: 'file://{}'\nauto_quarantine: {{flakes: 2, window: 10, clean_runs: 2}}\n"
                                  .format(history))
    repo.init_git()
    repo.history, repo.markers, repo.cache = str(history), str(root / "markers"), str(root / "cache")
    os.makedirs(repo.markers)
    tests = Selection("base", "head", False, [Selected("//apps:ok_test", "sh_test", []),
                                              Selected(FLAKY, "sh_test", [])], [], [])
    repo.tests = str(root / "tests.json")
    with open(repo.tests, "w") as handle:
        json.dump(tests.report("tests"), handle)
    try:
        yield repo
    finally:
        repo.shutdown()


def dispatch(repo, logs, *args, flaky=True, env=None):
    """One CI run of the two tests; flaky: the flaky test fails its first attempt (else it passes at once)."""
    marker = os.path.join(repo.markers, "flaky")
    if flaky and os.path.exists(marker):
        os.unlink(marker)
    if not flaky:
        open(marker, "w").close()
    run_env = dict(os.environ, RELEASEKIT_BAZEL=BAZEL, XDG_CACHE_HOME=repo.cache, CI="true")
    run_env.update(env or {})
    result = subprocess.run([sys.executable, ENTRY, "dispatch", "--tests", repo.tests, "--logs", str(logs), *args, "--",
                             "--test_env=FLAKY_MARKER_DIR=" + repo.markers], cwd=repo.path, capture_output=True,
                            text=True, env=run_env, timeout=600)
    report = os.path.join(str(logs), "report.json")
    return result, json.load(open(report)) if os.path.exists(report) else None


def history_objects(root):
    return sorted(glob.glob(os.path.join(root, "runs", "*", "*.json")))


def insight_json(repo, history, tmp_path, env=None, window=()):
    out = tmp_path / "insight.json"
    result = subprocess.run([sys.executable, ENTRY, "insight", "--history", history, "--json", str(out), *window],
                            cwd=repo.path, capture_output=True, text=True, env=dict(os.environ, **(env or {})),
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.load(open(out)), result


def test_auto_quarantine_takes_a_real_flaky_test_in_after_two_flakes_and_out_after_two_clean_runs(workspace, tmp_path):
    def decision(report):
        return {d["label"]: d for d in report["quarantine"]}.get(FLAKY)

    def status(report):
        return {t["label"]: t for t in report["targets"]}[FLAKY]

    # Two runs with retries: the test fails, then passes on its second attempt. One flake is not yet enough.
    for number in (1, 2):
        result, report = dispatch(workspace, tmp_path / "run{}".format(number), "--quarantine", "auto",
                                  "--flaky-test-attempts", "2", *(["--profile"] if number == 1 else []))
        assert result.returncode == 0, result.stdout + result.stderr
        assert status(report)["status"] == "flaky" and not status(report)["quarantined"]
        assert (decision(report) is None) == (number == 1)
    assert len(history_objects(workspace.history)) == 2

    # Third run, no retries: the test fails, but two flakes put it in quarantine, so the run passes.
    result, report = dispatch(workspace, tmp_path / "run3", "--quarantine", "auto")
    assert result.returncode == 0, result.stdout + result.stderr
    assert status(report)["status"] == "failed" and status(report)["quarantined"]
    assert decision(report)["quarantined"] and len(decision(report)["evidence"]) == 2
    assert all(e["status"] == "flaky" and e["attempts"] == 2 for e in decision(report)["evidence"])
    assert "quarantined {}: 2 flakes in its last 2 runs".format(FLAKY) in result.stdout

    # A hand-written file wins: `!` keeps the test out of quarantine, and its failure fails the run.
    never = tmp_path / "never.txt"
    never.write_text("# must never be quarantined\n!{}\n".format(FLAKY))
    result, report = dispatch(workspace, tmp_path / "run4", "--quarantine", "auto", "--quarantine", str(never))
    assert result.returncode == 1 and not status(report)["quarantined"]
    assert decision(report)["source"] == "file"

    # Clean runs: still quarantined after one, released after two.
    for number in (5, 6):
        result, report = dispatch(workspace, tmp_path / "run{}".format(number), "--quarantine", "auto", flaky=False)
        assert result.returncode == 0 and status(report)["status"] == "passed"
        assert decision(report)["quarantined"]
    result, report = dispatch(workspace, tmp_path / "run7", "--quarantine", "auto")
    assert not decision(report)["quarantined"] and "2 clean runs in a row: released" in decision(report)["reason"]
    assert result.returncode == 1 and status(report)["status"] == "failed" and not status(report)["quarantined"]

    # Every run is one object; what Bazel said is in it: cache hits, attempts, and run 1's profile.
    records = [json.load(open(path)) for path in history_objects(workspace.history)]
    assert len(records) == 7 and len({r["id"] for r in records}) == 7
    commit = git(workspace.path, "rev-parse", "HEAD").strip()
    assert all(r["commit"] == commit and r["command"] == "dispatch" and r["end"] >= r["start"] for r in records)
    by_start = sorted(records, key=lambda r: r["start"])
    ok_cached = [r["targets"]["cached"][r["targets"]["labels"].index("//apps:ok_test")] for r in by_start]
    flaky_cached = {r["targets"]["cached"][r["targets"]["labels"].index(FLAKY)] for r in by_start}
    assert ok_cached[0] == "0" and set(ok_cached[1:]) == {"1"} and flaky_cached == {"0"}
    assert [r["exit_code"] for r in by_start] == [0, 0, 0, 1, 0, 0, 1]
    profile = by_start[0]["profile"]
    assert any("Testing //apps" in step for step, _ in profile["critical_path"]) and profile["slowest_actions"]

    figures, _ = insight_json(workspace, "file://" + workspace.history, tmp_path,
                              window=("--out", str(tmp_path / "p.html")))
    assert figures["runs"] == 7 and figures["cache"]["cached"] == 6 and figures["cache"]["tests"] == 14
    page = (tmp_path / "p.html").read_text()  # the page of a real history: its charts, its flaky test, its profile
    assert page.count("<figure class='chart'") >= 6 and FLAKY in page and "Testing //apps" in page
    flaky = {t["label"]: t for t in figures["flaky"]["tests"]}[FLAKY]
    # Flakes: runs 1 and 2 (flaky), 3, 4 and 7 (failed at a commit at which it also passed); none clean since run 7.
    assert flaky["flakes"] == 5 and flaky["runs"] == 7 and flaky["quarantined"]
    assert figures["critical_paths"][0]["critical_path"]


@pytest.mark.parametrize("store", ["nginx", "s3"])
def test_a_run_appends_to_an_http_or_s3_history_and_insight_lists_it(workspace, tmp_path, store, request):
    if store == "nginx":
        server = request.getfixturevalue("nginx")
        history, env = server.url + "/ci-history", {"RELEASEKIT_HISTORY_USERNAME": TEST_USER,
                                                   "RELEASEKIT_HISTORY_PASSWORD": TEST_PASSWORD}
    else:
        server = request.getfixturevalue("moto")
        history, env = "s3://{}/ci-history".format(server.bucket), server.environ
    for number in (1, 2):
        result, report = dispatch(workspace, tmp_path / "run{}".format(number), "--history", history,
                                  "--flaky-test-attempts", "2", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "history: " + history in result.stdout and TEST_PASSWORD not in result.stdout + result.stderr
    figures, printed = insight_json(workspace, history, tmp_path, env)
    assert figures["runs"] == 2 and figures["skipped_objects"] == []
    assert "2 runs from" in printed.stdout


def test_an_unreachable_history_never_fails_a_run_and_the_next_run_sends_its_record(workspace, nginx, tmp_path):
    logs = tmp_path / "logs"
    closed = "http://127.0.0.1:9/ci-history"  # the discard port: nothing listens
    result, report = dispatch(workspace, logs, "--history", closed, "--flaky-test-attempts", "2")
    assert result.returncode == 0 and report is not None, result.stdout + result.stderr
    assert "history: not written" in result.stdout and "sent with the next run" in result.stdout
    pending = glob.glob(str(logs / "history-pending" / "*.json"))
    assert len(pending) == 1
    history = nginx.url + "/unreachable-then-back"
    env = {"RELEASEKIT_HISTORY_USERNAME": TEST_USER, "RELEASEKIT_HISTORY_PASSWORD": TEST_PASSWORD}
    result, _ = dispatch(workspace, logs, "--history", history, "--flaky-test-attempts", "2", env=env)
    assert result.returncode == 0 and "(and 1 earlier runs)" in result.stdout, result.stdout
    assert not glob.glob(str(logs / "history-pending" / "*.json"))
    figures, _ = insight_json(workspace, history, tmp_path, env)
    assert figures["runs"] == 2

    # insight itself fails clearly on an unreachable history.
    failed = subprocess.run([sys.executable, ENTRY, "insight", "--history", closed, "--json", str(tmp_path / "x.json")],
                            capture_output=True, text=True, env=dict(os.environ, RELEASEKIT_RETRY_ATTEMPTS="1"))
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert "Cannot read the run history at http://127.0.0.1:9/ci-history" in failed.stderr


def test_insight_skips_and_names_corrupt_and_foreign_objects(workspace, tmp_path):
    history = tmp_path / "history"
    day = history / "runs" / "2026-11-30"
    day.mkdir(parents=True)
    records = sorted(history_objects(workspace.history))[:1]
    good = json.load(open(records[0]))
    good["start"], good["end"] = 1796025600.0, 1796025700.0  # 2026-11-30 08:00 UTC
    (day / "20261130T080000Z-good.json").write_text(json.dumps(good))
    (day / "20261130T090000Z-cut.json").write_text(json.dumps(good)[:200])
    (day / "20261130T100000Z-foreign.json").write_text(json.dumps({"hello": "world"}))
    newer = dict(good, format_version=99)
    (day / "20261130T110000Z-newer.json").write_text(json.dumps(newer))
    figures, printed = insight_json(workspace, "file://{}".format(history), tmp_path,
                                    window=("--since", "2026-11-30", "--until", "2026-12-01"))
    assert figures["runs"] == 1
    skipped = {s["object"].rsplit("/", 1)[1]: s["why"] for s in figures["skipped_objects"]}
    assert skipped == {"20261130T090000Z-cut.json": "not JSON",
                       "20261130T100000Z-foreign.json": "not a releasekit run record",
                       "20261130T110000Z-newer.json": "run record format version 99 (this releasekit reads 1)"}
    assert "3 objects skipped" in printed.stdout
    assert "skipped runs/2026-11-30/20261130T090000Z-cut.json" in printed.stdout


@pytest.mark.parametrize("trust", ["ca_bundle", "insecure"])
def test_the_history_entry_keeps_its_tls_settings_for_the_record_the_quarantine_and_insight(workspace, tmp_path, trust):
    """history: {url: https://..., ca_bundle: ...} (or insecure: true). Before: the entry was handed on as its URL and
    parsed again, without its TLS settings: no run was written, --quarantine auto quarantined nothing, insight
    failed."""
    ca, certificate, key = make_certificates(str(tmp_path))
    server = NginxStore(str(tmp_path / "nginx"), TEST_USER, TEST_PASSWORD, tls=(certificate, key))
    try:
        history = server.url + "/tls-history"
        entry = "{{url: '{}', {}}}".format(history, "ca_bundle: '{}'".format(ca) if trust == "ca_bundle" else
                                           "insecure: true")
        config = tmp_path / "releasekit.yaml"
        config.write_text("channels:\n  ci: {registry: '127.0.0.1:5000/prod'}\nhistory: " + entry +
                          "\nauto_quarantine: {flakes: 2, window: 10, clean_runs: 2}\n")
        env = {"RELEASEKIT_CONFIG": str(config), "RELEASEKIT_HISTORY_USERNAME": TEST_USER,
               "RELEASEKIT_HISTORY_PASSWORD": TEST_PASSWORD}
        for number in (1, 2):  # two flakes, each run written to the history
            result, _ = dispatch(workspace, tmp_path / "run{}".format(number), "--quarantine", "auto",
                                 "--flaky-test-attempts", "2", env=env)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "history: {}/runs/".format(history) in result.stdout, result.stdout
        result, report = dispatch(workspace, tmp_path / "run3", "--quarantine", "auto", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert {t["label"]: t for t in report["targets"]}[FLAKY]["quarantined"]
        out = tmp_path / "insight.json"
        read = subprocess.run([sys.executable, ENTRY, "insight", "--json", str(out)], cwd=workspace.path,
                              capture_output=True, text=True, env=dict(os.environ, **env), timeout=300)
        assert read.returncode == 0, read.stdout + read.stderr
        assert json.load(open(out))["runs"] == 3
    finally:
        server.stop()
