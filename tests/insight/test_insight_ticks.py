"""`releasekit insight` on a few minutes of runs: held-back releases are not runs of the slowest targets, and the
per-run charts' time axes never repeat a label."""

import json
import os
import re
import subprocess
import sys

from helpers.run_history import HistoryShape, generate, write_history
from helpers.servers import REPO_ROOT

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")


def tick_labels(svg):
    """The x axis' tick labels of a matplotlib SVG (text kept as text)."""
    return re.findall(r'<g id="xtick_\d+">.*?<text [^>]*>([^<]*)</text>', svg, flags=re.DOTALL)


def test_held_back_releases_are_not_runs_and_tick_labels_do_not_repeat(tmp_path):
    """Before: a release held back in 4 of 8 runs was counted 8 runs of it (its mean halved), and per-run charts of
    runs seconds apart labelled their ticks `12:23 12:23 12:23 12:24`."""
    records = generate(HistoryShape(runs=8, targets=10, days=0.003, first_day="2026-11-02",
                                    improved_from="2026-11-03"))
    release = records[0]["targets"]["labels"][0]
    for record in records[::2]:
        targets = record["targets"]
        targets["statuses"] = "H" + targets["statuses"][1:]
        targets["seconds"][0] = 0.0
        targets["finished_at"].pop("0", None)
        targets["reasons"] = {"0": "held back (gate all): 1 test of the run did not pass: //t:t_test failed"}
    write_history(records, str(tmp_path / "history"))
    charts = tmp_path / "charts"
    result = subprocess.run([sys.executable, ENTRY, "insight", "--history", "file://{}".format(tmp_path / "history"),
                             "--since", "2026-11-02", "--until", "2026-11-03", "--out", str(tmp_path / "page.html"),
                             "--json", str(tmp_path / "figures.json"), "--charts", str(charts)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.load(open(tmp_path / "figures.json"))
    published = [r["targets"]["seconds"][0] for r in records[1::2]]
    shown = {t["label"]: t for t in figures["slowest_targets"]}[release]
    assert shown["runs"] == 4 and abs(shown["mean_seconds"] - sum(published) / 4) < 0.01
    for name in ("run-outcomes.svg", "failure-rate.svg", "wall-time-per-run.svg"):
        labels = tick_labels((charts / name).read_text())
        assert len(labels) >= 3 and len(set(labels)) == len(labels), (name, labels)
