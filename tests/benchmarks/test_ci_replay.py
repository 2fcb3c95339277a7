"""The CI replay's harness: its arguments, what it measures from outside the arms (real nginx, real Bazel), its
figures and the docs built from its committed results files."""

import os
import subprocess
import sys
import textwrap
import time

import pytest
import requests

from helpers.servers import REPO_ROOT, NginxStore
from helpers.workspace import BAZEL, Workspace

sys.path.insert(0, os.path.join(REPO_ROOT, "benchmarks"))

import ci_replay  # noqa: E402
from replay import costs, results, timeline  # noqa: E402
from replay.arms import ARMS, releases_built  # noqa: E402
from releasekit.running.build_events import read_build_events  # noqa: E402

COMMITTED = os.path.join(REPO_ROOT, "docs", "ci-replay")


def test_quick_runs_write_to_a_scratch_directory_and_keep_the_sizes_they_are_given(capsys):
    quick = ci_replay.parse_arguments(["--quick"])
    assert (quick.services, quick.commits) == (8, 12)
    assert not os.path.realpath(quick.out).startswith(os.path.realpath(COMMITTED)) and not quick.render_docs
    os.rmdir(quick.out)
    sized = ci_replay.parse_arguments(["--quick", "--services", "16", "--commits", "40", "--out", "/tmp/x"])
    assert (sized.services, sized.commits, sized.out) == (16, 40, "/tmp/x")
    with pytest.raises(SystemExit) as refused:
        ci_replay.parse_arguments(["--quick", "--out", os.path.join(COMMITTED, "cold")])
    assert refused.value.code == 2 and "scratch directory" in capsys.readouterr().err
    full = ci_replay.parse_arguments(["--agents", "warm"])
    assert (full.services, full.commits, full.out, full.render_docs) == (16, 40, os.path.join(COMMITTED, "warm"), True)


def test_the_figures_are_of_the_code_the_run_began_with(tmp_path):
    """Before: the commit was read when the run ended. The replay runs releasekit from the checkout, so a commit made
    meanwhile was named as the code of figures it had no part in, and an edit saved meanwhile went unsaid."""
    repo = Workspace(str(tmp_path))
    repo.write("tools/releasekit/run.py", "version = 1\n")
    repo.write("docs/page.md", "one\n")
    repo.init_git()
    at_start = results.source(repo.path)
    repo.write("docs/page.md", "two\n")
    repo.commit("docs only")
    docs_only = results.source_of_run(at_start, results.source(repo.path))
    assert docs_only == {"commit": at_start["commit"], "uncommitted_changes": False}
    repo.write("tools/releasekit/run.py", "version = 2\n")  # saved while the run goes on
    assert results.source_of_run(at_start, results.source(repo.path))["uncommitted_changes"]
    repo.commit("the code")
    committed = results.source_of_run(at_start, results.source(repo.path))
    assert committed == {"commit": at_start["commit"], "uncommitted_changes": True}


def test_a_run_is_called_shared_by_the_cpu_other_work_took_not_by_its_own_load():
    """Before: a cold replay alone keeps the 15-minute load above twice the cores, and a quiet run was called shared."""
    from replay import report

    begun = results.cpu_clock()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # the replay's own work
        pass
    ended = results.cpu_clock()
    assert ended[1] - begun[1] >= 0.25 and ended[0] - begun[0] >= 0.9 * (ended[1] - begun[1])  # clock ticks: 10 ms
    assert results.others_share((100.0, 10.0), (160.0, 60.0), 30.0, 2) == round(10.0 / 60.0, 3)
    machine = {"cores": 2, "load_average_at_start": [0.7, 1, 1], "load_average_at_end": [6, 5.6, 5.2]}
    assert "not a quiet run" not in report._load_at_end(dict(machine, others_cpu_share=0.02))
    assert "not a quiet run" in report._load_at_end(dict(machine, others_cpu_share=0.3))
    assert "not a quiet run" not in report._load_at_end(machine)  # measured before the share was: by its start
    assert "not a quiet run" in report._load_at_end(dict(machine, load_average_at_start=[3.1, 2, 2]))


def test_the_docs_figures_are_those_of_the_committed_results_files():
    with open(os.path.join(REPO_ROOT, "docs", "benchmarks.md")) as handle:
        docs = handle.read()
    rendered = docs.split(results.DOCS_BEGIN + "\n", 1)[1].split(results.DOCS_END, 1)[0]
    assert rendered == results.figures_markdown(COMMITTED), "run benchmarks/ci_replay.py to render the docs again"


def row(kind, seconds, missed=(), footprint=None):
    arm_rows = {}
    for arm, value in zip(ARMS, seconds):
        arm_rows[arm] = {"seconds": value, "tests_executed": 1, "tests_cached": 0, "releases": 1, "bytes_pushed": 10,
                         "failed": [], "costs": {"cpu_seconds": value / 2, "bazel_server_peak_mb": 300,
                                                 "other_peak_mb": 40, "cache_pulled_bytes": 100,
                                                 "cache_pushed_bytes": 50, "store_pushed_bytes": 20},
                         "phases": {}, "footprint": footprint}
    arm_rows[ARMS[2]]["graph"] = "read"
    return dict(arm_rows, commit="c", kind=kind, missed=list(missed))


def test_headline_ratios_are_the_median_over_repeats_with_their_spread():
    repeats = [results.summarize([row("docs only", (10, 8, 1)), row("service source", (12, 10, scale)),
                                  row("shared library", (14, 12, 8))]) for scale in (4, 5, 6)]
    assert repeats[0]["percentiles"][ARMS[2]] == {"p50": 4.0, "p90": 7.2}
    assert repeats[1]["ratios"]["p50_arm2"] == 2.0 and repeats[1]["ratios"]["p50_arm1"] == 2.4
    headline = results.across(repeats)
    assert headline["ratios"]["p50_arm2"] == {"median": 2.0, "min": 1.67, "max": 2.5}
    assert headline["percentiles"][ARMS[0]]["p90"] == {"median": 13.6, "min": 13.6, "max": 13.6}
    met = {key: ok for key, _, _, ok in results.targets_met("cold", headline)}
    assert met == {"p50_arm2": True, "p50_arm1": False, "p90_arm2": True, "missed": True}


def test_a_persistent_agent_that_piles_up_is_reported():
    def seen(servers, cache):
        return {"servers": servers, "worktrees": 2, "base_checkouts": 1, "disk_bytes": 1,
                "releasekit_cache_bytes": cache,
                "bazel_output_bytes": 1}

    settled = [row("service source", (1, 1, 1), footprint=seen(2, 4096 + (n % 2) * 100)) for n in range(10)]
    assert results.footprint_limits(settled, ARMS[2]) == []
    growing = [row("service source", (1, 1, 1), footprint=seen(1, 4096 * (1 + 10 * n))) for n in range(10)]
    assert results.footprint_limits(growing, ARMS[2]) == ["releasekit's cache grew from 167936 to 372736 bytes"]
    too_many = [row("service source", (1, 1, 1), footprint=seen(2, 4096))]
    assert results.footprint_limits(too_many, ARMS[0]) == ["c: 2 Bazel servers running after the run"]


def test_bytes_to_and_from_the_remote_cache_and_the_stores_come_from_nginx_access_log(tmp_path):
    store = NginxStore(str(tmp_path / "nginx"))
    try:
        meter = costs.Meter(str(tmp_path / "agent"), store.request_log)
        meter.begin()
        requests.put(store.url + "/cache/cas/abc", data=b"x" * 1000, timeout=10).raise_for_status()
        assert requests.get(store.url + "/cache/cas/abc", timeout=10).content == b"x" * 1000
        assert requests.get(store.url + "/cache/ac/missing", timeout=10).status_code == 404
        requests.put(store.url + "/store/maven/a.jar", data=b"y" * 500, timeout=10).raise_for_status()
        measured = meter.end()
    finally:
        store.stop()
    # A miss (404) pulls nothing from the cache, though nginx sends its error page.
    assert (measured["cache_pulled_bytes"], measured["cache_pushed_bytes"], measured["store_pushed_bytes"]) == (
        1000, 1000, 500)


def test_a_bazel_server_that_stops_during_a_commit_is_waited_for_and_counted(tmp_path):
    """In a process of its own: the harness becomes the subreaper of everything it starts."""
    workspace = Workspace(str(tmp_path / "ws"))
    os.makedirs(workspace.path)
    workspace.write("WORKSPACE", "")
    script = textwrap.dedent("""
        import subprocess, sys, time
        sys.path[:0] = [{benchmarks!r}, {tests!r}, {tools!r}]
        from replay import costs
        assert costs.become_subreaper()
        root = {root!r}
        meter = costs.Meter(root, {log!r})
        meter.begin()
        bazel = [{bazel!r}, "--output_user_root=" + root]
        subprocess.run(bazel + ["info", "release"], cwd={ws!r}, check=True, capture_output=True)
        assert len(costs.servers_of(root)) == 1
        started = time.monotonic()
        subprocess.run(bazel + ["shutdown"], cwd={ws!r}, check=True, capture_output=True, timeout=60)
        print("shutdown", round(time.monotonic() - started, 1))
        assert costs.servers_of(root) == {{}}
        print("cpu", meter.end()["cpu_seconds"])
    """).format(benchmarks=os.path.join(REPO_ROOT, "benchmarks"), tests=os.path.join(REPO_ROOT, "tests"),
                tools=os.path.join(REPO_ROOT, "tools"), root=str(tmp_path / "agent"), log=str(tmp_path / "access.log"),
                bazel=BAZEL, ws=workspace.path)
    (tmp_path / "access.log").write_text("")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    printed = dict(line.split() for line in result.stdout.splitlines())
    # A server nobody waits for would keep its client waiting; its start-up alone is seconds of CPU.
    assert float(printed["shutdown"]) < 15 and float(printed["cpu"]) > 1.0


def test_what_the_peers_ran_and_where_the_time_went_come_from_bazels_own_files(tmp_path):
    workspace = Workspace(str(tmp_path / "ws"))
    os.makedirs(workspace.path)
    workspace.write("WORKSPACE", 'local_repository(name = "rules_release", path = "{}")\n'.format(REPO_ROOT))
    workspace.write("apps/BUILD.bazel", (
        'load("@rules_release//rules:defs.bzl", "container_release", "image_layout")\n\n'
        'sh_test(name = "ok_test", srcs = ["ok.sh"])\n\n'
        'image_layout(name = "image", files = {"ok.sh": "/ok.sh"}, entrypoint = ["/ok.sh"])\n\n'
        'container_release(name = "app", image = ":image", repository = "peers/app")\n'))
    workspace.write("apps/ok.sh", "#!/bin/sh\nexit 0\n", executable=True)
    bep, profile, root = str(tmp_path / "bep.json"), str(tmp_path / "profile.json"), str(tmp_path / "agent")
    launched = time.time()
    try:
        subprocess.run([BAZEL, "--output_user_root=" + root, "test", "--build_event_json_file=" + bep,
                        "--profile=" + profile, "//..."], cwd=workspace.path, check=True, capture_output=True)
        ended = time.time()
        # Where the time went: a fresh server's start, Bazel's loading and analysis, its execution.
        assert 0.3 < timeline.server_start(root, workspace.path, launched, ended) < ended - launched
        assert timeline.server_start(root, str(tmp_path), launched, ended) == 0.0  # another workspace's: none
        _, loading, execution = timeline.bazel_phases(profile)
        assert loading > 0.1 and execution > 0 and loading + execution < ended - launched
    finally:
        subprocess.run([BAZEL, "--output_user_root=" + root, "shutdown"], cwd=workspace.path, capture_output=True)
    built = releases_built(read_build_events(bep))
    assert list(built) == ["//apps:app.ci"]
    assert os.path.basename(built["//apps:app.ci"]) == "app.ci" and os.path.isfile(built["//apps:app.ci"])
