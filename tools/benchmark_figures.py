#!/usr/bin/env python3
"""Renders docs/benchmarks.md's figures of collect's corpus run and of provenance's cost from the results files their
scripts write and that are committed (docs/collect-corpus.json, docs/provenance-benchmark.json), and of lazy push and
fan-out (docs/lazy-push.json).

    python3 tools/benchmark_figures.py           # writes the sections between their markers
    python3 tools/benchmark_figures.py --check   # exit 1 when the page is not what the files say
"""

import argparse
import json
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(REPO_ROOT, "docs", "benchmarks.md")
CORPUS = os.path.join(REPO_ROOT, "docs", "collect-corpus.json")
PROVENANCE = os.path.join(REPO_ROOT, "docs", "provenance-benchmark.json")
LAZY_PUSH = os.path.join(REPO_ROOT, "docs", "lazy-push.json")


def begin(name):
    return "<!-- figures: {}, rendered by tools/benchmark_figures.py; do not edit -->".format(name)


def end(name):
    return "<!-- end of figures: {} -->".format(name)


def corpus_markdown(results):
    lines = ["From `docs/collect-corpus.json`: {} pairs of commits of {} (testdata {}, expectations {}), {} errors."
             .format(results["cases"], results["corpus"], results["testdata_commit"][:12],
                     results["expectations_commit"][:12], results["errors"]), "",
             "| measure | precision | recall | selected | expected | pairs with a miss | pairs with an extra |",
             "|---|---|---|---|---|---|---|"]
    for measure in ("tests", "targets"):
        row = results[measure]
        lines.append("| {} | {} ({} of {}) | {} | {} | {} | {} | {} |".format(
            measure, row["precision"], row["hits"], row["selected"], row["recall"], row["selected"], row["expected"],
            row["cases_missing"], row["cases_over"]))
    seconds = sorted(case["seconds"] for case in results["by_case"])
    lines += ["", "Collect took {:.0f} s over the {} pairs (median {:.1f} s a pair, at most {:.1f} s).".format(
        sum(seconds), len(seconds), seconds[len(seconds) // 2], seconds[-1])]
    return "\n".join(lines)


def provenance_markdown(results):
    lines = ["From `docs/provenance-benchmark.json`: {} samples per kind and arm, seed {}, commit {}, {} ({} CPUs)."
             .format(results["samples"], results["seed"], results["commit"][:12], results["date"], results["cpus"]),
             "", "| kind | requests without | with | added | ms without (median) | with | added |",
             "|---|---|---|---|---|---|---|"]
    for kind in ("image", "jar", "file", "deploy"):
        row = results["kinds"][kind]
        lines.append("| {} | {} | {} | {:+d} | {} | {} | {:+.1f} |".format(
            kind, row["without"]["requests"], row["with"]["requests"], row["added_requests"],
            row["without"]["median_ms"], row["with"]["median_ms"], row["added_ms"]))
    return "\n".join(lines)


def _size(count):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return "{:.{}f} {}".format(count / scale, 2 if unit == "GB" else 1, unit)
    return "{} B".format(count)


def _median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def lazy_push_markdown(results):
    figures = results["figures"]
    runs = results["runs"]
    image = "{} layers of {} MiB".format(figures["layers"], figures["layer_bytes"] // 2 ** 20)
    lines = ["From `docs/lazy-push.json`: commit {}, {}, seed {}, {} CPUs, load average {} at its start; {} samples of "
             "each case and mode, eager and lazy first in turn; medians. An image of {} of random bytes.".format(
                 results["commit"][:12], results["date"], results["seed"], results["cpus"],
                 " / ".join(str(load) for load in results["load_average_at_start"]), figures["samples"], image), "",
             "| case | eager | lazy | lazy / eager |", "|---|---|---|---|"]
    names = {"a": "(a) the registry has every layer", "b": "(b) it lacks one layer", "c": "(c) it lacks all"}
    ratios = {"a": "present_ratio", "b": "missing_one_ratio", "c": "missing_all_ratio"}
    for case in ("a", "b", "c"):
        lines.append("| {} | {} s | {} s | {} |".format(names[case], figures["eager_wall_seconds"][case],
                                                        figures["lazy_wall_seconds"][case], figures[ratios[case]]))
    eager_download = _median(run["downloaded_bytes"] for run in runs if run["mode"] == "eager")
    lines += ["", "In case (a) the lazy agent downloads {} (plan, manifests, config), the eager agent's build {} "
              "(median); the lazy agent leaves {} bytes of the layers' blobs in its output base, and its release's "
              "peak RSS is {}.".format(_size(figures["present_downloaded_bytes"]), _size(eager_download),
                           figures["lazy_layer_bytes_on_disk"], _size(figures["lazy_peak_rss_bytes"])), "",
              _fan_out_text(figures)]
    return "\n".join(lines)


def _fan_out_text(figures):
    if "fan_out_loopback_ratio" not in figures:  # a results file measured on loopback only
        return ("Fan-out: one release to a registry and 2 mirrors took {:.2f} s against {:.2f} s for 3 releases to one "
                "registry each (`fan_out_ratio` {}; the target was 0.5).".format(
                    figures["fan_out_seconds"], figures["sequential_seconds"], figures["fan_out_ratio"]))
    return ("Fan-out, each registry behind a link of {:g} MiB/s: one release to a registry and 2 mirrors took {:.2f} s "
            "against {:.2f} s for 3 releases to one registry each (`fan_out_ratio` {}; the target was 0.5). On "
            "loopback, the registries on this machine's cores and disk: {:.2f} s against {:.2f} s "
            "(`fan_out_loopback_ratio` {}).".format(
                figures["link_mib_per_second"], figures["fan_out_seconds"], figures["sequential_seconds"],
                figures["fan_out_ratio"], figures["fan_out_loopback_seconds"], figures["sequential_loopback_seconds"],
                figures["fan_out_loopback_ratio"]))


def sections():
    with open(CORPUS, encoding="utf-8") as handle:
        corpus = json.load(handle)
    with open(PROVENANCE, encoding="utf-8") as handle:
        provenance = json.load(handle)
    with open(LAZY_PUSH, encoding="utf-8") as handle:
        lazy_push = json.load(handle)
    return {"collect corpus": corpus_markdown(corpus), "provenance": provenance_markdown(provenance),
            "lazy push": lazy_push_markdown(lazy_push)}


def render(page):
    for name, markdown in sections().items():
        head, found, rest = page.partition(begin(name) + "\n")
        if not found:
            raise SystemExit("docs/benchmarks.md has no marker for the figures of {}".format(name))
        page = head + begin(name) + "\n" + markdown + "\n" + end(name) + rest.split(end(name), 1)[1]
    return page


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/benchmarks.md is stale")
    arguments = parser.parse_args(argv)
    with open(PAGE, encoding="utf-8") as handle:
        page = handle.read()
    rendered = render(page)
    if arguments.check:
        if rendered != page:
            print("docs/benchmarks.md is stale: run python3 tools/benchmark_figures.py", file=sys.stderr)
            return 1
        return 0
    with open(PAGE + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(rendered)
    os.replace(PAGE + ".tmp", PAGE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
