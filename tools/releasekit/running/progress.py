"""Progress of a run on the terminal: a live status line on a terminal, plain lines in CI logs."""

import sys
import threading


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

    def note(self, line):
        with self.lock:
            self._emit(line)

    def close(self):
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()
