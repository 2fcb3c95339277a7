"""What one commit costs an arm's agent, measured from outside it, the same way for every arm.

- CPU seconds: every process the arm started (rusage of the children this harness waited for) and its Bazel servers.
  A Bazel server is nobody's child (its client lets it go), so the harness makes itself the subreaper of its
  descendants (Reaper): a server that stops becomes its child, and waiting for it adds its CPU, and its actions', to
  the harness's children rusage. A server still running at the end of the commit is read from /proc/<pid>/stat (its
  time and its waited-for children's), less what it had spent when the commit began.
- Peak memory: the Bazel servers' peak resident set (VmHWM; a warm server's is reset at the start of each commit)
  and the largest of the arm's other processes (ru_maxrss of the commands the harness waited for).
- Bytes: pulled from the remote cache and pushed to it (the arm's nginx access log: bodies of successful GETs of
  /cache/, request bodies of PUTs), pushed to the stores (other PUTs: jars, deploy YAML, target graphs, run history)
  and to the registry (what the container release records say they uploaded).
- The agent's footprint after the commit: Bazel servers running, git worktrees, base checkouts, bytes on disk.
"""

import ctypes
import dataclasses
import os
import resource
import signal
import subprocess
import threading
import time

PR_SET_CHILD_SUBREAPER = 36
_TICKS = os.sysconf("SC_CLK_TCK")


class Reaper:
    """Makes the harness the subreaper of its descendants, and waits for every Bazel server that stops: a server
    stopped by `bazel shutdown` (collect's of the base revision) is gone, for the client waiting on it, only once its
    parent has waited for it. Waiting adds its CPU, and that of the actions it ran, to the harness's children rusage;
    its peak memory is kept, with when it stopped."""

    def __init__(self):
        self.stopped = []  # (when, peak MB)
        self.active = False
        try:
            self.active = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            pass
        if self.active:
            threading.Thread(target=self._loop, name="reaper", daemon=True).start()

    def _loop(self):
        while True:
            for pid in _children():
                fields = _stat(pid)
                if fields is None or fields[0] != b"Z" or _comm(pid) != b"java":
                    continue  # the harness's own children are waited for by whoever started them
                try:
                    _, _, usage = os.wait4(pid, os.WNOHANG)
                except ChildProcessError:
                    continue
                self.stopped.append((time.time(), usage.ru_maxrss / 1024.0))
            time.sleep(0.05)

    def peak_since(self, when):
        return max([peak for stopped, peak in list(self.stopped) if stopped >= when] + [0.0])


REAPER = None


def become_subreaper():
    """True when stopped Bazel servers will be this process's to wait for (Linux 3.4 and later)."""
    global REAPER
    REAPER = REAPER or Reaper()
    return REAPER.active


def _children():
    found = []
    try:
        for task in os.listdir("/proc/self/task"):
            with open("/proc/self/task/{}/children".format(task)) as handle:
                found += [int(pid) for pid in handle.read().split()]
    except OSError:
        pass
    return found


def _comm(pid):
    try:
        with open("/proc/{}/comm".format(pid), "rb") as handle:
            return handle.read().strip()
    except OSError:
        return b""


def _stat(pid):
    try:
        with open("/proc/{}/stat".format(pid), "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _cpu(fields):
    return sum(int(value) for value in fields[11:15]) / _TICKS  # utime, stime, cutime, cstime


def servers_of(agent_root):
    """{pid: CPU seconds so far} of the running Bazel servers whose output user root is agent_root."""
    wanted = ("--output_user_root=" + agent_root).encode() + b"\0"
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/{}/cmdline".format(pid), "rb") as handle:
                arguments = handle.read()
        except OSError:
            continue
        if wanted not in arguments or b"--workspace_directory=" not in arguments:  # a server, not a client
            continue
        fields = _stat(pid)
        if fields is not None and fields[0] != b"Z":
            found[int(pid)] = _cpu(fields)
    return found


def _peak_rss_mb(pid):
    try:
        with open("/proc/{}/status".format(pid)) as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _reset_peak_rss(pid):
    try:
        with open("/proc/{}/clear_refs".format(pid), "w") as handle:
            handle.write("5")  # resets VmHWM (Linux 4.0 and later)
    except OSError:
        pass


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_measured(command, **popen):
    """subprocess.run for the arm's commands, with the peak RSS of the command's tree: (returncode, peak MB).
    Output goes to files (popen's stdout, stderr), so that the harness can wait for the process itself."""
    process = subprocess.Popen(command, **popen)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024.0


@dataclasses.dataclass
class Meter:
    """One commit of one arm, from begin() to end()."""

    agent_root: str
    access_log: str
    peak_other_mb: float = 0.0

    def begin(self):
        self.began = time.time()
        self.children_at_start = children_cpu()
        self.servers_at_start = servers_of(self.agent_root)
        for pid in self.servers_at_start:
            _reset_peak_rss(pid)
        self.log_offset = os.path.getsize(self.access_log) if os.path.exists(self.access_log) else 0
        self.peak_other_mb = 0.0

    def note_command(self, peak_mb):
        self.peak_other_mb = max(self.peak_other_mb, peak_mb)

    def end(self):
        """The commit's costs, as a dict (before any server of a cold agent is stopped)."""
        stopped_peak = REAPER.peak_since(self.began) if REAPER else 0.0
        children = children_cpu() - self.children_at_start
        running = servers_of(self.agent_root)
        servers = sum(cpu - self.servers_at_start.get(pid, 0.0) for pid, cpu in running.items())
        # A server that ran when the commit began and stopped during it was reaped whole: its past is not ours.
        servers -= sum(cpu for pid, cpu in self.servers_at_start.items() if pid not in running)
        bazel_peak = max([_peak_rss_mb(pid) for pid in running] + [stopped_peak])
        time.sleep(0.1)  # nginx logs a request once it has answered it: let the last lines land
        pulled, pushed_cache, pushed_stores = self._bytes()
        return {"cpu_seconds": round(children + servers, 2), "bazel_server_peak_mb": round(bazel_peak),
                "other_peak_mb": round(self.peak_other_mb), "cache_pulled_bytes": pulled,
                "cache_pushed_bytes": pushed_cache, "store_pushed_bytes": pushed_stores}

    def _bytes(self):
        pulled = pushed_cache = pushed_stores = 0
        with open(self.access_log, "rb") as handle:
            handle.seek(self.log_offset)
            for line in handle.read().decode("utf-8", "replace").splitlines():
                parts = line.split()
                if len(parts) < 3:
                    continue
                fields = dict(part.split("=", 1) for part in parts[3:] if "=" in part)
                method, uri = parts[1], parts[2]
                sent = _number(fields.get("sent"))
                body = _number(fields.get("body")) or _number(fields.get("received"))  # chunked: the whole request
                if uri.startswith("/cache/"):
                    if method == "GET" and fields.get("status", "").startswith("2"):  # a miss pulls nothing
                        pulled += sent
                    elif method == "PUT":
                        pushed_cache += body
                elif method == "PUT":
                    pushed_stores += body
        return pulled, pushed_cache, pushed_stores


def _number(text):
    return int(text) if text and text.isdigit() else 0


def stop_servers(agent_root):
    """Kill the agent's Bazel servers, as an ephemeral agent's end does, and wait until they are gone (uncounted)."""
    killed = list(servers_of(agent_root))
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 20
    while any(os.path.exists("/proc/{}".format(pid)) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.02)


def footprint(agent_root, repo, home_cache):
    """What a persistent agent keeps after a commit: servers running, worktrees, base checkouts, bytes on disk."""
    worktrees = subprocess.run(["git", "-C", repo, "worktree", "list", "--porcelain"], capture_output=True, text=True)
    base_checkouts = os.path.join(home_cache, "releasekit", "base-checkouts")
    releasekit_cache = os.path.join(home_cache, "releasekit")
    return {"servers": len(servers_of(agent_root)),
            "worktrees": sum(1 for line in worktrees.stdout.splitlines() if line.startswith("worktree ")),
            "base_checkouts": len(os.listdir(base_checkouts)) if os.path.isdir(base_checkouts) else 0,
            "disk_bytes": disk_bytes(agent_root) + disk_bytes(repo),
            "releasekit_cache_bytes": disk_bytes(releasekit_cache, skip=("base-checkouts",)),
            "bazel_output_bytes": disk_bytes(agent_root, skip=("home-cache",))}


def disk_bytes(root, skip=()):
    """Bytes of the files under root (not following links; the names in skip at its top left out)."""
    total = 0
    for directory, directories, files in os.walk(root):
        if directory == root:
            directories[:] = [d for d in directories if d not in skip]
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except OSError:
                pass
    return total
