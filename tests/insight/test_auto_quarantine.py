"""--quarantine auto's decisions over history records, at the edges of K flakes, N runs, M clean runs and B broken
commits; what a flake is (one test, the same tree, flags and platform, CI runs only); and the settings' errors."""

import time

import pytest

from releasekit.core.config import parse_config
from releasekit.core.errors import ConfigError, UsageError
from releasekit.core.run_policy import AutoQuarantine
from releasekit.insight.quarantine import auto_decisions, read_quarantine_file, resolve, runs_by_test
from releasekit.insight.run_record import object_name

TEST = "//apps:flaky_test"
OTHER = "//apps:other_test"


def runs(statuses, commits=None, label=TEST, **facts):
    """CI history records of one test with these status letters, oldest first; each at its own commit (and tree)
    unless commits says otherwise; facts: record fields every run shares (command, flags, ...)."""
    records = []
    for n, letter in enumerate(statuses):
        commit = (commits or {}).get(n, "c{}".format(n))
        record = {"id": "run{:02d}".format(n), "start": float(n), "commit": commit, "command": "ci", "ci": True,
                  "dirty": False, "tree": "tree-of-" + commit, "flags": "f1", "platform": "linux-x86_64",
                  "targets": {"labels": [label], "kinds": "T", "statuses": letter,
                              "attempts": [2 if letter == "K" else 1]}}
        record.update(facts)
        records.append(record)
    return records


POLICY = AutoQuarantine(flakes=2, window=10, clean_runs=3)


def decide(records, policy=POLICY):
    return auto_decisions(runs_by_test(records), policy)


@pytest.mark.parametrize("statuses, quarantined, flakes", [
    ("PK", False, 1),            # one flake: not yet
    ("PKPK", True, 2),           # K flakes: in
    ("KKPP", True, 2),           # two clean runs: still in
    ("KKPPP", False, 2),         # M clean runs in a row: out
    ("KKPFPP", True, 2),         # a real failure breaks the clean streak (failed at a commit it never passed)
    ("KPPPPPPPPPK", False, 1),   # the first flake has left the window of the test's last 10 runs
])
def test_decisions_at_the_edges(statuses, quarantined, flakes):
    decision = decide(runs(statuses))[TEST]
    assert decision.quarantined == quarantined and len(decision.evidence) == flakes


@pytest.mark.parametrize("statuses, reason", [
    ("K", "1 flake in its last run (quarantined from 2)"),
    ("PK", "1 flake in its last 2 runs (quarantined from 2)"),
    ("KKP", "2 flakes in its last 3 runs; 1 clean run in a row since (released after 3)"),
])
def test_reasons_count_in_good_english(statuses, reason):
    """Before: `1 flakes in its last 1 runs`."""
    assert decide(runs(statuses))[TEST].reason == reason


def test_a_flake_is_a_pass_and_a_failure_at_the_same_tree_flags_and_platform():
    """Before: a failure at a commit at which the test also passed was a flake, whatever the flags or platform."""
    assert TEST not in decide(runs("PF"))  # different commits: a real failure
    same = {0: "x", 1: "x", 2: "y", 3: "y"}
    decision = decide(runs("PFPF", commits=same))[TEST]
    assert decision.quarantined and [e["run"] for e in decision.evidence] == ["run01", "run03"]
    for field, values in (("flags", ("f1", "f2")), ("platform", ("linux-x86_64", "darwin-arm64"))):
        records = runs("PFPF", commits=same)
        for record in records[1::2]:
            record[field] = values[1]  # the failures ran with other flags, or on another platform
        assert TEST not in decide(records), field


def test_pull_request_and_uncommitted_runs_are_not_runs_of_a_commit():
    """Before: a `pr` run on an uncommitted tree at the same commit counted, and its pass made a CI failure a flake."""
    ci_failures = runs("FF", commits={0: "x", 1: "x"})
    for other in ({"command": "pr"}, {"dirty": True, "tree": None}, {"ci": False}, {"build_only": True}):
        passes = runs("PP", commits={0: "x", 1: "x"}, **other)
        for record in passes:
            record["id"] += "-other"
        assert TEST not in decide(passes + ci_failures), other
        assert runs_by_test(passes) == {}, other
    assert decide(runs("PP", commits={0: "x", 1: "x"}) + ci_failures)[TEST].quarantined


def test_the_window_counts_the_tests_own_runs(tmp_path):
    """Before: a run read the last `window` runs of the history, so runs of other tests pushed a flake out."""
    from helpers.run_history import write_history
    from releasekit.core.http import RetryPolicy
    from releasekit.core.run_context import RunContext
    from releasekit.insight.ci_runs import RunHistory, quarantine_for_run
    from releasekit.insight.run_record import FORMAT, FORMAT_VERSION

    records = runs("KK") + runs("P" * 20, label=OTHER)
    an_hour_ago = time.time() - 3600
    for number, record in enumerate(records):
        record.update(id="{:032x}".format(number), start=an_hour_ago + number, end=an_hour_ago + number + 1,
                      wall_seconds=1.0, format=FORMAT, format_version=FORMAT_VERSION)
        record["targets"].update(seconds=[1.0], cached="0")
    write_history(records, str(tmp_path / "history"))
    context = RunContext(None, RetryPolicy(), {})
    settings = RunHistory(context.history("file://{}".format(tmp_path / "history")), POLICY, context.open_store)
    plan = quarantine_for_run(["auto"], settings, [TEST, OTHER])
    assert plan.labels == {TEST}, plan.lines
    assert "quarantined //apps:flaky_test: 2 flakes in its last 2 runs" in plan.lines[0]


@pytest.mark.parametrize("broken_after, statuses, commits, broken", [
    (2, "KKFF", {}, True),                       # every attempt failed at two commits in a row: broken
    (2, "KKFF", {2: "x", 3: "x"}, False),         # twice, but at one commit
    (2, "KKFPF", {}, False),                      # a pass in between: not consecutive
    (3, "KKFF", {}, False),                       # configurable
    (3, "KKFFF", {}, True),
])
def test_a_quarantined_test_that_fails_every_attempt_at_consecutive_commits_is_broken(broken_after, statuses, commits,
                                                                                       broken):
    policy = AutoQuarantine(flakes=2, window=10, clean_runs=3, broken_after=broken_after)
    labels, decisions = resolve(["auto"], runs_by_test(runs(statuses, commits)), policy)
    decision = {d.label: d for d in decisions}[TEST]
    assert decision.broken == broken and (TEST in labels) == (not broken)
    if broken:
        assert decision.reason.startswith("broken, not flaky: failed every attempt at {} consecutive commits".format(
            broken_after))


def test_the_file_wins_both_ways_but_not_over_breakage(tmp_path):
    listed = tmp_path / "quarantine.txt"
    listed.write_text("# flaky on Mondays\n{}\n!{}\n".format(OTHER, TEST))
    history = runs_by_test(runs("KKK"))
    labels, decisions = resolve(["auto", str(listed)], history, POLICY)
    assert labels == {OTHER}
    assert {d.label: d.source for d in decisions} == {TEST: "file", OTHER: "file"}
    assert resolve([str(listed)], history, POLICY)[0] == {OTHER}
    broken = runs_by_test(runs("FF", label=OTHER))
    labels, decisions = resolve([str(listed)], broken, POLICY)
    assert labels == set() and {d.label: d for d in decisions}[OTHER].broken


def test_bad_quarantine_input_is_named(tmp_path):
    bad = tmp_path / "quarantine.txt"
    bad.write_text("apps:flaky_test\n")
    with pytest.raises(UsageError, match="not test labels: apps:flaky_test"):
        read_quarantine_file(str(bad))
    with pytest.raises(UsageError, match="Cannot read the quarantine file"):
        read_quarantine_file(str(tmp_path / "missing.txt"))
    with pytest.raises(ConfigError, match="auto_quarantine.flakes is 0; auto_quarantine must map flakes, window"):
        parse_config("channels: {ci: {registry: r.example.com/p}}\nauto_quarantine: {flakes: 0}\n", "releasekit.yaml")
    with pytest.raises(ConfigError, match="auto_quarantine.broken_after is 'two'"):
        parse_config("channels: {ci: {registry: r.example.com/p}}\nauto_quarantine: {broken_after: two}\n", "r.yaml")
    with pytest.raises(ConfigError, match="auto_quarantine.brokenafter is not a setting"):
        parse_config("channels: {ci: {registry: r.example.com/p}}\nauto_quarantine: {brokenafter: 2}\n", "r.yaml")
    with pytest.raises(ConfigError, match="releasekit.yaml: gate 'sometimes' is not a gate. Use all"):
        parse_config("channels: {ci: {registry: r.example.com/p}}\ngate: sometimes\n", "releasekit.yaml")
    with pytest.raises(ConfigError, match="releasekit.yaml: history 'ftp://x' is not a store URL"):
        parse_config("channels: {ci: {registry: r.example.com/p}}\nhistory: ftp://x\n", "releasekit.yaml")
    config = parse_config("channels: {ci: {registry: r.example.com/p}}\nhistory: s3://ci/history\n"
                          "auto_quarantine: {flakes: 3, broken_after: 4}\ngate: deps\n", "releasekit.yaml")
    assert config.history.text == "s3://ci/history" and config.auto_quarantine == AutoQuarantine(flakes=3,
                                                                                                 broken_after=4)
    assert config.gate == "deps"


def test_runs_within_one_second_keep_their_order_in_the_history():
    """Before: names carried the start to the second, then the random id, so a clean rerun started in the same
    second as the failing run before it could sort first, and `--quarantine auto` counted no clean runs in a row."""
    failing = {"start": 1764640614.120, "commit": "c" * 40, "id": "f" * 32}
    clean = {"start": 1764640614.870, "commit": "c" * 40, "id": "0" * 32}
    names = [object_name(failing), object_name(clean)]
    assert sorted(names, key=lambda name: name.rsplit("/", 1)[1]) == names
    assert names[0].endswith("T015654.120Z-cccccccccccc-ffffffffffff.json")
