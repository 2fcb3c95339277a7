"""A fork server for releases: one process that has already imported the publisher forks each release.

A release run as its own executable starts an interpreter and imports its HTTP stack: most of its CPU on a small
CI machine, where many releases start at once. Dispatch instead starts one server per run, with the releasekit
sources the release targets carry in their runfiles (the launcher names them), and asks it to fork each release
with that release's arguments, environment, working directory, log and start-up pipe. A release whose runfiles
hold other releasekit sources, or any failure to start the server, falls back to running the executable.

The server is single-threaded (fork-safe): it reads requests from a Unix packet socket (file descriptors travel
with them), forks, and reports each child's exit code back on the same socket. It exits when dispatch closes it.
"""

import json
import logging
import os
import re
import select
import socket
import sys
import threading

from releasekit.core import process
from releasekit.core.errors import ReleasekitError

_LAUNCHER_LINE_RE = re.compile(r"^# releasekit-(entry|manifest): (\S+)$", re.MULTILINE)


def launcher_paths(executable):
    """(entry, manifest, runfiles directory) of a release executable, as its launcher declares them, or None."""
    try:
        with open(executable, encoding="utf-8", errors="replace") as handle:
            declared = dict(_LAUNCHER_LINE_RE.findall(handle.read(4096)))
    except OSError:
        return None
    runfiles = executable + ".runfiles"
    if set(declared) != {"entry", "manifest"} or not os.path.isdir(runfiles):
        return None
    return os.path.join(runfiles, declared["entry"]), os.path.join(runfiles, declared["manifest"]), runfiles


class ForkServer:
    """Dispatch's end: start() forks one release in the server; wait() on what it returns gives the exit code."""

    def __init__(self, entry, log_path):
        """entry: the real path of the releasekit_entry.py whose sources the server imports. Raises OSError when
        the server does not come up (the caller then runs the executables)."""
        self.entry = entry
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        code = ("import sys; sys.path.insert(0, {!r}); from releasekit.running.forkserver import serve; "
                "serve({})").format(os.path.dirname(entry), theirs.fileno())
        with open(log_path, "w") as log:
            try:
                self.process = process.start([sys.executable, "-c", code], pass_fds=(theirs.fileno(),),
                                             stdin=process.DEVNULL, stdout=log, stderr=process.STDOUT)
            finally:
                theirs.close()
        self.socket = ours
        ours.settimeout(60)
        try:
            ready = ours.recv(64)
        except OSError:
            ready = b""
        ours.settimeout(None)
        if ready != b"ready":
            self.close()
            raise OSError("the fork server did not start; see {}".format(log_path))
        self.lock = threading.Lock()
        self.next_id = 0
        self.exits = {}  # request id -> [threading.Event, exit code, CPU seconds]
        self.reader = threading.Thread(target=self._read_exits, name="fork-server", daemon=True)
        self.reader.start()

    def serves(self, entry):
        return os.path.realpath(entry) == self.entry

    def start(self, argv, environ, cwd, log_fd, started_fd):
        with self.lock:
            self.next_id += 1
            request_id = self.next_id
            self.exits[request_id] = [threading.Event(), None, None]
            message = json.dumps({"id": request_id, "argv": argv, "env": environ, "cwd": cwd}).encode("utf-8")
            socket.send_fds(self.socket, [message], [log_fd, started_fd])
        return _Forked(self, request_id)

    def _read_exits(self):
        while True:
            try:
                message = self.socket.recv(4096)
            except OSError:
                message = b""
            if not message:  # the server is gone: every release it still held failed
                with self.lock:
                    for waiter in self.exits.values():
                        if waiter[1] is None:
                            waiter[1] = 1
                        waiter[0].set()
                return
            answer = json.loads(message)
            with self.lock:
                waiter = self.exits[answer["id"]]
            waiter[1], waiter[2] = answer["exit"], answer.get("cpu")
            waiter[0].set()

    def close(self):
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.socket.close()
        try:
            self.process.wait(timeout=30)
        except process.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class StartWhenBuilt:
    """Starts a fork server while Bazel still runs (the tests), from the first release executable the invocation's
    build event file shows built, so that its start-up overlaps the tests rather than delaying the first release.

    The event file must be this invocation's (the caller removes an earlier one first). finish() after Bazel exits
    returns the server, or None; the caller still checks that it serves each release's sources.
    """

    def __init__(self, build_events_path, releases, executable_of, log_path):
        self.path, self.releases = build_events_path, set(releases)
        self.executable_of, self.log_path = executable_of, log_path
        self.server = None
        self._bazel_done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="fork-server-start", daemon=True)
        self._thread.start()

    def _watch(self):
        try:
            self._follow()
        except Exception as error:  # an early server is a gain, never a failure: the releases start one as before
            logging.getLogger(__name__).info("no fork server started during the build: %s", error)

    def _follow(self):
        from releasekit.running.build_events import built_outputs

        events, partial, position = [], b"", 0
        while True:
            last_look = self._bazel_done.is_set()
            try:
                with open(self.path, "rb") as handle:
                    handle.seek(position)
                    chunk = handle.read()
            except OSError:
                chunk = b""
            position += len(chunk)
            *lines, partial = (partial + chunk).split(b"\n")
            built = []
            for line in lines:
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    return  # not a build event file this watcher can follow: the releases start the server
                events.append(event)
                label = event.get("id", {}).get("targetCompleted", {}).get("label")
                if label in self.releases and event.get("completed", {}).get("success"):
                    built.append(label)
            for label in built:
                try:
                    paths = launcher_paths(self.executable_of(label, built_outputs(events, [label]).get(label, {})))
                except ReleasekitError:  # no executable among its outputs: the releases report it
                    continue
                if paths:
                    try:
                        self.server = ForkServer(os.path.realpath(paths[0]), self.log_path)
                    except OSError:
                        pass
                    return
            if last_look:
                return
            self._bazel_done.wait(0.05)

    def finish(self):
        """Bazel has exited: take a last look at the events, and return the server started, or None."""
        self._bazel_done.set()
        self._thread.join()
        return self.server


class _Forked:
    """A release forked by the server, waited on like a process."""

    def __init__(self, server, request_id):
        self.server, self.request_id = server, request_id
        self.cpu_seconds = None  # once waited for: the release's CPU (its children's included), as the server saw it

    def wait(self):
        waiter = self.server.exits[self.request_id]
        waiter[0].wait()
        self.cpu_seconds = waiter[2]
        return waiter[1]


def wait_with_cpu(launched):
    """(exit code, CPU seconds of the release and its children, or None) of a launched release: forked by the server,
    or its own executable (a Popen, waited for here)."""
    if isinstance(launched, _Forked):
        code = launched.wait()
        return code, launched.cpu_seconds
    _, status, usage = os.wait4(launched.pid, 0)
    launched.returncode = os.waitstatus_to_exitcode(status)
    return launched.returncode, round(usage.ru_utime + usage.ru_stime, 3)


def serve(descriptor):
    """The server's loop (see the module docstring)."""
    from releasekit.commands import publish

    publish.preload()  # what every release imports, loaded once here

    server = socket.socket(fileno=descriptor)
    server.send(b"ready")
    children = {}
    while True:
        readable, _, _ = select.select([server], [], [], 0.02 if children else None)
        if readable:
            message, fds, _, _ = socket.recv_fds(server, 1 << 20, 2)
            if not message:
                return  # dispatch is done; children still running finish on their own
            request = json.loads(message)
            pid = os.fork()
            if pid == 0:
                server.close()
                _release(request, fds)
            for fd in fds:
                os.close(fd)
            children[pid] = request["id"]
        while children:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
            if pid == 0:
                break
            try:
                server.send(json.dumps({"id": children.pop(pid), "exit": os.waitstatus_to_exitcode(status),
                                        "cpu": round(usage.ru_utime + usage.ru_stime, 3)}).encode())
            except OSError:
                return


def _release(request, fds):
    """In the forked child: become the release (its log as stdout and stderr, its environment and directory),
    run the publish command (through the commands' one error handling path), and exit with its code. Never
    returns."""
    code = 1
    try:
        log_fd, started_fd = fds
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        from releasekit.commands import build_parser, publish, run_command
        from releasekit.core.environment import STARTED_FD

        os.environ[STARTED_FD.name] = str(started_fd)
        code = run_command(build_parser([publish], request["argv"]), request["argv"])
    except SystemExit as error:  # argparse's own exits
        code = error.code if isinstance(error.code, int) else 1
    except BaseException as error:  # the release's own last line of defence already ran; this is the server's
        print("releasekit: the fork server could not run the release: {}".format(type(error).__name__), file=sys.stderr)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)
