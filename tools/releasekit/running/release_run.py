"""One release of a run: its executable found among the target's outputs, launched (forked by the fork server when it
serves the release's releasekit, else run as its own process) with its log and the pipe it signals its start-up on,
supervised, and its outcome read back from its exit code, its record and its log."""

import json
import os
import time

from releasekit.core import environment, process
from releasekit.core.errors import RefusedError, UsageError
from releasekit.core.redact import redact
from releasekit.core.startup import StartedSignal
from releasekit.running import forkserver
from releasekit.running.run_report import Outcome


class ReleaseRun:
    """One release executable, launched with the pipe it signals its start-up on."""

    def __init__(self, label, executable, log_path, record_path):
        self.label, self.executable = label, executable
        self.log_path, self.record_path = log_path, record_path
        self.started_signal = StartedSignal()
        self.process = self.log_file = self.outcome = self.launched = None
        self.started_up = None  # when it signalled that it is loaded
        self.forked = False

    def launch(self, environ, cwd, fork_server=None):
        """Fork the release in the fork server when it serves this release's releasekit; else run the executable."""
        if os.path.exists(self.record_path):
            os.unlink(self.record_path)
        descriptor = self.started_signal.write_end
        environ.update({environment.REPORT.name: self.record_path, environment.STARTED_FD.name: str(descriptor)})
        self.log_file = open(self.log_path, "w")
        paths = forkserver.launcher_paths(self.executable) if fork_server else None
        try:
            if paths and fork_server.serves(paths[0]):
                entry, manifest, runfiles = paths
                self.process = fork_server.start(["publish", "--manifest", manifest, "--runfiles", runfiles], environ,
                                                 cwd, self.log_file.fileno(), descriptor)
                self.forked = True
            else:
                self.process = process.start([self.executable], env=environ, stdout=self.log_file,
                                             stderr=process.STDOUT, cwd=cwd, pass_fds=(descriptor,))
        except OSError:
            self.log_file.close()
            self.started_signal.abandon()
            raise
        finally:
            self.started_signal.release_launched()
        self.launched = time.monotonic()

    def supervise(self, events, outcome_of=None):
        """In its own thread: put ("started up", self), then ("done", self) with self.outcome set, whatever happens.
        outcome_of(run, exit code): the Outcome (default: outcome_from(), from the exit code and the record)."""
        try:
            self.started_signal.wait()
            events.put(("started up", self))
            code, cpu_seconds = forkserver.wait_with_cpu(self.process)
            self.outcome = (outcome_of or ReleaseRun.outcome_from)(self, code)
            self.outcome.forked, self.outcome.cpu_seconds = self.forked, cpu_seconds
        except Exception as error:  # the scheduler must hear of every release, whatever happens here
            self.outcome = Outcome(self.label, "release", "failed", 0.0, self.log_path,
                                   reason="releasekit could not supervise the release: {}".format(error))
        finally:
            self.log_file.close()
            events.put(("done", self))

    def outcome_from(self, code):
        outcome = self._exit_outcome(code)
        outcome.finished_at = round(time.time(), 3)
        return outcome

    def _exit_outcome(self, code):
        duration = time.monotonic() - self.launched
        record = None
        if code == 0 and os.path.exists(self.record_path):
            with open(self.record_path, encoding="utf-8") as handle:
                record = json.load(handle)
        if code == 0:
            from releasekit.publishing.pointers import notes  # pointers it left alone: the run's table shows them

            said = "; ".join(notes(record)) if record else ""
            return Outcome(self.label, "release", "published", duration, self.log_path, record=record,
                           reason=said or None)
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            last = [line.strip() for line in handle if line.strip()][-1:] or ["exit code {}".format(code)]
        status = "refused" if code == RefusedError.exit_code else "failed"  # refused: nothing was written
        return Outcome(self.label, "release", status, duration, self.log_path, reason=redact(last[0])[:500])


def executable_of(label, outputs):
    """The release executable among a release target's outputs: the file named like the target. A target of another
    repository (`@repo//pkg:name`, `@@repo//...`) has its outputs under that repository's directory (`external/repo/`
    in Bazel's account of them, under whatever name the repository has there), so its path ends like the label."""
    package, name = label.split("//", 1)[-1].split(":", 1)
    wanted = "/".join(p for p in (package, name) if p)
    if wanted in outputs:
        return outputs[wanted]
    if not label.startswith("//"):
        ending = [path for output_name, path in outputs.items() if output_name.endswith("/" + wanted)]
        if len(ending) == 1:
            return ending[0]
    raise UsageError("{} built, but its executable {} is not among its outputs.".format(label, wanted))
