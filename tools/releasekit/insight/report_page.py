"""The insight page: one self-contained HTML file, charts drawn by matplotlib as inline SVG, no script, no network."""

import html
import io
import re

import matplotlib
from matplotlib.figure import Figure

_STYLE = """body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.9em}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right}figure.chart{margin:1em 0}figure.chart svg{max-width:100%;height:auto}
.note{color:#666;font-size:.9em}"""
_COLOURS = {"p50": "#1f77b4", "p90": "#ff7f0e", "p99": "#d62728"}


def render(figures):
    """The page, as text."""
    unit, scale = ("minutes", 60.0) if figures["wall_seconds"].get("p50", 0) >= 120 else ("seconds", 1.0)
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>releasekit insight</title>",
             "<style>{}</style></head><body>".format(_STYLE), "<h1>CI runs: {}</h1>".format(html.escape(figures["history"])),
             "<p class='note'>{} runs{}, generated {}.</p>".format(
                 figures["runs"], " from {} to {}".format(*figures["window"]) if figures["window"] else "",
                 figures["generated"])]
    if figures["runs"]:
        parts += _wall_time(figures, unit, scale)
    parts += _targets(figures)
    parts += _flaky(figures)
    parts += _lead_time(figures, unit, scale)
    parts += _critical_paths(figures)
    parts += _cpu(figures)
    if figures["skipped_objects"]:
        parts.append("<h2>Skipped objects</h2><p>Objects in the history that are not run records this releasekit reads:</p>")
        parts.append(_table(["object", "why"], [[s["object"], s["why"]] for s in figures["skipped_objects"]]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _wall_time(figures, unit, scale):
    wall = figures["wall_seconds"]
    parts = ["<h2>Run wall time</h2>", "<p>P50 {}, P90 {}, P99 {} over the window.</p>".format(
        *(_duration(wall["p{}".format(p)]) for p in (50, 90, 99)))]
    for period in ("week", "day"):
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
        chart.axes.hist([w / scale for w in split["before_walls"]], bins=bins, alpha=.6, label="before " + split["split"])
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
        chart.axes.bar([p - .2 for p in positions], [split["before"].get(k, 0) / scale for k in keys], .4, label="before")
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
    chart = _chart("slowest-trend", "Mean duration per week of the five slowest targets, seconds")
    for target in slowest[:5]:
        chart.axes.plot([t["week"] for t in target["trend"]], [t["mean_seconds"] for t in target["trend"]], marker="o",
                        label=target["label"])
    chart.axes.legend(fontsize="small")
    chart.axes.tick_params(axis="x", labelrotation=45)
    parts.append(chart.svg("Trend of the slowest targets"))
    cache = figures["cache"]
    parts.append("<h2>Cache</h2>")
    if not cache["tests"]:
        return parts + ["<p>No test result says whether it came from a cache.</p>"]
    parts.append("<p>{} of {} test results came from a cache ({:.1%}).</p>".format(cache["cached"], cache["tests"],
                                                                                    cache["hit_rate"]))
    chart = _chart("cache-hit-rate", "Test cache hit rate per day")
    chart.axes.plot([d["day"] for d in cache["per_day"]], [d["hit_rate"] * 100 for d in cache["per_day"]], marker="o")
    chart.axes.set_ylim(0, 100)
    chart.axes.set_ylabel("% of test results")
    chart.axes.tick_params(axis="x", labelrotation=45)
    parts.append(chart.svg("Cache hit rate per day"))
    return parts


def _flaky(figures):
    flaky = figures["flaky"]
    parts = ["<h2>Flaky tests</h2>", "<p>Over the last {} runs of the window. A flake: failed, then passed on a retry, or "
             "failed at a commit at which it also passed.</p>".format(flaky["window_runs"])]
    if not flaky["tests"]:
        return parts + ["<p>No test flaked.</p>"]
    rows = [[t["label"], t["runs"], t["flakes"], "{:.0%}".format(t["flake_rate"]),
             "quarantined" if t["quarantined"] else "not quarantined", t["decision"],
             ", ".join("{} ({}, {} attempts)".format(e["run"][:12], e["status"], e["attempts"]) for e in t["evidence"])]
            for t in flaky["tests"]]
    parts.append(_table(["test", "runs", "flakes", "rate", "auto quarantine", "why", "runs that show it"], rows))
    chart = _chart("flake-rate", "Flake rate of the flakiest tests, %")
    shown = flaky["tests"][:15][::-1]
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


def _table(header, rows):
    cells = lambda row, tag: "".join("<{0}{1}>{2}</{0}>".format(  # noqa: E731
        tag, " class='n'" if isinstance(v, (int, float)) else "", html.escape(str(v))) for v in row)
    return "<table><tr>{}</tr>{}</table>".format(cells(header, "th"), "".join(
        "<tr>{}</tr>".format(cells(row, "td")) for row in rows))


def _duration(seconds):
    return "{:.1f} min".format(seconds / 60) if seconds >= 120 else "{:.1f} s".format(seconds)
