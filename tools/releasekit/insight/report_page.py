"""The insight page: one self-contained HTML file, charts drawn by matplotlib as inline SVG, no script, no network."""

import datetime
import html
import io
import re

import matplotlib
from matplotlib.figure import Figure

from releasekit.insight.gate_figures import ROLLING

_STYLE = """body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.9em}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right}figure.chart{margin:1em 0}figure.chart svg{max-width:100%;height:auto}
.note{color:#666;font-size:.9em}tr.red td{color:#b00020;font-weight:bold}
span.red{color:#b00020}span.green{color:#1a7f37}"""
_GREEN, _RED = "#2ca02c", "#d62728"
_COLOURS = {"p50": "#1f77b4", "p90": "#ff7f0e", "p99": "#d62728"}


def render(figures):
    """The page, as text."""
    unit, scale = ("minutes", 60.0) if figures["wall_seconds"].get("p50", 0) >= 120 else ("seconds", 1.0)
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>releasekit insight</title>",
             "<style>{}</style></head><body>".format(_STYLE),
             "<h1>CI runs: {}</h1>".format(html.escape(figures["history"])),
             "<p class='note'>{} runs{}, generated {}.</p>".format(
                 figures["runs"], " from {} to {}".format(*figures["window"]) if figures["window"] else "",
                 figures["generated"])]
    if figures["runs"]:
        parts += _outcomes(figures)
        parts += _wall_time(figures, unit, scale)
    parts += _held_back(figures)
    parts += _targets(figures)
    parts += _flaky(figures)
    parts += _lead_time(figures, unit, scale)
    parts += _critical_paths(figures)
    parts += _cpu(figures)
    if figures["skipped_objects"]:
        parts.append("<h2>Skipped objects</h2><p>Objects in the history that are not run records this releasekit "
                     "reads:</p>")
        parts.append(_table(["object", "why"], [[s["object"], s["why"]] for s in figures["skipped_objects"]]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _wall_time(figures, unit, scale):
    wall = figures["wall_seconds"]
    parts = ["<h2>Run wall time</h2>", "<p>P50 {}, P90 {}, P99 {} over the window.</p>".format(
        *(_duration(wall["p{}".format(p)]) for p in (50, 90, 99)))]
    for period in figures["periods"]:
        if period == "run":  # a window of a day or less: each run, at its time of day
            runs = figures["per_run"]
            chart = _chart("wall-time-per-run", "Wall time of each run, {}".format(unit))
            chart.axes.plot(_times(runs), [r["wall_seconds"] / scale for r in runs], marker="o", color=_COLOURS["p50"])
            _time_axis(chart.axes)
            chart.axes.set_ylabel(unit)
            parts.append(chart.svg("Wall time of each run"))
            continue
        rows = figures["per_" + period]
        chart = _chart("percentiles-per-" + period, "Wall time per {}, {}".format(period, unit))
        axes = chart.axes
        for key, colour in _COLOURS.items():
            axes.plot([r[period] for r in rows], [r[key] / scale for r in rows], marker="o", color=colour,
                      label=key.upper())
        axes.set_ylabel(unit)
        axes.legend()
        axes.tick_params(axis="x", labelrotation=45)
        parts.append(chart.svg("P50, P90 and P99 of run wall time per {}".format(period)))
    parts += _per_command(figures, unit, scale)
    split = figures["before_after"]
    chart = _chart("histogram", "Distribution of run wall time, {}".format(unit))
    if split and "before_walls" in split:
        bins = [edge / scale for edge in figures["histogram"]["edges"]]
        chart.axes.hist([w / scale for w in split["before_walls"]], bins=bins, alpha=.6,
                        label="before " + split["split"])
        chart.axes.hist([w / scale for w in split["after_walls"]], bins=bins, alpha=.6, label="from " + split["split"])
        chart.axes.legend()
    else:
        histogram = figures["histogram"]
        chart.axes.stairs(histogram["counts"], [e / scale for e in histogram["edges"]], fill=True)
    chart.axes.set_xlabel(unit)
    chart.axes.set_ylabel("runs")
    parts.append(chart.svg("Histogram of run wall time over the window"))
    if split and "before" in split:
        chart = _chart("before-after", "Before and from {} ({})".format(split["split"], split["at"]))
        keys = ["p50", "p90", "p99"]
        positions = range(len(keys))
        chart.axes.bar([p - .2 for p in positions], [split["before"].get(k, 0) / scale for k in keys], .4,
                       label="before")
        chart.axes.bar([p + .2 for p in positions], [split["after"].get(k, 0) / scale for k in keys], .4, label="after")
        chart.axes.set_xticks(list(positions), [k.upper() for k in keys])
        chart.axes.set_ylabel(unit)
        chart.axes.legend()
        parts.append(chart.svg("P50, P90 and P99 before and after"))
        parts.append("<p>Before: {} runs; after: {} runs. Ratios before/after: {}.</p>".format(
            split["before"]["runs"], split["after"]["runs"], ", ".join(
                "{} {}x".format(k.upper(), split.get(k + "_ratio", "-")) for k in keys)))
    elif split:
        parts.append("<p>No before/after comparison at {}: {}.</p>".format(html.escape(split["at"]), split["error"]))
    return parts


def _per_command(figures, unit, scale):
    """Runs of different commands (ci and pr; or the arms of a replay) side by side, when there are several."""
    groups = figures["per_command"]
    if len(groups) < 2:
        return []
    parts = ["<h3>By command</h3>", _table(["command", "runs", "P50", "P90", "P99"], [
        [g["command"], g["runs"], _duration(g["p50"]), _duration(g["p90"]), _duration(g["p99"])] for g in groups])]
    chart = _chart("per-command", "P50 and P90 of run wall time per command, {}".format(unit))
    width = 0.8 / len(groups)
    for number, group in enumerate(groups):
        chart.axes.bar([p + (number - (len(groups) - 1) / 2) * width for p in (0, 1)],
                       [group["p50"] / scale, group["p90"] / scale], width, label=group["command"])
    chart.axes.set_xticks([0, 1], ["P50", "P90"])
    chart.axes.set_ylabel(unit)
    chart.axes.legend()
    parts.append(chart.svg("P50 and P90 per command, side by side"))
    chart = _chart("per-command-distribution", "Distribution of run wall time per command, {}".format(unit))
    chart.axes.hist([[w / scale for w in g["walls"]] for g in groups], bins=20, label=[g["command"] for g in groups])
    chart.axes.set_xlabel(unit)
    chart.axes.set_ylabel("runs")
    chart.axes.legend()
    parts.append(chart.svg("Distribution of run wall time per command"))
    return parts


def _targets(figures):
    parts = ["<h2>Slowest targets</h2>"]
    slowest = figures["slowest_targets"]
    if not slowest:
        return parts + ["<p>No target ran in the window.</p>"]
    parts.append(_table(["target", "runs (executed)", "mean"],
                        [[t["label"], t["runs"], _duration(t["mean_seconds"])] for t in slowest]))
    if "week" not in figures["periods"]:  # a trend of one or two weekly points says nothing
        parts.append("<p class='note'>The window is shorter than two weeks: no weekly trend.</p>")
        return parts + _cache(figures)
    chart = _chart("slowest-trend", "Mean duration per week of the five slowest targets, seconds")
    for target in slowest[:5]:
        chart.axes.plot([t["week"] for t in target["trend"]], [t["mean_seconds"] for t in target["trend"]], marker="o",
                        label=target["label"])
    chart.axes.legend(fontsize="small")
    chart.axes.tick_params(axis="x", labelrotation=45)
    parts.append(chart.svg("Trend of the slowest targets"))
    return parts + _cache(figures)


def _cache(figures):
    cache = figures["cache"]
    parts = ["<h2>Cache</h2>"]
    if not cache["tests"]:
        return parts + ["<p>No test result says whether it came from a cache.</p>"]
    parts.append("<p>{} of {} test results came from a cache ({:.1%}).</p>".format(cache["cached"], cache["tests"],
                                                                                    cache["hit_rate"]))
    per_run = figures["periods"] == ["run"]
    chart = _chart("cache-hit-rate", "Test cache hit rate per {}".format("run" if per_run else "day"))
    if per_run:
        chart.axes.plot(_times(cache["per_run"]), [r["hit_rate"] * 100 for r in cache["per_run"]], marker="o")
        _time_axis(chart.axes)
    else:
        chart.axes.plot([d["day"] for d in cache["per_day"]], [d["hit_rate"] * 100 for d in cache["per_day"]],
                        marker="o")
        chart.axes.tick_params(axis="x", labelrotation=45)
    chart.axes.set_ylim(0, 100)
    chart.axes.set_ylabel("% of test results")
    parts.append(chart.svg("Cache hit rate per {}".format("run" if per_run else "day")))
    return parts


def _flaky(figures):
    flaky = figures["flaky"]
    parts = ["<h2>Flaky and quarantined tests</h2>", "<p>Over each test's own last {} CI runs (pull requests and runs "
             "of uncommitted trees do not count). A flake: failed, then passed on a retry, or failed where it also "
             "passed with the same tree, Bazel flags and platform. A test that failed every attempt at its last runs "
             "is shown in red: quarantine keeps the run green, not the test.</p>".format(flaky["window_runs"])]
    if not flaky["tests"]:
        return parts + ["<p>No test flaked or was quarantined.</p>"]
    rows = [[t["label"], t["runs"], t["flakes"], "{:.0%}".format(t["flake_rate"]),
             "broken: out of quarantine" if t["broken"] else "quarantined" if t["quarantined"] else "not quarantined",
             ", ".join(t["last_statuses"]), t["decision"],
             ", ".join("{} ({}, {} attempts)".format(e["run"][:12], e["status"], e["attempts"]) for e in t["evidence"])]
            for t in flaky["tests"]]
    parts.append(_table(["test", "runs", "flakes", "rate", "quarantine", "last runs", "why", "runs that show it"], rows,
                        red=[t["failing_at_last_runs"] > 0 for t in flaky["tests"]]))
    shown = [t for t in flaky["tests"] if t["flakes"]][:15][::-1]
    if not shown:
        return parts
    chart = _chart("flake-rate", "Flake rate of the flakiest tests, %")
    chart.axes.barh([t["label"] for t in shown], [t["flake_rate"] * 100 for t in shown])
    parts.append(chart.svg("Flake rate per test"))
    return parts


def _lead_time(figures, unit, scale):
    lead = figures["lead_time"]
    parts = ["<h2>Release lead time</h2>", "<p>From the commit's time to the release's publication.</p>"]
    if not lead:
        return parts + ["<p>No release was published in the window.</p>"]
    parts.append(_table(["release", "published", "P50", "max"],
                        [[r["release"], r["published"], _duration(r["p50_seconds"]), _duration(r["max_seconds"])]
                         for r in lead]))
    chart = _chart("lead-time", "Release lead time (P50), {}".format(unit))
    shown = lead[:15][::-1]
    chart.axes.barh([r["release"] for r in shown], [r["p50_seconds"] / scale for r in shown])
    parts.append(chart.svg("Release lead time per release"))
    return parts


def _critical_paths(figures):
    paths = figures["critical_paths"]
    parts = ["<h2>Critical path of the slowest runs</h2>"]
    if not paths:
        return parts + ["<p>No run recorded Bazel's profile: run with --profile.</p>"]
    for path in paths:
        parts.append("<h3>run {} ({}), {}</h3>".format(path["run"][:12], html.escape(str(path["commit"])[:12]),
                                                       _duration(path["wall_seconds"])))
        parts.append(_table(["critical path step", "seconds"], path["critical_path"]))
    return parts


def _cpu(figures):
    """CPU per run and per release, where the runs measured it (older records did not)."""
    cpu = figures.get("cpu") or {}
    parts = ["<h2>CPU</h2>"]
    if not cpu.get("runs") and not cpu.get("targets"):
        return parts + ["<p>No run in the window measured its CPU.</p>"]
    groups = cpu.get("per_command", [])
    if groups:
        parts.append("<p>{} of {} runs measured their CPU (releasekit's processes and the Bazel servers they used): "
                     "P50 {}, P90 {} per run.</p>".format(cpu["runs"], figures["runs"], _duration(cpu["p50_seconds"]),
                                                         _duration(cpu["p90_seconds"])))
        parts.append(_table(["command", "runs", "P50", "P90", "releasekit (mean)", "Bazel servers (mean)",
                             "cores busy"], [[g["command"], g["runs"], _duration(g["p50_seconds"]),
                                              _duration(g["p90_seconds"]), _optional(g["mean_releasekit_seconds"]),
                                              _optional(g["mean_bazel_seconds"]), g["cores_busy"]] for g in groups]))
        chart = _chart("cpu-per-run", "CPU seconds per run, P50 and P90 per command")
        width = 0.8 / len(groups)
        for number, group in enumerate(groups):
            chart.axes.bar([p + (number - (len(groups) - 1) / 2) * width for p in (0, 1)],
                           [group["p50_seconds"], group["p90_seconds"]], width, label=group["command"])
        chart.axes.set_xticks([0, 1], ["P50", "P90"])
        chart.axes.set_ylabel("CPU seconds")
        chart.axes.legend()
        parts.append(chart.svg("CPU seconds per run, per command"))
    if cpu.get("targets"):
        parts.append("<p>The releases that cost the most CPU (their process and its children, per run):</p>")
        parts.append(_table(["target", "runs", "mean CPU"], [[t["label"], t["runs"], _duration(t["mean_cpu_seconds"])]
                                                             for t in cpu["targets"]]))
    return parts


def _optional(seconds):
    return "-" if seconds is None else _duration(seconds)


class _chart:
    """One figure: axes to draw on, then svg() gives it as an inline <figure>."""

    def __init__(self, name, title):
        self.name = name
        self.figure = Figure(figsize=(9, 3.6), layout="constrained")
        self.axes = self.figure.subplots()
        self.axes.set_title(title)
        self.axes.grid(alpha=.3)

    def svg(self, caption):
        buffer = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": self.name}):
            self.figure.savefig(buffer, format="svg", metadata={"Date": None})
        text = buffer.getvalue()
        svg = re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.DOTALL)
        return "<figure class='chart' id='{}'>{}<figcaption>{}</figcaption></figure>".format(
            self.name, svg, html.escape(caption))


def _table(header, rows, red=None):
    """red: per row, whether it is drawn in red."""
    def cells(row, tag):
        return "".join("<{0}{1}>{2}</{0}>".format(tag, " class='n'" if isinstance(v, (int, float)) else "",
                                                  html.escape(str(v))) for v in row)

    red = red or [False] * len(rows)
    return "<table><tr>{}</tr>{}</table>".format(cells(header, "th"), "".join(
        "<tr{}>{}</tr>".format(" class='red'" if is_red else "", cells(row, "td")) for row, is_red in zip(rows, red)))


def _duration(seconds):
    return "{:.1f} min".format(seconds / 60) if seconds >= 120 else "{:.1f} s".format(seconds)


def _outcomes(figures):
    """Each run green or red, and the failure rate over time: per run (rolling) in a window of a day, else per day."""
    outcomes = figures["outcomes"]
    parts = ["<h2>Run outcomes</h2>", "<p><span class='green'>{} green</span>, <span class='red'>{} red</span> of {} "
             "runs (red: the run failed: a test or release that is not quarantined failed, or the tests' outcome was "
             "unknown).</p>".format(outcomes["runs"] - outcomes["red"], outcomes["red"], outcomes["runs"])]
    chart = _chart("run-outcomes", "Outcome of each run" if outcomes["granularity"] == "run" else "Runs per day")
    if outcomes["granularity"] == "run":  # one bar per run, in order, labelled with its start time
        runs = outcomes["per_run"]
        chart.axes.bar(range(len(runs)), [1] * len(runs), width=0.8, color=[_RED if r["red"] else _GREEN for r in runs])
        chart.axes.set_yticks([])
        ticks = _clock_ticks([r["start"] for r in runs], list(range(0, len(runs), max(1, len(runs) // 12))))
        chart.axes.set_xticks(list(ticks), list(ticks.values()))
        chart.axes.set_xlabel("run (start, UTC)")
    else:
        days = [d["day"] for d in outcomes["failure_rate"]]
        green = [d["runs"] - d["red"] for d in outcomes["failure_rate"]]
        chart.axes.bar(days, green, color=_GREEN, label="green")
        chart.axes.bar(days, [d["red"] for d in outcomes["failure_rate"]], bottom=green, color=_RED, label="red")
        chart.axes.set_ylabel("runs")
        chart.axes.legend()
        chart.axes.tick_params(axis="x", labelrotation=45)
    parts.append(chart.svg("Green and red runs"))
    per_run = outcomes["granularity"] == "run"
    chart = _chart("failure-rate", "Failure rate, % of runs{}".format(
        " (of the last {} at each run)".format(ROLLING) if per_run else " per day"))
    rates = outcomes["failure_rate"]
    chart.axes.plot(_times(rates) if per_run else [r["day"] for r in rates],
                    [r["failure_rate"] * 100 for r in rates], marker="o", color=_RED)
    chart.axes.set_ylim(0, 100)
    chart.axes.set_ylabel("% red")
    if per_run:
        _time_axis(chart.axes)
    else:
        chart.axes.tick_params(axis="x", labelrotation=45)
    parts.append(chart.svg("Failure rate over time"))
    return parts


def _held_back(figures):
    held = figures["outcomes"]["held_back"]
    parts = ["<h2>Held-back releases</h2>", "<p>Releases the gate kept from publishing (a test that did not pass, an "
             "unknown test outcome) or that waited on a dependency release that did not publish: {} in {} runs of the "
             "window.</p>".format(held["releases"], held["runs"])]
    if not held["recent"]:
        return parts
    rows = [[_date(h["start"]).strftime("%Y-%m-%d %H:%M"), h["run"][:12], (h["commit"] or "?")[:12], h["release"],
             h["reason"]] for h in held["recent"]]
    return parts + [_table(["run started (UTC)", "run", "commit", "release", "why it was held back"], rows,
                           red=[True] * len(rows))]


def _date(timestamp):
    return datetime.datetime.fromtimestamp(float(timestamp), datetime.timezone.utc).replace(tzinfo=None)


def _times(rows):
    return [_date(row["start"]) for row in rows]


def _time_axis(axes):
    """Ticks as far apart as the runs are: to the second when they are seconds apart (a fixed %H:%M repeated)."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
        locator, formats=["%Y", "%b", "%d", "%H:%M", "%H:%M", "%H:%M:%S"],
        offset_formats=["", "%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d"]))
    axes.set_xlabel("time of day (UTC)")


def _clock_ticks(starts, indices):
    """{index: label} of the runs at indices, by start time: to the minute, or to the second when two would read the
    same; a tick that would repeat the one before it is left out."""
    for pattern in ("%H:%M", "%H:%M:%S"):
        labels = [_date(starts[i]).strftime(pattern) for i in indices]
        if len(set(labels)) == len(labels):
            break
    ticks = {}
    for index, label in zip(indices, labels):
        if label not in ticks.values():
            ticks[index] = label
    return ticks
