"""`releasekit insight`: read the history over a window, compute the figures, write the page and the JSON."""

import datetime
import os
import re

from releasekit.core.errors import ReleasekitError, UsageError
from releasekit.core.jsonio import write_atomic, write_json_atomic
from releasekit.insight.history import History
from releasekit.insight.statistics import Figures

DEFAULT_DAYS = 30
READABLE = 0o644  # the page, its figures and charts are for everyone who looks after CI: world-readable


def window(since, until, now=None):
    """[since, until) as UTC datetimes, from YYYY-MM-DD days; by default the last 30 days."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    end = _day(until, "--until") if until else (now + datetime.timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                                                          microsecond=0)
    start = _day(since, "--since") if since else end - datetime.timedelta(days=DEFAULT_DAYS + 1)
    if start >= end:
        raise UsageError("--since {} is not before --until {}: give a window of at least one day.".format(
            start.date(), end.date()))
    return start, end


def _day(text, option):
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        raise UsageError("{} '{}' is not a day; write it as YYYY-MM-DD.".format(option, text)) from None


def compute(settings, since=None, until=None, compare_at=None):
    """The figures of the runs in the window (a dict, as --json writes it). settings: the ci_runs.RunHistory."""
    if not settings.destination:
        raise UsageError("No run history to read: pass --history URL, or set `history:` in releasekit.yaml.")
    start, end = window(since, until)
    history = History(settings.open())
    try:
        names = history.names(start, end)
    except ReleasekitError as error:
        raise type(error)("Cannot read the run history at {}: {}".format(history.describe(), error)) from None
    figures = Figures(settings.auto_quarantine)
    for name, record, why in history.read(names):
        if record is None:
            figures.skip(name, why)
        elif not start.timestamp() <= record["start"] < end.timestamp():
            figures.skip(name, "started outside the day directory it is in")
        else:
            figures.add(record)
    result = figures.result(compare_at)
    result["history"] = history.describe()
    result["generated"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return result


def write_insight(settings, since, until, compare_at, html_path, json_path, charts_dir=None):
    """Write the page, the JSON, and each chart as its own SVG file (for a README); the lines to show."""
    figures = compute(settings, since, until, compare_at)
    skipped = len(figures["skipped_objects"])
    lines = ["{} run{} from {}{}".format(figures["runs"], "" if figures["runs"] == 1 else "s", figures["history"],
                                         ", {} objects skipped".format(skipped) if skipped else "")]
    wall = figures["wall_seconds"]
    if figures["runs"]:
        lines.append("wall time: P50 {p50:.1f}s  P90 {p90:.1f}s  P99 {p99:.1f}s".format(**wall))
    if figures["cpu"]["runs"]:
        lines.append("CPU per run: P50 {p50_seconds:.1f}s  P90 {p90_seconds:.1f}s ({runs} runs measured it)".format(
            **figures["cpu"]))
    if figures["runs"]:
        outcomes = figures["outcomes"]
        lines.append("outcomes: {} green, {} red; {} releases held back in {} runs".format(
            outcomes["runs"] - outcomes["red"], outcomes["red"], outcomes["held_back"]["releases"],
            outcomes["held_back"]["runs"]))
    failing = [t["label"] for t in figures["flaky"]["tests"] if t["failing_at_last_runs"]]
    if failing:
        lines.append("failed every attempt at their last runs: {}".format(", ".join(failing[:10])))
    for skipped in figures["skipped_objects"][:10]:
        lines.append("skipped {}: {}".format(skipped["object"], skipped["why"]))
    if json_path:
        write_json_atomic(json_path, figures, mode=READABLE)
        lines.append("json: " + json_path)
    if html_path or charts_dir:
        from releasekit.insight.report_page import render

        page = render(figures)
        if html_path:
            write_atomic(html_path, page, READABLE)
            lines.append("report: " + html_path)
        if charts_dir:
            os.makedirs(charts_dir, exist_ok=True)
            for name, svg in re.findall(r"<figure class='chart' id='([^']+)'>(<svg.*?</svg>)", page, re.DOTALL):
                write_atomic(os.path.join(charts_dir, name + ".svg"), svg, READABLE)
            lines.append("charts: " + charts_dir)
    return lines
