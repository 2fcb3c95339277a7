"""The CPU a run costs: this process and its children (their rusage), and the Bazel servers it used.

A Bazel server is no child of the run (the client that starts it lets it go), so its CPU is read from the kernel's
own accounting of it (/proc/<pid>/stat: its time and that of the actions it waited for), found by the workspace it
serves. Where there is no /proc, a run's figures leave the servers out and say so (bazel_seconds None).
"""

import dataclasses
import os
import resource
import time

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = "/proc"


def own_cpu_seconds():
    """User and system CPU seconds of this process and every child it has waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclasses.dataclass(frozen=True)
class ServerReading:
    pid: int
    cpu_seconds: float  # its own and its waited-for children's (the actions it ran), so far
    started: float  # seconds since the epoch


def bazel_server(workspace):
    """The ServerReading of the Bazel server serving this workspace, or None (none running, or no /proc)."""
    wanted = b"--workspace_directory=" + os.path.realpath(workspace).encode() + b"\0"
    try:
        pids = [name for name in os.listdir(_PROC) if name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(os.path.join(_PROC, pid, "cmdline"), "rb") as handle:
                if wanted not in handle.read():
                    continue
        except OSError:
            continue
        return process_reading(int(pid))
    return None


def process_reading(pid):
    """The ServerReading of any process, or None when it is gone."""
    try:
        with open(os.path.join(_PROC, str(pid), "stat"), "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command's name: state is field 3; utime, stime, cutime, cstime are 14-17; starttime is 22.
    ticks = sum(int(value) for value in fields[11:15])
    return ServerReading(pid, ticks / _TICKS, _boot_time() + int(fields[19]) / _TICKS)


def _boot_time():
    with open(os.path.join(_PROC, "stat"), "rb") as handle:
        for line in handle:
            if line.startswith(b"btime "):
                return int(line.split()[1])
    return 0


class RunCost:
    """CPU seconds of one run of dispatch, ci or pr, from its start to figures().

    The workspace's server is read at the start (a warm agent's server has a past) and at the end; a server that
    stops during the run (collect's server of the base revision) is read by stopping() just before it stops.
    """

    def __init__(self, workspace):
        self.workspace = workspace
        self.started = time.time()
        self.own_at_start = own_cpu_seconds()
        self.server_at_start = bazel_server(workspace)
        self.stopped_servers = 0.0
        self.proc = os.path.isdir(_PROC)

    def stopping(self, workspace):
        """A Bazel server this run used is about to stop: count what it spent since the run began."""
        self.stopped_servers += self._spent(bazel_server(workspace), None)

    def _spent(self, now, before):
        if now is None:
            return 0.0
        if before is not None and before.pid == now.pid:
            return max(0.0, now.cpu_seconds - before.cpu_seconds)
        # A server that started during the run: all of it is this run's. One older than the run, met only now
        # (started by another command meanwhile): none of it is known to be.
        return now.cpu_seconds if now.started >= self.started - 1 else 0.0

    def figures(self):
        """{"seconds", "releasekit", "bazel"}: in all, this process and its children, the Bazel servers (None
        without /proc to read them from)."""
        own = max(0.0, own_cpu_seconds() - self.own_at_start)
        if not self.proc:
            return {"seconds": round(own, 3), "releasekit": round(own, 3), "bazel": None}
        servers = self._spent(bazel_server(self.workspace), self.server_at_start) + self.stopped_servers
        return {"seconds": round(own + servers, 3), "releasekit": round(own, 3), "bazel": round(servers, 3)}
