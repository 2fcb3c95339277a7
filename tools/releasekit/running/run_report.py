"""The run report: one Outcome per test and release of a run, written as JSON (the contract CI and the next run's
sharding read) and as JUnit XML, and summed up as the exit code and a table."""

import dataclasses
import os
import xml.etree.ElementTree as ElementTree

from releasekit.core.jsonio import write_atomic, write_json_atomic

REPORT_VERSION = 1
FAILED_STATES = ("failed", "build failed", "timeout", "refused")
PASSED_STATES = ("passed", "flaky")  # a test that passed, at once or on a retry
HELD_BACK = "held back"  # a release the gate or a dependency release kept from running; the reason says which


@dataclasses.dataclass
class Outcome:
    label: str
    kind: str  # test or release
    # Tests: passed, flaky, failed, build failed, timeout, no status. Releases: published, failed, refused (the
    # publisher refused it before writing: exit 3, or two releases of the run share a destination), build failed,
    # held back, built (pull requests).
    status: str
    duration_seconds: float = 0.0
    log: str = None
    reason: str = None
    record: dict = None
    quarantined: bool = False
    attempts: int = 1
    # Releases: seconds from the run's first launch to this one's launch, and to its start-up signal.
    launched_at: float = None
    started_up_at: float = None
    forked: bool = False  # forked by the fork server rather than run as its own executable
    cached: bool = None  # tests: every attempt's result came from a cache (Bazel's build events say)
    finished_at: float = None  # releases: when it ended, seconds since the epoch (release lead time)
    cpu_seconds: float = None  # releases: CPU of its process and children (tests: Bazel's build events say nothing)

    @property
    def failed(self):
        return self.status in FAILED_STATES


def timings(started, marks):
    """{"started": when the command began (seconds since the epoch), and per phase (select, tests, gate, releases)
    the seconds it took}: where a run's wall time went, before its reports."""
    spans, last = {"started": round(started, 3)}, started
    for phase, ended in marks:
        spans[phase] = round(max(0.0, ended - last), 3)
        last = ended
    return spans


def exit_code(outcomes):
    return 1 if any(o.failed and not o.quarantined for o in outcomes) else 0


def report_files(path):
    """The run reports at path: the file itself, or every .json file of a directory (one report per shard)."""
    if not os.path.isdir(path):
        return [path]
    return sorted(os.path.join(path, name) for name in os.listdir(path) if name.endswith(".json"))


def write_report(path, outcomes, extra=None):
    data = {"format_version": REPORT_VERSION, "targets": [dataclasses.asdict(o) for o in outcomes],
            "summary": summarize(outcomes)}
    data.update(extra or {})
    write_json_atomic(path, data)


def summarize(outcomes):
    summary = {}
    for outcome in outcomes:
        key = "quarantined " + outcome.status if outcome.quarantined and outcome.failed else outcome.status
        summary[key] = summary.get(key, 0) + 1
    return summary


def write_junit(path, outcomes):
    """A quarantined test that failed every attempt is a <failure> (typed and worded quarantined): quarantine keeps
    the run green, it does not make a failure a skip. A held-back release is <skipped>, with its reason."""
    suites = ElementTree.Element("testsuites", name="releasekit")
    for kind in ("test", "release"):
        chosen = [o for o in outcomes if o.kind == kind]
        suite = ElementTree.SubElement(
            suites, "testsuite", name=kind + "s", tests=str(len(chosen)), failures=str(sum(o.failed for o in chosen)),
            skipped=str(sum(o.status == HELD_BACK for o in chosen)),
            time="{:.3f}".format(sum(o.duration_seconds for o in chosen)))
        for outcome in chosen:
            case = ElementTree.SubElement(suite, "testcase", classname=kind + "s", name=outcome.label,
                                          time="{:.3f}".format(outcome.duration_seconds))
            message = outcome.reason or outcome.status
            if outcome.failed:
                quarantined = " (quarantined)" if outcome.quarantined else ""
                ElementTree.SubElement(case, "failure", message=("quarantined: " if quarantined else "") + message,
                                       type=outcome.status + quarantined).text = outcome.log or ""
            elif outcome.status == HELD_BACK:
                ElementTree.SubElement(case, "skipped", message=message)
            elif outcome.status == "flaky":
                ElementTree.SubElement(case, "system-out").text = "flaky: " + message
    write_atomic(path, ElementTree.tostring(suites, encoding="utf-8", xml_declaration=True))


def summary_table(outcomes):
    statuses = [outcome.status + (" (quarantined)" if outcome.quarantined else "") for outcome in outcomes]
    width = max([12] + [len(status) for status in statuses])  # `failed (quarantined)` keeps its column
    lines = ["{:<8} {:<{width}} {:>8}  {}".format("kind", "status", "seconds", "target", width=width)]
    for outcome, status in zip(outcomes, statuses):
        lines.append("{:<8} {:<{width}} {:>8.1f}  {}{}".format(
            outcome.kind, status, outcome.duration_seconds, outcome.label,
            "  - " + outcome.reason if outcome.reason else "", width=width))
    counts = summarize(outcomes)
    lines.append(", ".join("{} {}".format(n, k) for k, n in sorted(counts.items())) or "nothing to run")
    return "\n".join(lines)
