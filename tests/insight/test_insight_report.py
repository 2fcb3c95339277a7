"""`releasekit insight` on a generated month of runs: the figures, and the page in a real headless Chromium."""

import json
import os
import re
import subprocess
import sys

import pytest

from helpers.browser import chromium
from helpers.run_history import HistoryShape, generate, write_history
from helpers.servers import REPO_ROOT

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
ARTIFACTS = os.path.join(REPO_ROOT, "test-artifacts")
CHARTS = ["run-outcomes", "failure-rate", "percentiles-per-week", "percentiles-per-day", "per-command",
          "per-command-distribution", "histogram", "before-after", "slowest-trend", "cache-hit-rate", "flake-rate",
          "lead-time"]


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """A month of 300 runs of 200 targets; from 2026-10-16 on, runs take about 40% of the time."""
    root = tmp_path_factory.mktemp("month")
    shape = HistoryShape()
    write_history(generate(shape), str(root / "history"))
    out = root / "report.html"
    result = subprocess.run([sys.executable, ENTRY, "insight", "--history", "file://{}".format(root / "history"),
                             "--since", "2026-10-01", "--until", "2026-11-01", "--compare-at", shape.improved_from,
                             "--out", str(out), "--json", str(root / "figures.json"), "--charts", str(root / "charts")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return out, json.load(open(root / "figures.json")), result.stdout


def test_the_figures_of_a_month(month):
    _, figures, printed = month
    assert figures["runs"] == 300 and figures["window"] == ["2026-10-01", "2026-10-30"]
    assert [w["week"] for w in figures["per_week"]][:2] == ["2026-09-28", "2026-10-05"]  # weeks start on Mondays
    assert len(figures["per_day"]) == 30 and sum(d["runs"] for d in figures["per_day"]) == 300
    split = figures["before_after"]
    assert split["split"] == "2026-10-16" and split["before"]["runs"] + split["after"]["runs"] == 300
    assert 2.0 < split["p50_ratio"] < 3.2 and split["p90_ratio"] > 1.5  # the generated runs take 40% from the split
    assert 0.45 < figures["cache"]["hit_rate"] < 0.55
    assert [(g["command"], g["runs"]) for g in figures["per_command"]] == [("ci", 225), ("pr", 75)]
    assert len(figures["slowest_targets"]) == 15 and figures["slowest_targets"][0]["trend"]
    means = [t["mean_seconds"] for t in figures["slowest_targets"]]
    assert means == sorted(means, reverse=True)
    flaky = figures["flaky"]["tests"]
    assert len(flaky) == 3 and all(t["evidence"] and t["flakes"] == len(t["evidence"]) for t in flaky)
    assert len(figures["lead_time"]) == 30 and all(r["published"] == 300 for r in figures["lead_time"])
    assert "wall time: P50" in printed
    charts = sorted(os.listdir(os.path.join(os.path.dirname(month[0]), "charts")))
    assert charts == sorted(name + ".svg" for name in CHARTS)


def test_every_chart_renders_in_chromium_with_no_console_error(month):
    page, _, _ = month
    text = page.read_text()
    # Self-contained: no script, nothing fetched (namespaces are names, not fetches).
    assert not re.search(r"<script|<link|<img|src=|(href|url)\(?=?['\"]?(https?:|//)", text)
    assert text.count("<svg") == len(CHARTS)
    os.makedirs(ARTIFACTS, exist_ok=True)
    with chromium() as browser:
        browser.get("file://{}".format(page))
        drawn = browser.execute_script("""
            return Array.from(document.querySelectorAll('figure.chart')).map(figure => {
              const svg = figure.querySelector('svg'), box = svg.getBoundingClientRect();
              return [figure.id, box.width, box.height, svg.querySelectorAll('path').length,
                      svg.querySelectorAll('text').length];
            });""")
        browser.set_window_size(1200, browser.execute_script("return document.body.scrollHeight") + 100)
        screenshot = os.path.join(ARTIFACTS, "insight-report.png")
        assert browser.save_screenshot(screenshot)
        errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert [name for name, *_ in drawn] == CHARTS
    for name, width, height, paths, texts in drawn:
        assert width > 400 and height > 150 and paths > 10 and texts > 3, name
    assert errors == []
    assert os.path.getsize(screenshot) > 50000


def test_a_day_of_runs_is_drawn_per_run_with_the_gate_in_view(tmp_path):
    """Before: a history of one day was drawn per week and per day (a point each), the page showed neither each
    run's outcome nor the held-back releases, a quarantined test that failed at its last runs looked like any flaky
    test, and the page was readable by its owner alone (0600)."""
    records = generate(HistoryShape(runs=24, targets=40, days=1, first_day="2026-11-02", improved_from="2026-11-03"))
    release, test = records[0]["targets"]["labels"][0], records[0]["targets"]["labels"][-1]
    reason = "held back (gate all): 1 test of the run did not pass: {} failed (quarantined)".format(test)
    for number, record in enumerate(records[-3:]):  # the test fails every attempt at three commits; broken at the last
        targets = record["targets"]
        last = len(targets["labels"]) - 1
        statuses = list(targets["statuses"])
        statuses[0], statuses[last] = "H", "F"
        targets["statuses"] = "".join(statuses)
        targets["quarantined"] = targets["quarantined"][:last] + ("0" if number == 2 else "1")
        targets["finished_at"].pop("0", None)
        targets["reasons"] = {"0": reason}
        record.update(command="ci", exit_code=1 if number == 2 else 0)
    write_history(records, str(tmp_path / "history"))
    out, charts = tmp_path / "day.html", tmp_path / "charts"
    result = subprocess.run([sys.executable, ENTRY, "insight", "--history", "file://{}".format(tmp_path / "history"),
                             "--since", "2026-11-02", "--until", "2026-11-03", "--out", str(out), "--json",
                             str(tmp_path / "day.json"), "--charts", str(charts)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.load(open(tmp_path / "day.json"))
    assert figures["periods"] == ["run"] and len(figures["per_run"]) == 24
    assert [r["red"] for r in figures["outcomes"]["per_run"]] == [r["exit_code"] != 0 for r in records]
    assert len(figures["outcomes"]["failure_rate"]) == 24
    held = figures["outcomes"]["held_back"]
    assert held["releases"] == 3 and [(h["release"], h["reason"]) for h in held["recent"]] == [(release, reason)] * 3
    shown = {t["label"]: t for t in figures["flaky"]["tests"]}[test]
    assert shown["broken"] and shown["failing_at_last_runs"] == 3 and not shown["quarantined"]
    assert "outcomes: " in result.stdout and "failed every attempt at their last runs: " + test in result.stdout
    drawn_files = sorted(os.listdir(charts))
    assert {"run-outcomes.svg", "failure-rate.svg", "wall-time-per-run.svg", "cache-hit-rate.svg"} <= set(drawn_files)
    assert not {"percentiles-per-day.svg", "percentiles-per-week.svg", "slowest-trend.svg"} & set(drawn_files)
    for path in [out, tmp_path / "day.json"] + [charts / name for name in drawn_files]:
        assert os.stat(path).st_mode & 0o777 == 0o644, path  # world-readable, whatever mkstemp made
    with chromium() as browser:
        browser.get("file://{}".format(out))
        drawn = browser.execute_script("""
            return Array.from(document.querySelectorAll('figure.chart')).map(figure => {
              const box = figure.querySelector('svg').getBoundingClientRect();
              return [figure.id, box.width, box.height];
            });""")
        rows = browser.execute_script("""
            return Array.from(document.querySelectorAll('tr.red')).map(row =>
              [row.cells[0].textContent, getComputedStyle(row.cells[0]).color]);""")
        errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert [name for name, *_ in drawn][:3] == ["run-outcomes", "failure-rate", "wall-time-per-run"]
    assert all(width > 400 and height > 150 for _, width, height in drawn)
    assert (test, "rgb(176, 0, 32)") in [tuple(row) for row in rows]  # the broken test, in red
    assert len(rows) == 4 and sum(row[0].startswith("2026-11-02 ") for row in rows) == 3  # three held back, one test
    assert errors == []
