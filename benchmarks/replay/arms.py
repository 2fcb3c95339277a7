"""The three arms of the CI replay, each an agent with its own remote cache, registry and store.

CI model, the same for every arm, in one of two modes:
- cold (ephemeral agents): each commit runs on a fresh agent, that is a fresh Bazel output base and server (a new
  --output_user_root per commit; the install base is shared, as an agent image would carry it) and an empty home
  cache, in a clean checkout of the commit;
- warm (persistent agents): each arm replays every commit on one agent that keeps its Bazel server, output base and
  home cache (collect's checkout of the base revision included) from commit to commit; its checkout is moved with
  git as warm runners move it (`git fetch`, `git checkout --force`, `git clean -ffdx`).
Either way with the arm's shared HTTP remote cache (nginx). Checkout time is not counted. Each arm learns what it ran
from its own commands' output (Bazel's build events), never from a query the harness adds to its timed region:
1. everything: what a platform team's script does: `bazel test //...`, then every CI release that invocation built
   (the build events name them and their executables), run as their own processes, `workers` at a time
   (`xargs -P`); each as `bazel run` would run it, without a Bazel command per release;
2. Bazel alone: `bazel test //...`, then those releases through `releasekit dispatch` with the same workers (its
   tests selection empty: they ran before, in the same job);
Both peers release only when `bazel test //...` passed, as a script's `&&` does.
3. `releasekit ci --base <previous commit>`, with its workers and a run history. Its collect records the target graph
   of each commit whose run had Bazel load //... in the arm's store (releasekit.yaml's `target_graphs`), and a later
   commit that changes only source files reads it from there: state shared between agents, as the remote cache is.
Scaled out, arm 3 runs as the pipeline `releasekit pipeline` writes: every test shard (collect, then `dispatch
--tests --shard K/N`), then every release shard, handed the test shards' reports (`--test-reports`).
Every arm's `bazel test` writes Bazel's JSON profile to a file of the harness's (--profile), which Bazel writes anyway
(to its output base), so each pays the same for it.
"""

import concurrent.futures
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time

from helpers.servers import NginxStore, Registry
from helpers.workspace import BAZEL
from releasekit.running.build_events import built_outputs, read_build_events, test_outcomes
from releasekit.running.run_report import Outcome
from releasekit.selection.selection_file import Selected, Selection
from replay import costs, timeline

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
ARMS = ("1 everything", "2 bazel alone", "3 releasekit ci")
RELEASE_KIND = "artifact_ci_release rule"


@dataclasses.dataclass
class CommitRun:
    arm: str
    commit: str
    seconds: float
    tests_executed: list  # labels Bazel really ran (not a cache hit)
    tests_cached: list
    tests_selected: list  # arm 3: what it selected (every test for the others)
    releases_run: list
    release_digests: dict  # label: the published artifact's digest (container) or content checksum
    bytes_pushed: int
    failed: list
    start: float = 0.0
    outcomes: list = dataclasses.field(default_factory=list)  # run_report.Outcome of every target
    graph: str = ""  # arm 3: "read" or "recorded" when collect read or recorded a target graph
    costs: dict = dataclasses.field(default_factory=dict)  # costs.Meter.end()
    phases: dict = dataclasses.field(default_factory=dict)  # timeline.PHASES: seconds
    footprint: dict = dataclasses.field(default_factory=dict)  # warm agents: costs.footprint() after the commit
    reported_cpu: dict = None  # arm 3: the CPU its run record says (releasekit's own measure)


def shared_install_base(workdir, repo):
    """Bazel's install base, extracted once: what an agent image carries."""
    root = os.path.join(workdir, "image")
    info = subprocess.run([BAZEL, "--output_user_root=" + root, "info", "install_base"], cwd=repo, capture_output=True,
                          text=True, check=True)
    subprocess.run([BAZEL, "--output_user_root=" + root, "shutdown"], cwd=repo, capture_output=True)
    return info.stdout.strip()


def count_targets(workdir, repo, install_base):
    """(CI releases, tests) of the repository as it is checked out, from Bazel itself (not timed)."""
    root = os.path.join(workdir, "image")
    command = [BAZEL, "--output_user_root=" + root, "--install_base=" + install_base]

    def query(expression):
        answer = subprocess.run(command + ["query", expression], cwd=repo, capture_output=True, text=True, check=True)
        return len(answer.stdout.split())

    try:
        return query("kind(artifact_ci_release, //...)"), query("tests(//...)")
    finally:
        subprocess.run(command + ["shutdown"], cwd=repo, capture_output=True)


class Agent:
    """One arm: its servers, a clone of the history, and its Bazel (fresh per commit, or one kept: warm)."""

    def __init__(self, arm, workdir, origin, workers, install_base, warm=False):
        self.arm, self.workers, self.warm = arm, workers, warm
        self.root = os.path.join(workdir, "arm" + arm[0])
        os.makedirs(self.root)
        self.store = NginxStore(os.path.join(self.root, "nginx"))
        self.registry = Registry(os.path.join(self.root, "registry"), in_memory=True)
        self.repo = os.path.join(self.root, "repo")
        subprocess.run(["git", "clone", "-q", origin, self.repo], check=True)
        self.config = os.path.join(self.root, "releasekit.yaml")
        with open(self.config, "w") as handle:
            handle.write("channels:\n  ci: {{registry: 'http://{0}/ci', maven: '{1}/store/maven', deploy: "
                         "'{1}/store/deploy'}}\n  dev: {{registry: 'http://{0}/dev', maven: '{1}/store/maven-dev', "
                         "deploy: '{1}/store/deploy-dev'}}\ntarget_graphs: '{1}/graphs'\n".format(self.registry.host,
                                                                                              self.store.url))
            if self.is_releasekit_ci:
                handle.write("history: '{}/history'\n".format(self.store.url))  # a releasekit CI keeps its runs
        self.bazel = os.path.join(self.root, "bazel")
        with open(self.bazel, "w") as handle:
            # The agent's output user root; the install base is shared, as an agent image has it.
            handle.write('#!/bin/sh\nexec {} --output_user_root="$REPLAY_AGENT_ROOT" --install_base={} "$@"\n'.format(
                BAZEL, install_base))
        os.chmod(self.bazel, 0o755)
        self.remote_cache = "--remote_cache={}/cache".format(self.store.url)
        self.trash = os.path.join(self.root, "trash")
        self.agent_root = os.path.join(self.root, "agent")
        self.meter = costs.Meter(self.agent_root, self.store.request_log)

    @property
    def is_releasekit_ci(self):
        return self.arm == ARMS[2]

    def empty_trash(self):
        if os.path.isdir(self.trash):
            subprocess.run(["chmod", "-R", "u+w", self.trash], capture_output=True)
            shutil.rmtree(self.trash, ignore_errors=True)

    def stop(self):
        costs.stop_servers(self.agent_root)
        self.store.stop()
        self.registry.stop()

    SHARED_STATE = ("cache", "graphs")  # what agents share: the remote cache, and arm 3's recorded target graphs

    def snapshot_cache(self):
        """A copy of the shared state as it is now (hard links: nginx replaces files, it never edits them)."""
        snapshot = os.path.join(self.root, "cache-snapshots", str(len(os.listdir(self.root))) + str(time.time()))
        os.makedirs(snapshot)
        for name in self.SHARED_STATE:
            if os.path.isdir(self.store.path(name)):
                subprocess.run(["cp", "-al", self.store.path(name), os.path.join(snapshot, name)], check=True)
        return snapshot

    def restore_cache(self, snapshot):
        for name in self.SHARED_STATE:
            shutil.rmtree(self.store.path(name), ignore_errors=True)
            if os.path.isdir(os.path.join(snapshot, name)):
                subprocess.run(["cp", "-al", os.path.join(snapshot, name), self.store.path(name)], check=True)

    def scratch_config(self, name):
        """A configuration publishing to places of their own in the arm's registry and store."""
        path = os.path.join(self.root, name + ".yaml")
        with open(path, "w") as handle:
            handle.write("channels:\n  ci: {{registry: 'http://{0}/{2}', maven: '{1}/{2}/maven', deploy: "
                         "'{1}/{2}/deploy'}}\ntarget_graphs: '{1}/graphs'\n".format(self.registry.host, self.store.url,
                                                                                    name))
        return path

    def environ(self, version):
        # The agent's home cache (collect's checkout of the base revision in it) lives and dies with the agent.
        return dict(os.environ, CI="true", RELEASEKIT_CONFIG=self.config, RELEASEKIT_BAZEL=self.bazel,
                    REPLAY_AGENT_ROOT=self.agent_root, RELEASEKIT_VERSION=version,
                    XDG_CACHE_HOME=os.path.join(self.agent_root, "home-cache"))

    def checkout(self, commit):
        """Move the checkout to the commit as a CI runner does (not timed)."""
        subprocess.run(["git", "fetch", "-q", "origin"], cwd=self.repo, check=True)
        subprocess.run(["git", "checkout", "-q", "--force", commit], cwd=self.repo, check=True)
        subprocess.run(["git", "clean", "-q", "-ffdx"], cwd=self.repo, check=True)

    def run(self, commit, previous, version, shard=None, config=None, warm_up=False, job=None, reports=None):
        """Replay one commit on the agent; the CommitRun. warm_up: everything, as arm 2 runs it. With a shard: job is
        "tests" or "releases", and reports the directory of the test shards' reports."""
        self.checkout(commit)
        environ = self.environ(version)
        if config:
            environ["RELEASEKIT_CONFIG"] = config
        logs = os.path.join(self.root, "logs")
        shutil.rmtree(logs, ignore_errors=True)
        os.makedirs(logs)
        self.meter.begin()
        launched = time.time()
        try:
            if shard:
                result = self._pipeline_job(previous, environ, logs, shard, job, reports, launched)
            elif self.is_releasekit_ci and not warm_up:
                result = self._releasekit_ci(previous, environ, logs, launched)
            else:
                result = self._everything(environ, logs, launched, script=self.arm == ARMS[0] and not warm_up)
            result.start, result.commit = launched, commit
            result.costs = self.meter.end()
            if self.warm:
                result.footprint = costs.footprint(self.agent_root, self.repo, os.path.join(self.agent_root,
                                                                                            "home-cache"))
            return result
        finally:
            if not self.warm:
                # Ending a fresh agent is not timed: its Bazel servers (the workspace's, and collect's of the base
                # revision) are killed, as an ephemeral agent's are, and its output bases go to the trash.
                costs.stop_servers(self.agent_root)
                if os.path.isdir(self.agent_root):
                    os.makedirs(self.trash, exist_ok=True)
                    os.rename(self.agent_root, os.path.join(self.trash, str(time.time())))

    def _command(self, command, environ, log_name, logs):
        """Run one of the arm's commands, its output in a log; (exit code, the log's text)."""
        log = os.path.join(logs, log_name)
        with open(log, "w") as output:
            code, peak = costs.run_measured(command, cwd=self.repo, env=environ, stdout=output,
                                            stderr=subprocess.STDOUT)
        self.meter.note_command(peak)
        with open(log, errors="replace") as handle:
            return code, handle.read()

    def _everything(self, environ, logs, launched, script):
        bep, profile = os.path.join(logs, "test.bep.json"), os.path.join(logs, "peer-test.profile.json")
        code, output = self._command([self.bazel, "test", "--keep_going", self.remote_cache, "--build_event_json_file="
                                      + bep, "--profile=" + profile, "//..."], environ, "bazel-test.log", logs)
        if code not in (0, 3, 4):
            raise SystemExit("replay: bazel test failed in {}:\n{}".format(self.arm, output[-3000:]))
        events = read_build_events(bep)
        labels = sorted({e["id"]["testSummary"]["label"] for e in events if "testSummary" in e["id"]})
        outcomes = list(test_outcomes(events, labels).values())
        releases = releases_built(events) if code == 0 else {}  # a script's `bazel test //... && release`
        tested = time.time()
        if script:
            records, release_outcomes = self._side_by_side(releases, environ, logs)
        else:
            records, release_outcomes = self._dispatch(sorted(releases), environ, logs)
        run = _commit_run(self.arm, outcomes + release_outcomes, labels, records)
        ended = time.time()
        run.seconds = round(ended - launched, 2)
        run.phases = timeline.peer_phases(launched, tested, ended, profile, self.agent_root, self.repo)
        return run

    def _side_by_side(self, releases, environ, logs):
        """Run each release executable the tests' invocation built, `workers` at a time, as `xargs -P` would."""
        def release(label):
            record = os.path.join(logs, label.replace("/", "_").replace(":", "__") + ".record.json")
            log = os.path.join(logs, label.replace("/", "_").replace(":", "__") + ".log")
            started = time.monotonic()
            with open(log, "w") as output:
                code, peak = costs.run_measured([releases[label]], cwd=self.repo, stdout=output,
                                                stderr=subprocess.STDOUT,
                                                env=dict(environ, RELEASEKIT_REPORT=record,
                                                         BUILD_WORKSPACE_DIRECTORY=self.repo))
            self.meter.note_command(peak)
            outcome = Outcome(label, "release", "published" if code == 0 else "failed", time.monotonic() - started,
                              finished_at=time.time())
            if code == 0 and os.path.exists(record):
                with open(record) as handle:
                    outcome.record = json.load(handle)
            elif code != 0:
                with open(log, errors="replace") as handle:
                    outcome.reason = ([line for line in handle.read().splitlines() if line.strip()] or ["?"])[-1]
            return outcome

        with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
            outcomes = list(pool.map(release, sorted(releases)))
        return {o.label: o.record for o in outcomes if o.record}, outcomes

    def _dispatch(self, releases, environ, logs):
        selected = Selection("-", "-", True, [], [Selected(label, "release", ["every release"]) for label in releases],
                             [])
        paths = {kind: os.path.join(logs, kind + ".json") for kind in ("tests", "releases")}
        for kind, path in paths.items():  # no tests: `bazel test //...` ran them, and passed
            with open(path, "w") as handle:
                json.dump(selected.report(kind), handle)
        report, _ = self._releasekit(environ, logs, "dispatch", "--tests", paths["tests"], "--releases",
                                     paths["releases"])
        return _records(report), _outcomes(report)

    def _releasekit(self, environ, logs, *args, report=None):
        report = report or os.path.join(logs, "report.json")
        _, output = self._command([sys.executable, ENTRY, *args, "--workers", str(self.workers), "--logs", logs,
                                   "--report", report, "--", self.remote_cache], environ, "releasekit.log", logs)
        if not os.path.exists(report):
            raise SystemExit("replay: releasekit {} wrote no report in {}:\n{}".format(args[0], self.arm,
                                                                                    output[-6000:]))
        with open(report) as handle:
            return json.load(handle), output

    def _releasekit_ci(self, previous, environ, logs, launched):
        # The replay is the main line's history: its runs record the target graphs they load.
        report, output = self._releasekit(environ, logs, "ci", "--base", previous, "--profile",
                                          "--record-target-graphs")
        ended = time.time()
        outcomes = _outcomes(report)
        run = _commit_run(self.arm, outcomes, [o.label for o in outcomes if o.kind == "test"], _records(report))
        run.seconds = round(ended - launched, 2)
        run.graph = ("read" if "note: read the target graph" in output else
                     "recorded" if "note: recorded the target graph" in output else "")
        run.phases = timeline.arm3_phases(launched, ended, report, logs, self.agent_root, self.repo)
        run.reported_cpu = report.get("cpu")
        return run

    def _pipeline_job(self, previous, environ, logs, shard, job, reports, launched):
        """One job of the generated pipeline: collect, then this shard's tests (its report kept in reports), or
        this shard's releases, gated on every test shard's report there."""
        paths = {kind: os.path.join(logs, kind + ".json") for kind in ("tests", "releases")}
        code, output = self._command([sys.executable, ENTRY, "collect", "--base", previous, "--head", "HEAD",
                                      "--tests-out", paths["tests"], "--releases-out", paths["releases"]], environ,
                                     "collect.log", logs)
        if code != 0:
            raise SystemExit("replay: collect failed in {}:\n{}".format(self.arm, output[-3000:]))
        if job == "tests":
            report, _ = self._releasekit(environ, logs, "dispatch", "--tests", paths["tests"], "--shard", shard,
                                         report=os.path.join(reports,
                                                             "report-tests-{}.json".format(shard.split("/")[0])))
        else:
            report, _ = self._releasekit(environ, logs, "dispatch", "--releases", paths["releases"], "--shard", shard,
                                         "--test-reports", reports, "--tests-selection", paths["tests"])
        outcomes = _outcomes(report)
        run = _commit_run(self.arm, outcomes, [o.label for o in outcomes if o.kind == "test"], _records(report))
        run.seconds = round(time.time() - launched, 2)
        return run


def releases_built(events):
    """{label: executable} of the CI releases a Bazel invocation built, from its build events."""
    kinds = {e["id"]["targetConfigured"]["label"]: e.get("configured", {}).get("targetKind")
             for e in events if "targetConfigured" in e["id"]}
    labels = sorted(label for label, kind in kinds.items() if kind == RELEASE_KIND)
    executables = {}
    for label, outputs in built_outputs(events, labels).items():
        wanted = "/".join(p for p in label[2:].split(":", 1) if p)
        if wanted in outputs:
            executables[label] = outputs[wanted]
    return executables


def _outcomes(report):
    fields = {f.name for f in dataclasses.fields(Outcome)}
    return [Outcome(**{k: v for k, v in target.items() if k in fields}) for target in report["targets"]]


def _records(report):
    return {t["label"]: t["record"] for t in report["targets"] if t["kind"] == "release" and t.get("record")}


def _commit_run(arm, outcomes, selected_tests, records):
    tests = [o for o in outcomes if o.kind == "test"]
    releases = [o for o in outcomes if o.kind == "release"]
    return CommitRun(arm=arm, commit=None, seconds=0.0,
                     tests_executed=sorted(o.label for o in tests if o.cached is False),
                     tests_cached=sorted(o.label for o in tests if o.cached),
                     tests_selected=sorted(selected_tests),
                     releases_run=sorted(o.label for o in releases if o.status == "published"),
                     release_digests={label: artifact_digest(record) for label, record in records.items()},
                     bytes_pushed=sum(int(r.get("bytes_uploaded") or 0) for r in records.values()
                                      if r.get("kind") == "container"),
                     failed=sorted(o.label for o in outcomes if o.failed), outcomes=outcomes)


def artifact_digest(record):
    """What identifies a published artifact's content: an image's digest, a file's or jar's checksum."""
    for key in ("digest", "sha256", "checksum"):
        if record.get(key):
            return record[key]
    return json.dumps({k: record.get(k) for k in ("images", "files", "sha1", "size")}, sort_keys=True)
