"""The CPU a run costs: this process and its children (their rusage), and the Bazel servers it used.

A Bazel server is no child of the run (the client that starts it lets it go), so its CPU is read from the kernel's
own accounting of it (/proc/<pid>/stat: its time and that of the actions it waited for), found by the workspace it
serves. Where there is no /proc, a run's figures leave the servers out and say so ("bazel": None).
"""

import dataclasses
import os
import resource
import time

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = "/proc"
_WORKSPACE_OPTION = b"--workspace_directory="  # on a Bazel server's command line, not on its client's


def own_cpu_seconds():
    """User and system CPU seconds of this process and every child it has waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclasses.dataclass(frozen=True)
class ServerReading:
    pid: int
    cpu_seconds: float  # its own and its waited-for children's (the actions it ran), so far
    started: float  # seconds since the epoch


def bazel_servers():
    """{workspace (real path): ServerReading} of the Bazel servers running ({} without /proc)."""
    found = {}
    try:
        pids = [name for name in os.listdir(_PROC) if name.isdigit()]
    except OSError:
        return found
    for pid in pids:
        try:
            with open(os.path.join(_PROC, pid, "cmdline"), "rb") as handle:
                arguments = handle.read()
        except OSError:
            continue
        if _WORKSPACE_OPTION not in arguments:
            continue
        for argument in arguments.split(b"\0"):
            if argument.startswith(_WORKSPACE_OPTION):
                reading = process_reading(int(pid))
                if reading is not None:
                    found[os.fsdecode(argument[len(_WORKSPACE_OPTION):])] = reading
                break
    return found


def bazel_server(workspace):
    """The ServerReading of the Bazel server serving this workspace, or None (none running, or no /proc)."""
    return bazel_servers().get(os.path.realpath(workspace))


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

    The Bazel servers running are read at the start (a persistent agent's servers have a past) and each server the
    run used is read again: the workspace's at the end, collect's of the base revision by counted() when collect is
    done with it (before it stops, or as it is left running).
    """

    def __init__(self, workspace):
        self.workspace = os.path.realpath(workspace)
        self.started = time.time()
        self.own_at_start = own_cpu_seconds()
        self.servers_at_start = bazel_servers()
        self.other_servers = 0.0
        self.proc = os.path.isdir(_PROC)

    @property
    def persistent_agent(self):
        """The workspace's server was running when the run began: an agent that keeps its servers between runs."""
        return self.workspace in self.servers_at_start

    def counted(self, workspace):
        """Count what the server of another workspace (collect's of the base revision) spent during the run."""
        self.other_servers += self._spent(os.path.realpath(workspace))

    def _spent(self, workspace):
        now, before = bazel_server(workspace), self.servers_at_start.get(workspace)
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
        servers = self._spent(self.workspace) + self.other_servers
        return {"seconds": round(own + servers, 3), "releasekit": round(own, 3), "bazel": round(servers, 3)}
