"""The figures section of docs/benchmarks.md, as Markdown, from the results files of each mode (results.py)."""

from replay.arms import ARMS
from replay.timeline import PHASES

ONE, TWO, THREE = ARMS
RATIOS = [("p50_arm1", "arm 1 / arm 3 at P50"), ("p90_arm1", "arm 1 / arm 3 at P90"),
          ("p50_arm2", "arm 2 / arm 3 at P50"), ("p90_arm2", "arm 2 / arm 3 at P90")]
TITLES = {"cold": "Fresh agents (`--agents cold`)", "warm": "Persistent agents (`--agents warm`)"}


def markdown(results):
    if not results:
        return ("No results file is committed yet. `python3 benchmarks/ci_replay.py --agents cold --repeat 3` and "
                "`--agents warm --repeat 3`, on a quiet machine, write `docs/ci-replay/cold/results.json` and "
                "`docs/ci-replay/warm/results.json`, and this section is rendered from them.\n")
    parts = []
    for mode in ("cold", "warm"):
        if mode in results:
            parts.append(_mode(mode, results[mode]))
    return "\n".join(parts)


def _spread(entry, unit=""):
    if entry["min"] == entry["max"]:
        return "{}{}".format(_n(entry["median"]), unit)
    return "{}{} ({}–{})".format(_n(entry["median"]), unit, _n(entry["min"]), _n(entry["max"]))


def _n(value):
    return "{:.2f}".format(value) if isinstance(value, float) else str(value)


def _mb(count):
    return "{:.1f} MB".format(count / 1e6) if count >= 1e5 else "{:.0f} kB".format(count / 1e3)


QUIET_SHARE = 0.1  # other work may take this share of the machine's CPU capacity in a quiet run


def _load_at_end(machine):
    """How busy the machine was as the run ended (its 15-minute load average), and what that says of the figures.
    The replay's own work (Bazel servers with eight jobs, registries, stores) keeps the load average between 4 and 7
    on 2 cores with nothing else running, so the load cannot tell other work apart; the CPU other processes took while
    the run went on (others_cpu_share: the machine's busy time less the replay's own) can. A run is called shared
    when the load was above the cores before it began, or other work took more than a tenth of the CPUs meanwhile
    (runs that predate that measure are judged by how they began)."""
    load = (machine.get("load_average_at_end") or [None, None, None])[2]
    if load is None:
        return ""
    before = (machine.get("load_average_at_start") or [0.0])[0]
    share = machine.get("others_cpu_share")
    busy = before > machine["cores"] or (share is not None and share > QUIET_SHARE)
    said = "" if share is None else ", other work {:.0%} of the CPUs".format(share)
    return " and {} over its last 15 minutes{}{}".format(
        load, said, " (other work shared the machine during the run: not a quiet run)" if busy else "")


def _mode(mode, r):
    run, headline = r["run"], r["headline"]
    lines = ["### {}".format(TITLES[mode]), ""]
    lines.append("Seed {seed}, {services} services, {commits} commits, {workers} workers, {repeats} run{s} of the same "
                 "seed; the generated repository holds {releases} CI releases and {tests} tests (`bazel query`). "
                 "releasekit {commit}{dirty}, {date}, {minutes} minutes, on {cores} cores ({cpu}), {memory} GiB, "
                 "load average {load} when it began{ended}.".format(
                     seed=run["seed"], services=run["services"], commits=run["commits"], workers=run["workers"],
                     repeats=run["repeats"], s="" if run["repeats"] == 1 else "s", releases=run["ci_releases"],
                     tests=run["tests"], commit=r["source"]["commit"][:12],
                     dirty=" with uncommitted changes" if r["source"]["uncommitted_changes"] else "", date=r["date"],
                     minutes=run["minutes"], cores=r["machine"]["cores"], cpu=r["machine"]["cpu"] or "?",
                     memory=r["machine"]["memory_gib"], load=r["machine"]["load_average_at_start"][0],
                     ended=_load_at_end(r["machine"])))
    lines += ["", "Wall time per commit, median over the runs (lowest–highest run in brackets):", "",
              "| arm | P50 | P90 |", "|---|---|---|"]
    for arm in ARMS:
        p = headline["percentiles"][arm]
        lines.append("| {} | {} | {} |".format(arm, _spread(p["p50"], " s"), _spread(p["p90"], " s")))
    lines += ["", "| ratio | value | target |", "|---|---|---|"]
    targets = {key: (least, met) for key, least, _, met in r["targets"]}
    for key, name in RATIOS:
        target = targets.get(key)
        lines.append("| {} | {} | {} |".format(name, _spread(headline["ratios"][key]),
                                              "≥ {} ({})".format(target[0], "met" if target[1] else "not met")
                                              if target else "-"))
    lines.append("| missed selections | {} | 0 ({}) |".format(headline["missed"],
                                                             "met" if headline["missed"] == 0 else "not met"))
    lines += ["", _costs(r["repeats"][0]["costs"]), _phases(r), _per_kind(r["repeats"][0]["per_kind"])]
    if r.get("footprint"):
        lines.append(_footprint(r["footprint"]))
    if r.get("shards"):
        lines.append(_shards(r["shards"]))
    return "\n".join(lines)


def _costs(costs):
    lines = ["What a commit costs each arm (the first run; CPU of every process the arm started and of its Bazel "
             "servers; peak resident memory of its Bazel server and of its largest other process):", "",
             "| arm | CPU per commit (P50) | CPU per wall second | cache pulled | cache pushed | pushed to registry "
             "| pushed to stores | Bazel server peak (P50) | largest other process |",
             "|---|---|---|---|---|---|---|---|---|"]
    for arm in ARMS:
        c = costs.get(arm)
        if c:
            lines.append("| {} | {:.1f} s | {:.2f} | {} | {} | {} | {} | {} MB | {} MB |".format(
                arm, c["cpu_seconds_p50"], c["cpu_per_wall_second"], _mb(c["cache_pulled_bytes_mean"]),
                _mb(c["cache_pushed_bytes_mean"]), _mb(c["registry_pushed_bytes_mean"]),
                _mb(c["store_pushed_bytes_mean"]), c["bazel_server_peak_mb_p50"], c["other_peak_mb_max"]))
    return "\n".join(lines) + "\n"


def _phases(r):
    per_kind = r["repeats"][0]["per_kind"]
    shown = [kind for kind, entry in per_kind.items() if entry.get("arm3_phases")]
    lines = ["Where arm 3's time goes, per change kind (mean seconds per commit, the first run):", "",
             "| change kind | " + " | ".join(PHASES) + " | wall |", "|---|" + "---|" * (len(PHASES) + 1)]
    for kind in shown:
        phases = per_kind[kind]["arm3_phases"]
        lines.append("| {} | {} | {:.2f} |".format(kind, " | ".join("{:.2f}".format(phases[p]) for p in PHASES),
                                                   per_kind[kind][THREE]))
    lines += ["", _explanation(r)]
    return "\n".join(lines) + "\n"


def _explanation(r):
    """What sets arm 3's P50 and P90: the change kinds of the commits at those ranks, and their largest phases."""
    texts = []
    for name, kinds in (("P50", r.get("arm3_at_p50", [])), ("P90", r.get("arm3_at_p90", []))):
        if not kinds:
            continue
        per_kind = r["repeats"][0]["per_kind"]
        described = []
        for kind in kinds:
            phases = per_kind.get(kind, {}).get("arm3_phases")
            if not phases:
                continue
            top = [(phase, seconds) for phase, seconds in sorted(phases.items(), key=lambda item: -item[1])[:3]
                   if seconds >= 0.05]
            described.append("{} ({} s: {})".format(kind, _n(per_kind[kind][THREE]), ", ".join(
                "{} {:.1f} s".format(phase, seconds) for phase, seconds in top)))
        texts.append("Arm 3's {} is set by the commits around that rank: {}.".format(name, "; ".join(described)))
    return " ".join(texts)


def _per_kind(per_kind):
    lines = ["Wall time per change kind (mean seconds per commit, the first run; the last column counts arm 3's "
             "commits whose collect read a recorded target graph):", "",
             "| change kind | commits | arm 1 | arm 2 | arm 3 | arm 3: tests run | arm 3: releases | graph read |",
             "|---|---|---|---|---|---|---|---|"]
    for kind, e in per_kind.items():
        lines.append("| {} | {} | {:.1f} s | {:.1f} s | {:.1f} s | {} | {} | {} |".format(
            kind, e["commits"], e[ONE], e[TWO], e[THREE], e["tests_run"], e["releases"], e["graph_read"]))
    return "\n".join(lines) + "\n"


def _footprint(footprint):
    lines = ["What each persistent agent kept after each commit (the first run): Bazel servers running, git "
             "worktrees, base checkouts, bytes on disk (output base, home cache, checkout), releasekit's cache "
             "apart from its base checkout:", "",
             "| arm | servers (max) | worktrees (max) | base checkouts (max) | disk after the first commit | disk "
             "after the last | releasekit cache (max) | bounded |", "|---|---|---|---|---|---|---|---|"]
    for arm, f in footprint.items():
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            arm, f["servers_max"], f["worktrees_max"], f["base_checkouts_max"], _mb(f["disk_first"]),
            _mb(f["disk_last"]), _mb(f["releasekit_cache_max"]), "yes" if not f["problems"] else "; ".join(
                f["problems"])))
    return "\n".join(lines) + "\n"


def _shards(shards):
    lines = ["Scaling out: arm 3's slowest commit replayed as the pipeline `releasekit pipeline` writes, N test jobs "
             "then N release jobs, each alone on a fresh agent whose remote cache is as it was before the commit (run "
             "one after another here); the makespan is the slowest test job plus the slowest release job:", "",
             "| commit (kind) | 1 machine | 2 shards | 4 shards |", "|---|---|---|---|"]
    for s in shards:
        lines.append("| {} ({}) | {:.1f} s | {:.1f} s | {:.1f} s |".format(s["commit"], s["kind"], s["one_machine"],
                                                                        s["makespan_2"], s["makespan_4"]))
    return "\n".join(lines) + "\n"
