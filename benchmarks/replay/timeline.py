"""Where a commit's wall time went, from what the run left behind: releasekit's own timestamps (the run report's
"timings": when the command began, then select, tests, gate, releases), Bazel's JSON trace profile of each invocation
(--profile: its build phase markers) and the Bazel server's own files (when it was launched and when it answered).

Phases, in seconds, summing to the commit's wall time:
  start-up            from the launch of the command to its first timestamp (interpreter, imports)
  server start        the workspace's Bazel server, from its launch to its first answer (a fresh agent's; a server of
                      the base revision is collect's)
  collect             the selection, less the server start it waited for (a base revision's server included)
  loading & analysis  Bazel's phases before execution (target patterns, loading, analysis), every invocation
  test execution      Bazel's execution phase (tests, and building what they and the releases need)
  releases            the gate's decision, then running the releases (and building any the tests' invocation did not)
  reports & history   after the releases: the run report, JUnit, the history record
  other               the rest: Bazel's client and finishing, reading build events, starting the fork server
"""

import glob
import json
import os

PHASES = ("start-up", "server start", "collect", "loading & analysis", "test execution", "releases",
          "reports & history", "other")


def bazel_phases(profile_path):
    """(launch, loading & analysis, execution) seconds of one invocation's profile, or None."""
    try:
        with open(profile_path) as handle:
            trace = json.load(handle)
    except (OSError, ValueError):
        return None
    events = trace.get("traceEvents", []) if isinstance(trace, dict) else trace
    markers = {e.get("name"): e for e in events if isinstance(e, dict) and e.get("cat") == "build phase marker"}
    if "Build artifacts" not in markers:
        return None
    launch = (markers.get("Launch Blaze") or {}).get("dur", 0) / 1e6
    execution_start = markers["Build artifacts"]["ts"]
    execution_end = (markers.get("Complete build") or markers.get("Finishing") or markers["Build artifacts"])["ts"]
    return launch, execution_start / 1e6, max(0, execution_end - execution_start) / 1e6


def server_start(agent_root, workspace, after, before):
    """Seconds the workspace's server took to start, if one was launched in [after, before): from the file of its
    command line to the port it answers on (both written by Bazel's client and server); else 0. A server of the base
    revision (collect's) is counted in collect."""
    wanted = b"--workspace_directory=" + os.path.realpath(workspace).encode()
    for server in glob.glob(os.path.join(agent_root, "*", "server")):
        try:
            with open(os.path.join(server, "cmdline"), "rb") as handle:
                if wanted not in handle.read().split(b"\0"):
                    continue
            launched = os.path.getmtime(os.path.join(server, "cmdline"))
            answered = os.path.getmtime(os.path.join(server, "command_port"))
        except OSError:
            continue
        if after <= launched < before:
            return answered - launched
    return 0.0


def arm3_phases(launched, ended, report, logs, agent_root, workspace):
    """{phase: seconds} of a `releasekit ci` run that began at launched and ended at ended (seconds since the epoch).
    report: its run report (a dict); logs: its log directory (the profiles)."""
    timings = report.get("timings") or {}
    wall = ended - launched
    started = timings.get("started", launched)
    select_end = started + timings.get("select", 0.0)
    spans = dict.fromkeys(PHASES, 0.0)
    spans["start-up"] = max(0.0, started - launched)
    in_collect = server_start(agent_root, workspace, started, select_end)
    in_bazel = server_start(agent_root, workspace, select_end, ended)
    spans["server start"] = in_collect + in_bazel
    spans["collect"] = max(0.0, timings.get("select", 0.0) - in_collect)
    for profile in sorted(glob.glob(os.path.join(logs, "bazel-*.profile.json"))):
        phases = bazel_phases(profile)
        if phases:
            _, loading, execution = phases
            spans["loading & analysis"] += loading
            spans["test execution"] += execution
    spans["releases"] = timings.get("gate", 0.0) + timings.get("releases", 0.0)
    done = started + sum(timings.get(phase, 0.0) for phase in ("select", "tests", "gate", "releases"))
    spans["reports & history"] = max(0.0, ended - done) if timings else 0.0
    spans["other"] = max(0.0, wall - sum(spans.values()))
    return {phase: round(seconds, 3) for phase, seconds in spans.items()}


def peer_phases(launched, tested, ended, profile, agent_root, workspace):
    """{phase: seconds} of a peer's run (`bazel test //...` from launched to tested, then the releases), in the same
    phases."""
    spans = dict.fromkeys(PHASES, 0.0)
    spans["server start"] = server_start(agent_root, workspace, launched, ended)
    phases = bazel_phases(profile)
    if phases:
        _, spans["loading & analysis"], spans["test execution"] = phases
    spans["releases"] = max(0.0, ended - tested)
    spans["other"] = max(0.0, ended - launched - sum(spans.values()))
    return {phase: round(seconds, 3) for phase, seconds in spans.items()}
