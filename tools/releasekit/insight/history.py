"""The run history: one immutable object per CI run in a store the project already speaks (core/stores: an HTTP
store must serve directory indexes), so that ephemeral CI machines share it.

Objects are only ever created, each under a name of its own (run_record.object_name), so concurrent writers
cannot lose a run. Reading lists one directory per day of the window (a page of names per request) and
fetches the objects in parallel. A run never fails because of its history: a record the store did not take
stays in the run's logs and goes with the next run that can reach the store.
"""

import collections
import concurrent.futures
import datetime
import json
import os

from releasekit.core.errors import ConflictError, ReleasekitError, StoreError
from releasekit.core.http import RetryPolicy
from releasekit.core.jsonio import write_atomic
from releasekit.core.redact import redact
from releasekit.insight import run_record

PARALLEL_READS = 16
READ_AHEAD = 64
# A CI run's upload gives up sooner than a release would: the run matters more than its history.
RUN_UPLOAD_POLICY = RetryPolicy(attempts=3, total_seconds=20.0, timeout=15.0)
# How far back a run reads for each test's own window of runs, in windows: a test that rarely runs has fewer.
READ_WINDOWS = 10


class History:
    """The run history in a store (core/stores), which the run context opened for it."""

    def __init__(self, store):
        self.store = store

    def describe(self, name=""):
        return self.store.describe(name)

    def append(self, record):
        """Create the run's object; returns its name."""
        name = run_record.object_name(record)
        data = redact(json.dumps(record, separators=(",", ":"))).encode("utf-8")
        self.store.put(name, data, if_none_match=True)
        return name

    def names(self, since=None, until=None):
        """The names of the runs that started in [since, until) (datetimes, UTC), oldest first."""
        names = []
        for day in self.store.list("runs"):
            day = day.rstrip("/")
            if _day_in_window(day, since, until):
                names += ["runs/{}/{}".format(day, name) for name in self.store.list("runs/" + day)
                          if name.endswith(".json")]
        return sorted(names, key=lambda name: name.rsplit("/", 1)[1])

    def read(self, names):
        """(name, record or None, why it was skipped) for each name, in order. Reads run in parallel, at most
        READ_AHEAD objects ahead of the caller: the history is never all in memory at once."""
        with concurrent.futures.ThreadPoolExecutor(PARALLEL_READS) as pool:
            ahead = collections.deque()
            for name in names:
                ahead.append((name, pool.submit(self._get, name)))
                if len(ahead) >= READ_AHEAD:
                    yield _parsed(*ahead.popleft())
            while ahead:
                yield _parsed(*ahead.popleft())

    def _get(self, name):
        try:
            content, _ = self.store.get(name)
            return content if content is not None else StoreError("gone before it was read")
        except ReleasekitError as error:
            return error

    def runs_by_test(self, tests, window, days=30, now=None):
        """(runs, note): quarantine.runs_by_test() of the tests, each with its own last `window` CI runs when the
        history has them. Read newest first, from the last `days` days, at most READ_WINDOWS windows of runs; the
        note says when that left a test with fewer runs than the window."""
        from releasekit.insight import quarantine

        now = now or datetime.datetime.now(datetime.timezone.utc)
        names = self.names(since=now - datetime.timedelta(days=days))
        newest_first = names[::-1][:READ_WINDOWS * window]
        wanted, runs, read = set(tests), {}, 0
        for _, record, _ in self.read(newest_first):
            read += 1
            if record is not None:
                quarantine.add_test_runs(runs, record, wanted)
                if all(len(runs.get(test, ())) >= window for test in wanted):
                    break
        runs = {test: entries[::-1] for test, entries in runs.items()}  # oldest first
        short = [test for test in wanted if test in runs and len(runs[test]) < window]
        note = None
        if read < len(names) and short:
            note = "read the last {} runs of the history; {} tests ran fewer than {} times in them".format(
                read, len(short), window)
        return runs, note


def _parsed(name, future):
    content = future.result()
    if isinstance(content, Exception):
        return name, None, str(content)
    try:
        data = json.loads(content)
    except ValueError:
        return name, None, "not JSON"
    why = run_record.check_record(data)
    return name, (None if why else data), why


def _day_in_window(day, since, until):
    try:
        start = datetime.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return False  # not a day directory: not the history's
    end = start + datetime.timedelta(days=1)
    return (since is None or end > since) and (until is None or start < until)


def record_run(open_store, record, report_dir):
    """Append the run to the history, with the records earlier runs could not send; never raises. open_store(): the
    history's store (opening it may fail too).

    Returns a line for the run's output."""
    pending = run_record.pending_directory(report_dir)
    try:
        history = History(open_store())
        name = history.append(record)
        sent = _send_pending(history, pending)
        return "history: {}{}".format(history.describe(name), " (and {} earlier runs)".format(sent) if sent else "")
    except (ReleasekitError, OSError) as error:
        path = os.path.join(pending, os.path.basename(run_record.object_name(record)))
        try:
            write_atomic(path, redact(json.dumps(record, separators=(",", ":"))))
        except OSError as write_error:
            return "history: not written ({}; nor kept locally: {})".format(error, write_error)
        return "history: not written ({}); kept in {} and sent with the next run".format(error, path)


def _send_pending(history, pending):
    sent = 0
    for name in sorted(os.listdir(pending)) if os.path.isdir(pending) else []:
        path = os.path.join(pending, name)
        with open(path, encoding="utf-8") as handle:
            try:
                record = json.load(handle)
            except ValueError:
                continue  # half-written by a run that was killed: the reader would skip it too
        try:
            history.append(record)
        except ConflictError:
            pass  # sent before, though its run did not hear back: the object is there
        os.unlink(path)
        sent += 1
    return sent
