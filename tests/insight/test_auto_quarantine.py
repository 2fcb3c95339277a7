"""--quarantine auto's decisions over history records, at the edges of K flakes, N runs and M clean runs."""

import pytest

from releasekit.core.config import AutoQuarantine, parse_config
from releasekit.core.errors import ConfigError, UsageError
from releasekit.insight.quarantine import auto_decisions, read_quarantine_file, resolve
from releasekit.insight.run_record import object_name

TEST = "//apps:flaky_test"


def runs(statuses, commits=None):
    """History records of one test with these status letters, oldest first; each at its own commit unless given."""
    return [{"id": "run{:02d}".format(n), "start": float(n), "commit": (commits or {}).get(n, "c{}".format(n)),
             "targets": {"labels": [TEST], "kinds": "T", "statuses": letter, "attempts": [2 if letter == "K" else 1]}}
            for n, letter in enumerate(statuses)]


POLICY = AutoQuarantine(flakes=2, window=10, clean_runs=3)


@pytest.mark.parametrize("statuses, quarantined, flakes", [
    ("PK", False, 1),            # one flake: not yet
    ("PKPK", True, 2),           # K flakes: in
    ("KKPP", True, 2),           # two clean runs: still in
    ("KKPPP", False, 2),         # M clean runs in a row: out
    ("KKPFPP", True, 2),         # a real failure breaks the clean streak (failed at a commit it never passed)
    ("KPPPPPPPPPK", False, 1),   # the first flake has left the window of the last 10 runs
])
def test_decisions_at_the_edges(statuses, quarantined, flakes):
    decision = auto_decisions(runs(statuses), POLICY)[TEST]
    assert decision.quarantined == quarantined and len(decision.evidence) == flakes


def test_failing_and_passing_at_the_same_commit_is_a_flake():
    assert TEST not in auto_decisions(runs("PF"), POLICY)  # different commits: a real failure
    decision = auto_decisions(runs("PFPF", commits={0: "x", 1: "x", 2: "y", 3: "y"}), POLICY)[TEST]
    assert decision.quarantined and [e["run"] for e in decision.evidence] == ["run01", "run03"]


def test_the_file_wins_both_ways(tmp_path):
    listed = tmp_path / "quarantine.txt"
    listed.write_text("# flaky on Mondays\n//apps:other_test\n!{}\n".format(TEST))
    labels, decisions = resolve(["auto", str(listed)], runs("KKK"), POLICY)
    assert labels == {"//apps:other_test"}
    assert {d.label: d.source for d in decisions} == {TEST: "file", "//apps:other_test": "file"}
    assert resolve([str(listed)], runs("KKK"), POLICY)[0] == {"//apps:other_test"}  # no auto: history unread


def test_bad_quarantine_input_is_named(tmp_path):
    bad = tmp_path / "quarantine.txt"
    bad.write_text("apps:flaky_test\n")
    with pytest.raises(UsageError, match="not test labels: apps:flaky_test"):
        read_quarantine_file(str(bad))
    with pytest.raises(UsageError, match="Cannot read the quarantine file"):
        read_quarantine_file(str(tmp_path / "missing.txt"))
    with pytest.raises(ConfigError, match="auto_quarantine must map flakes, window, clean_runs"):
        parse_config("channels: {ci: {registry: r.example.com/p}}\nauto_quarantine: {flakes: 0}\n", "releasekit.yaml")
    with pytest.raises(ConfigError, match="releasekit.yaml: history 'ftp://x' is not a store URL"):
        parse_config("channels: {ci: {registry: r.example.com/p}}\nhistory: ftp://x\n", "releasekit.yaml")
    config = parse_config("channels: {ci: {registry: r.example.com/p}}\nhistory: s3://ci/history\n"
                          "auto_quarantine: {flakes: 3}\n", "releasekit.yaml")
    assert config.history.text == "s3://ci/history" and config.auto_quarantine == AutoQuarantine(flakes=3)


def test_runs_within_one_second_keep_their_order_in_the_history():
    """Before: names carried the start to the second, then the random id, so a clean rerun started in the same
    second as the failing run before it could sort first, and `--quarantine auto` counted no clean runs in a row."""
    failing = {"start": 1764640614.120, "commit": "c" * 40, "id": "f" * 32}
    clean = {"start": 1764640614.870, "commit": "c" * 40, "id": "0" * 32}
    names = [object_name(failing), object_name(clean)]
    assert sorted(names, key=lambda name: name.rsplit("/", 1)[1]) == names
    assert names[0].endswith("T015654.120Z-cccccccccccc-ffffffffffff.json")
