"""Running a selection: tests with one `bazel test`, releases built once and run side by side.

Results come from Bazel's Build Event Protocol (JSON file), not from its console output.
Release executables run directly (a second `bazel run` would wait on the server lock), N at
a time, each with its own log; a deploy release starts only after the container releases
it references (when they are in the selection) have succeeded in this run.
"""

import dataclasses
import hashlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree

from releasekit.core.errors import BazelError
from releasekit.selection.bazelquery import Bazel
from releasekit.core.errors import ReleasekitError, UsageError
from releasekit.core.redact import redact, without_secrets
from releasekit.core.jsonio import write_json_atomic
from releasekit.core.startup import STARTED_FD_VARIABLE, StartedSignal
from releasekit.core import environment

log = logging.getLogger(__name__)
REPORT_VERSION = 1
FAILED_STATES = ("failed", "build failed", "timeout")


@dataclasses.dataclass
class Outcome:
    label: str
    kind: str  # test or release
    status: str  # passed, flaky, failed, build failed, timeout, skipped, built, published, no status
    duration_seconds: float = 0.0
    log: str = None
    reason: str = None
    record: dict = None
    quarantined: bool = False
    attempts: int = 1
    # Releases: seconds from the run's first launch to this one's launch, and to its start-up signal.
    launched_at: float = None
    started_up_at: float = None

    @property
    def failed(self):
        return self.status in FAILED_STATES


def load_selection(path, kind):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        raise UsageError("Cannot read the {} selection {}: {}. Write it with releasekit collect.".format(kind, path, error)) from None
    if data.get("format_version") != 1 or "targets" not in data:
        raise UsageError("{} is not a releasekit collect {} file (format_version 1).".format(path, kind))
    return [t["label"] for t in data["targets"]]


# -- sharding -----------------------------------------------------------------------------

def parse_shard(text):
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError("--shard '{}' must be K/N with 1 <= K <= N, e.g. 2/4.".format(text)) from None
    if not 1 <= index <= count:
        raise UsageError("--shard '{}' must be K/N with 1 <= K <= N, e.g. 2/4.".format(text))
    return index, count


def shard(labels, index, count, durations=None):
    """The labels of shard index (1-based) of count: deterministic, balanced by recorded durations if given.

    Longest first onto the least loaded shard (ties: lower shard); unknown durations count as the median.
    """
    durations = durations or {}
    known = sorted(durations[label] for label in labels if label in durations)
    default = known[len(known) // 2] if known else 1.0
    ordered = sorted(labels, key=lambda label: (-durations.get(label, default), label))
    loads = [0.0] * count
    mine = []
    for label in ordered:
        target = min(range(count), key=lambda i: (loads[i], i))
        loads[target] += durations.get(label, default)
        if target == index - 1:
            mine.append(label)
    return sorted(mine)


def durations_from_report(path):
    """Durations by label from a run report, or from every report in a directory (one per shard)."""
    if not path:
        return {}
    paths = [path]
    if os.path.isdir(path):
        paths = sorted(os.path.join(path, name) for name in os.listdir(path) if name.endswith(".json"))
    durations = {}
    for report_path in paths:
        try:
            with open(report_path, encoding="utf-8") as handle:
                report = json.load(handle)
            durations.update({t["label"]: t.get("duration_seconds", 0.0) for t in report.get("targets", [])})
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            raise UsageError("Cannot read the previous report {}: {}. Give a report that releasekit dispatch "
                             "wrote (--report), or a directory of them.".format(report_path, error)) from None
    return durations


# -- the build event protocol -------------------------------------------------------------

def read_build_events(path):
    events = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if line:
                    events.append(json.loads(line))
    except FileNotFoundError:
        return []
    return events


def _uri_path(uri):
    return uri[len("file://"):] if uri and uri.startswith("file://") else uri


def test_outcomes(events, labels):
    """Outcome per test label, from testSummary / testResult / targetCompleted events."""
    outcomes, logs, attempts, built = {}, {}, {}, {}
    for event in events:
        ident = event.get("id", {})
        if "testResult" in ident:
            label = ident["testResult"]["label"]
            attempts[label] = max(attempts.get(label, 0), ident["testResult"].get("attempt", 1))
            for output in event.get("testResult", {}).get("testActionOutput", []):
                if output.get("name") == "test.log":
                    logs[label] = _uri_path(output.get("uri"))
        elif "targetCompleted" in ident:
            built[ident["targetCompleted"]["label"]] = bool(event.get("completed", {}).get("success"))
        elif "testSummary" in ident:
            label = ident["testSummary"]["label"]
            summary = event.get("testSummary", {})
            status = summary.get("overallStatus", "NO_STATUS").lower().replace("_", " ")
            millis = int(summary.get("totalRunDurationMillis", 0) or 0)
            outcomes[label] = Outcome(label, "test", status, millis / 1000.0)
    result = {}
    for label in labels:
        outcome = outcomes.get(label)
        if outcome is None:
            if built.get(label) is False:
                outcome = Outcome(label, "test", "build failed", reason="the test did not build")
            else:
                outcome = Outcome(label, "test", "failed", reason="Bazel reported no result for this test")
        outcome.log = logs.get(label)
        outcome.attempts = attempts.get(label, 1)
        if outcome.status == "flaky":
            outcome.reason = "failed, then passed within {} attempts".format(outcome.attempts)
        result[label] = outcome
    return result


def built_outputs(events, labels):
    """{label: {output name: path}} for the labels that built; a label missing from it did not build."""
    file_sets, completed = {}, {}
    for event in events:
        ident = event.get("id", {})
        if "namedSet" in ident:
            named = event.get("namedSetOfFiles", {})
            file_sets[ident["namedSet"]["id"]] = (named.get("files", []), [s["id"] for s in named.get("fileSets", [])])
        elif "targetCompleted" in ident and event.get("completed", {}).get("success"):
            groups = event["completed"].get("outputGroup", [])
            completed[ident["targetCompleted"]["label"]] = [s["id"] for g in groups for s in g.get("fileSets", [])]

    def files_of(set_ids, seen):
        for set_id in set_ids:
            if set_id in seen or set_id not in file_sets:
                continue
            seen.add(set_id)
            files, children = file_sets[set_id]
            yield from files
            yield from files_of(children, seen)

    outputs = {}
    for label in labels:
        if label in completed:
            outputs[label] = {f["name"]: _uri_path(f.get("uri")) for f in files_of(completed[label], set())}
    return outputs


# -- progress -------------------------------------------------------------------------------

class Progress:
    """A live status line on a terminal; plain lines in CI logs."""

    def __init__(self, stream=None, live=None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.lock = threading.Lock()
        self.running, self.done, self.failed = set(), 0, 0

    def _status(self):
        running = ", ".join(sorted(self.running)[:3]) + (" ..." if len(self.running) > 3 else "")
        return "[{} done, {} failed, {} running] {}".format(self.done, self.failed, len(self.running), running)

    def _emit(self, line):
        if self.live:
            self.stream.write("\r\033[K" + line + "\n" + self._status())
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def started(self, label):
        with self.lock:
            self.running.add(label)
            self._emit("{:<10} {}".format("started", label)) if not self.live else self._refresh()

    def finished(self, outcome):
        with self.lock:
            self.running.discard(outcome.label)
            self.done += 1
            self.failed += outcome.failed
            self._emit("{:<10} {} ({:.1f}s){}".format(outcome.status, outcome.label, outcome.duration_seconds,
                                                    ": " + outcome.reason if outcome.reason else ""))

    def _refresh(self):
        self.stream.write("\r\033[K" + self._status())
        self.stream.flush()

    def close(self):
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()


# -- the dispatcher -------------------------------------------------------------------------

@dataclasses.dataclass
class DispatchOptions:
    workers: int = 4
    bazel_flags: list = dataclasses.field(default_factory=list)
    quarantine: set = dataclasses.field(default_factory=set)
    flaky_test_attempts: int = None
    build_only: bool = False  # pull requests: build release targets, publish nothing
    # Releases starting up at once (start-up is CPU work; see startup.py); by default one per CPU.
    concurrent_startups: int = None
    report_dir: str = None
    environ: dict = None


class Dispatcher:
    def __init__(self, workspace, bazel=None, options=None, progress=None):
        self.workspace = os.path.abspath(workspace)
        self.bazel = bazel or Bazel(self.workspace)
        self.options = options or DispatchOptions()
        self.progress = progress or Progress()
        self.report_dir = self.options.report_dir or os.path.join(self.workspace, "releasekit-logs")
        self.pinned = {}  # what every release of this run shares: the commit, and the destinations read once
        os.makedirs(self.report_dir, exist_ok=True)
        # The logs ignore themselves, so that the next `pr` or `collect --head WORKTREE` does not count them as changes.
        ignore = os.path.join(self.report_dir, ".gitignore")
        if not os.path.exists(ignore):
            with open(ignore, "w", encoding="utf-8") as handle:
                handle.write("# @generated by releasekit: logs and reports of CI runs are not sources\n*\n")

    def _bazel(self, command, labels, extra, bep):
        args = [command, "--keep_going", "--build_event_json_file=" + bep, *extra, *self.options.bazel_flags, "--", *labels]
        # Bazel writes its client environment into the build event file: it never sees the publishers' credentials.
        process = subprocess.run(self.bazel.command + args, cwd=self.workspace, capture_output=True, text=True,
                                 env=without_secrets(os.environ if self.options.environ is None else self.options.environ))
        with open(os.path.join(self.report_dir, "bazel-{}.log".format(command)), "w") as handle:
            handle.write(process.stdout + process.stderr)
        if process.returncode not in (0, 1, 3, 4) and not os.path.exists(bep):
            raise BazelError("bazel {} failed before it ran anything (exit {}): {}".format(
                command, process.returncode, process.stderr.strip().splitlines()[-1:] or ""))
        return process.returncode

    def run_tests(self, labels):
        if not labels:
            return []
        bep = os.path.join(self.report_dir, "tests.bep.json")
        extra = ["--flaky_test_attempts={}".format(self.options.flaky_test_attempts)] if self.options.flaky_test_attempts else []
        started = time.monotonic()
        for label in labels:
            self.progress.started(label)
        self._bazel("test", labels, extra, bep)
        outcomes = test_outcomes(read_build_events(bep), labels)
        for outcome in outcomes.values():
            if outcome.label in self.options.quarantine:
                outcome.quarantined = True
            self.progress.finished(outcome)
        log.info("tests took %.1fs", time.monotonic() - started)
        return [outcomes[label] for label in labels]

    def run_releases(self, labels):
        if not labels:
            return []
        bep = os.path.join(self.report_dir, "releases.bep.json")
        self._bazel("build", labels, [], bep)
        built = built_outputs(read_build_events(bep), labels)
        results = {}
        for label in labels:
            if label not in built:
                results[label] = Outcome(label, "release", "build failed", reason="the release target did not build; "
                                         "see bazel-build.log")
        to_run = [label for label in labels if label not in results]
        if self.options.build_only:
            for label in to_run:
                results[label] = Outcome(label, "release", "built", reason="built only: nothing was published")
            return [results[label] for label in labels]
        executables = {label: _executable(label, built[label]) for label in to_run}
        self._pin_shared_inputs()
        waits = {label: self._dependencies(executables[label], labels) for label in to_run}
        self._run_executables(executables, to_run, waits, results)
        return [results[label] for label in labels]

    def _pin_shared_inputs(self):
        """Read the commit and releasekit.yaml once for the whole run.

        Every release of the run is tagged with the same commit and publishes where the file said when
        the run began; none runs git or parses YAML. What cannot be read here, each release reads (and
        reports) itself.
        """
        from releasekit.core.config import RESOLVED_CONFIG_VARIABLE, load_config
        from releasekit.core.versioning import read_source_version

        environ = self._workspace_environ()
        try:
            version = read_source_version(environ)
            self.pinned.update({environment.COMMIT.name: version.commit,
                                environment.DIRTY.name: "true" if version.dirty else "false"})
        except ReleasekitError as error:
            log.info("releases will read their own version: %s", error)
        try:
            self.pinned[RESOLVED_CONFIG_VARIABLE] = load_config(None, environ).to_json()
        except ReleasekitError as error:
            log.info("releases will read their own configuration: %s", error)

    def _dependencies(self, executable, labels):
        """The selected releases this one must wait for (a deploy release's images, same channel)."""
        from releasekit.publishing.manifest import ReleaseManifest

        try:
            manifest = ReleaseManifest.load(executable + ".release.json")
        except ReleasekitError:
            return []  # the release reports its own manifest
        suffix = "." + manifest.channel
        return [dep + suffix for dep in manifest.depends_on if dep + suffix in labels]

    def _run_executables(self, executables, labels, waits, results):
        """Run the releases: at most `workers` at once, each after its dependencies.

        At most one release per CPU is starting up at any time (see startup.py): start-up is CPU
        work, and releases launched together would queue on the CPU rather than overlap with each
        other's network waits.
        """
        workers = max(1, self.options.workers)
        startup_limit = self.options.concurrent_startups or os.cpu_count() or 1
        self.first_launch = None
        events = queue.Queue()
        pending, active, supervisors = list(labels), [], []
        try:
            while pending or active:
                for label in list(pending):
                    failed = [d for d in waits[label] if d in results and results[d].status != "published"]
                    if failed:
                        pending.remove(label)
                        results[label] = Outcome(label, "release", "skipped",
                                                 reason="not run: {} did not publish".format(", ".join(failed)))
                        self.progress.finished(results[label])
                ready = [label for label in pending if all(d in results for d in waits[label])]
                starting = sum(1 for run in active if not run.started_up)
                if ready and len(active) < workers and starting < startup_limit:
                    pending.remove(ready[0])
                    run = _ReleaseRun(ready[0], executables[ready[0]], *self._log_paths(ready[0]))
                    run.launch(self._release_environ(), self.workspace)
                    self.first_launch = self.first_launch or run.launched
                    self.progress.started(run.label)
                    active.append(run)
                    supervisor = threading.Thread(target=self._supervise, args=(run, events), daemon=True)
                    supervisor.start()
                    supervisors.append(supervisor)
                    continue
                if not active:
                    continue
                event, run = events.get()
                if event == "started up":
                    run.started_up = time.monotonic()
                else:
                    active.remove(run)
                    run.outcome.launched_at = round(run.launched - self.first_launch, 3)
                    run.outcome.started_up_at = round((run.started_up or time.monotonic()) - self.first_launch, 3)
                    results[run.label] = run.outcome
                    self.progress.finished(run.outcome)
        finally:
            for supervisor in supervisors:
                supervisor.join()

    def _log_paths(self, label):
        safe = label[2:].replace("/", "_").replace(":", "__")
        return os.path.join(self.report_dir, safe + ".log"), os.path.join(self.report_dir, safe + ".record.json")

    def _workspace_environ(self):
        """The environment releases start from: the caller's, in this workspace."""
        environ = dict(os.environ if self.options.environ is None else self.options.environ)
        environ["BUILD_WORKSPACE_DIRECTORY"] = self.workspace
        return environ

    def _release_environ(self):
        environ = self._workspace_environ()
        for key, value in self.pinned.items():
            environ.setdefault(key, value)
        # This interpreter has releasekit's packages; releases use it rather than resolve python3 again each.
        environ.setdefault(environment.PYTHON.name, sys.executable)
        environ.pop("RUNFILES_DIR", None)
        return environ

    def _supervise(self, run, events):
        try:
            run.started_signal.wait()
            events.put(("started up", run))
            code = run.process.wait()
            run.outcome = self._outcome(run, code)
        except Exception as error:  # the scheduler must hear of every release, whatever happens here
            run.outcome = Outcome(run.label, "release", "failed", 0.0, run.log_path,
                                  reason="releasekit could not supervise the release: {}".format(error))
        finally:
            run.log_file.close()
            events.put(("done", run))

    def _outcome(self, run, code):
        duration = time.monotonic() - run.launched
        record = None
        if code == 0 and os.path.exists(run.record_path):
            with open(run.record_path, encoding="utf-8") as handle:
                record = json.load(handle)
        if code == 0:
            return Outcome(run.label, "release", "published", duration, run.log_path, record=record)
        with open(run.log_path, encoding="utf-8", errors="replace") as handle:
            last = [line.strip() for line in handle if line.strip()][-1:] or ["exit code {}".format(code)]
        return Outcome(run.label, "release", "failed", duration, run.log_path, reason=redact(last[0])[:500])


class _ReleaseRun:
    """One release executable, launched with the pipe it signals its start-up on."""

    def __init__(self, label, executable, log_path, record_path):
        self.label, self.executable = label, executable
        self.log_path, self.record_path = log_path, record_path
        self.started_signal = StartedSignal()
        self.process = self.log_file = self.outcome = self.launched = None
        self.started_up = None  # when it signalled that it is loaded

    def launch(self, environ, cwd):
        if os.path.exists(self.record_path):
            os.unlink(self.record_path)
        descriptor = self.started_signal.write_end
        environ.update({environment.REPORT.name: self.record_path, environment.STARTED_FD.name: str(descriptor)})
        self.log_file = open(self.log_path, "w")
        try:
            self.process = subprocess.Popen([self.executable], env=environ, stdout=self.log_file,
                                            stderr=subprocess.STDOUT, cwd=cwd, pass_fds=(descriptor,))
        except OSError:
            self.log_file.close()
            self.started_signal.abandon()
            raise
        finally:
            self.started_signal.release_launched()
        self.launched = time.monotonic()


def _executable(label, outputs):
    """The release executable among a release target's outputs: the file named like the target."""
    package, name = label[2:].split(":", 1)
    wanted = "/".join(p for p in (package, name) if p)
    for output_name, path in outputs.items():
        if output_name == wanted:
            return path
    raise UsageError("{} built, but its executable {} is not among its outputs.".format(label, wanted))


# -- reports ---------------------------------------------------------------------------------

def exit_code(outcomes):
    return 1 if any(o.failed and not o.quarantined for o in outcomes) else 0


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
    suites = ElementTree.Element("testsuites", name="releasekit")
    for kind in ("test", "release"):
        chosen = [o for o in outcomes if o.kind == kind]
        suite = ElementTree.SubElement(
            suites, "testsuite", name=kind + "s", tests=str(len(chosen)),
            failures=str(sum(o.failed and not o.quarantined for o in chosen)),
            skipped=str(sum(o.status == "skipped" or (o.failed and o.quarantined) for o in chosen)),
            time="{:.3f}".format(sum(o.duration_seconds for o in chosen)))
        for outcome in chosen:
            case = ElementTree.SubElement(suite, "testcase", classname=kind + "s", name=outcome.label,
                                          time="{:.3f}".format(outcome.duration_seconds))
            message = outcome.reason or outcome.status
            if outcome.failed and not outcome.quarantined:
                ElementTree.SubElement(case, "failure", message=message, type=outcome.status).text = outcome.log or ""
            elif outcome.status == "skipped" or outcome.quarantined:
                ElementTree.SubElement(case, "skipped", message=("quarantined: " if outcome.quarantined else "") + message)
            elif outcome.status == "flaky":
                ElementTree.SubElement(case, "system-out").text = "flaky: " + message
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = "{}.{}.tmp".format(path, hashlib.sha1(str(time.time()).encode()).hexdigest()[:8])
    ElementTree.ElementTree(suites).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)


def summary_table(outcomes):
    lines = ["{:<8} {:<12} {:>8}  {}".format("kind", "status", "seconds", "target")]
    for outcome in outcomes:
        status = outcome.status + (" (quarantined)" if outcome.quarantined else "")
        lines.append("{:<8} {:<12} {:>8.1f}  {}{}".format(outcome.kind, status, outcome.duration_seconds, outcome.label,
                                                        "  - " + outcome.reason if outcome.reason else ""))
    counts = summarize(outcomes)
    lines.append(", ".join("{} {}".format(n, k) for k, n in sorted(counts.items())) or "nothing to run")
    return "\n".join(lines)
