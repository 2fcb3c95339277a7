"""The three arms of the CI replay, each an agent with its own remote cache, registry and store.

CI model, the same for every arm: each commit runs on a fresh agent, that is a fresh Bazel output base and server
(a new --output_user_root per run; the install base is shared, as an agent image would carry it) in a clean
checkout of the commit, with the arm's shared HTTP remote cache (nginx). Checkout time is not counted.
1. everything: `bazel test //...`, then every CI release built once and run one after another, each its own
   process (as `bazel run` would run it, without a Bazel command per release);
2. Bazel alone: `bazel test //...`, then, when it passed (a script's `&&`), every CI release through
   `releasekit dispatch` with the workers of arm 3 (its tests selection empty: they ran before, in the same job);
3. `releasekit ci --base <previous commit>`, with its workers. Its collect records the target graph of each commit
   whose run had Bazel load //... in the arm's store (releasekit.yaml's `target_graphs`), and a later commit that
   changes only source files reads it from there: state shared between agents, as the remote cache is.
Scaled out, arm 3 runs as the pipeline `releasekit pipeline` writes: every test shard (collect, then `dispatch
--tests --shard K/N`), then every release shard, handed the test shards' reports (`--test-reports`).
"""

import dataclasses
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from helpers.servers import NginxStore, Registry
from helpers.workspace import BAZEL
from releasekit.running.build_events import read_build_events, test_outcomes
from releasekit.selection.selection_file import Selected, Selection

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
ARMS = ("1 everything", "2 bazel alone", "3 releasekit ci")


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


def shared_install_base(workdir, repo):
    """Bazel's install base, extracted once: what an agent image carries."""
    root = os.path.join(workdir, "image")
    info = subprocess.run([BAZEL, "--output_user_root=" + root, "info", "install_base"], cwd=repo, capture_output=True,
                          text=True, check=True)
    subprocess.run([BAZEL, "--output_user_root=" + root, "shutdown"], cwd=repo, capture_output=True)
    return info.stdout.strip()


class Agent:
    """One arm: its servers, a clone of the history, and its per-commit fresh Bazel."""

    def __init__(self, arm, workdir, origin, workers, install_base):
        self.arm, self.workers = arm, workers
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
        self.bazel = os.path.join(self.root, "bazel")
        with open(self.bazel, "w") as handle:
            # A fresh output user root per run is a fresh agent; the install base is shared, as an agent image has it.
            handle.write('#!/bin/sh\nexec {} --output_user_root="$REPLAY_AGENT_ROOT" --install_base={} "$@"\n'.format(
                BAZEL, install_base))
        os.chmod(self.bazel, 0o755)
        self.remote_cache = "--remote_cache={}/cache".format(self.store.url)
        self.trash = os.path.join(self.root, "trash")

    def empty_trash(self):
        if os.path.isdir(self.trash):
            subprocess.run(["chmod", "-R", "u+w", self.trash], capture_output=True)
            shutil.rmtree(self.trash, ignore_errors=True)

    def stop(self):
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

    def environ(self, agent_root, version):
        # A fresh agent has an empty home cache too: collect's checkout of the base revision starts anew.
        return dict(os.environ, CI="true", RELEASEKIT_CONFIG=self.config, RELEASEKIT_BAZEL=self.bazel,
                    REPLAY_AGENT_ROOT=agent_root, RELEASEKIT_VERSION=version,
                    XDG_CACHE_HOME=os.path.join(agent_root, "home-cache"))

    def run(self, commit, previous, version, shard=None, config=None, warm_up=False, job=None, reports=None):
        """Replay one commit on a fresh agent; the CommitRun. warm_up: everything, as arm 2 runs it. With a shard:
        job is "tests" or "releases", and reports the directory of the test shards' reports."""
        subprocess.run(["git", "checkout", "-q", "--force", commit], cwd=self.repo, check=True)
        subprocess.run(["git", "clean", "-q", "-fdx"], cwd=self.repo, check=True)
        agent_root = os.path.join(self.root, "agent")
        environ = self.environ(agent_root, version)
        if config:
            environ["RELEASEKIT_CONFIG"] = config
        logs = os.path.join(self.root, "logs")
        shutil.rmtree(logs, ignore_errors=True)
        os.makedirs(logs)
        started = time.time()
        try:
            if shard:
                result = self._pipeline_job(previous, environ, logs, shard, job, reports)
            elif self.arm.startswith("3") and not warm_up:
                result = self._releasekit_ci(previous, environ, logs)
            else:
                result = self._everything(environ, logs, one_after_another=self.arm.startswith("1") and not warm_up)
            result.seconds = round(time.time() - started, 2)
            result.start, result.commit = started, commit
            return result
        finally:
            # Ending the agent is not timed: its Bazel servers (the workspace's, and collect's of the base revision)
            # are killed, as an ephemeral agent's are, and its output bases go to the trash, emptied between commits.
            for pid_file in glob.glob(os.path.join(agent_root, "*", "server", "server.pid.txt")):
                with open(pid_file) as handle:
                    try:
                        os.kill(int(handle.read().strip()), signal.SIGKILL)
                    except (ValueError, ProcessLookupError):
                        pass
            if os.path.isdir(agent_root):
                os.makedirs(self.trash, exist_ok=True)
                os.rename(agent_root, os.path.join(self.trash, str(time.time())))

    def _bazel(self, environ, *args):
        return subprocess.run([self.bazel, *args], cwd=self.repo, env=environ, capture_output=True, text=True)

    def _everything(self, environ, logs, one_after_another):
        bep = os.path.join(logs, "test.bep.json")
        tested = self._bazel(environ, "test", "--keep_going", self.remote_cache, "--build_event_json_file=" + bep,
                             "//...")
        if tested.returncode not in (0, 3, 4):
            raise SystemExit("replay: bazel test failed in {}:\n{}".format(self.arm, tested.stderr[-3000:]))
        labels = sorted(set(self._bazel(environ, "query", "tests(//...)").stdout.split()))
        outcomes = list(test_outcomes(read_build_events(bep), labels).values())
        releases = sorted(self._bazel(environ, "query", "kind(artifact_ci_release, //...)").stdout.split())
        if tested.returncode != 0:  # a script's `bazel test //... && release`: a failing test, no release
            releases = []
        if one_after_another:
            records, release_outcomes = self._one_after_another(releases, environ, logs)
        else:
            records, release_outcomes = self._dispatch(releases, environ, logs)
        return _commit_run(self.arm, outcomes + release_outcomes, labels, records)

    def _one_after_another(self, releases, environ, logs):
        """Build every CI release once, then run each release executable in turn, as `bazel run` would."""
        from releasekit.running.build_events import built_outputs
        from releasekit.running.run_report import Outcome

        bep = os.path.join(logs, "build.bep.json")
        self._bazel(environ, "build", "--keep_going", self.remote_cache, "--build_event_json_file=" + bep, *releases)
        built = built_outputs(read_build_events(bep), releases)
        records, outcomes = {}, []
        for label in releases:
            package, name = label[2:].split(":")
            executable = (built.get(label) or {}).get("{}/{}".format(package, name))
            record = os.path.join(logs, label.replace("/", "_").replace(":", "__") + ".record.json")
            started = time.monotonic()
            result = subprocess.run([executable], cwd=self.repo, capture_output=True, text=True,
                                    env=dict(environ, RELEASEKIT_REPORT=record, BUILD_WORKSPACE_DIRECTORY=self.repo)
                                    ) if executable else None
            ok = result is not None and result.returncode == 0
            outcome = Outcome(label, "release", "published" if ok else "failed", time.monotonic() - started,
                              finished_at=time.time())
            if ok and os.path.exists(record):
                with open(record) as handle:
                    records[label] = outcome.record = json.load(handle)
            elif not ok:
                last = "did not build" if result is None else (result.stderr.strip().splitlines() or ["?"])[-1]
                outcome.reason = last
            outcomes.append(outcome)
        return records, outcomes

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
        result = subprocess.run([sys.executable, ENTRY, *args, "--workers", str(self.workers), "--logs", logs,
                                 "--report", report, "--", self.remote_cache], cwd=self.repo, env=environ,
                                capture_output=True, text=True)
        if not os.path.exists(report):
            raise SystemExit("replay: releasekit {} wrote no report in {}:\n{}{}".format(
                args[0], self.arm, result.stdout[-3000:], result.stderr[-3000:]))
        with open(report) as handle:
            return json.load(handle), result.stdout

    def _releasekit_ci(self, previous, environ, logs):
        # The replay is the main line's history: its runs record the target graphs they load.
        report, output = self._releasekit(environ, logs, "ci", "--base", previous, "--record-target-graphs")
        outcomes = _outcomes(report)
        run = _commit_run(self.arm, outcomes, [o.label for o in outcomes if o.kind == "test"], _records(report))
        run.graph = ("read" if "note: read the target graph" in output else
                     "recorded" if "note: recorded the target graph" in output else "")
        return run

    def _pipeline_job(self, previous, environ, logs, shard, job, reports):
        """One job of the generated pipeline: collect, then this shard's tests (its report kept in reports), or
        this shard's releases, gated on every test shard's report there."""
        paths = {kind: os.path.join(logs, kind + ".json") for kind in ("tests", "releases")}
        subprocess.run([sys.executable, ENTRY, "collect", "--base", previous, "--head", "HEAD", "--tests-out",
                        paths["tests"], "--releases-out", paths["releases"]], cwd=self.repo, env=environ, check=True,
                       capture_output=True)
        if job == "tests":
            report, _ = self._releasekit(environ, logs, "dispatch", "--tests", paths["tests"], "--shard", shard,
                                         report=os.path.join(reports,
                                                             "report-tests-{}.json".format(shard.split("/")[0])))
        else:
            report, _ = self._releasekit(environ, logs, "dispatch", "--releases", paths["releases"], "--shard", shard,
                                         "--test-reports", reports)
        outcomes = _outcomes(report)
        return _commit_run(self.arm, outcomes, [o.label for o in outcomes if o.kind == "test"], _records(report))


def _outcomes(report):
    from releasekit.running.run_report import Outcome

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
                     bytes_pushed=sum(int(r.get("bytes_uploaded") or 0) for r in records.values()),
                     failed=sorted(o.label for o in outcomes if o.failed), outcomes=outcomes)


def artifact_digest(record):
    """What identifies a published artifact's content: an image's digest, a file's or jar's checksum."""
    for key in ("digest", "sha256", "checksum"):
        if record.get(key):
            return record[key]
    return json.dumps({k: record.get(k) for k in ("images", "files", "sha1", "size")}, sort_keys=True)
