"""Waiting out a concurrent writer where a destination has no compare-and-swap (a registry's tags; an HTTP store with
neither locks nor conditional writes).

A release that read X and then wrote Y cannot tell whether another release also read X and is about to write Z over
Y. It can wait: when every release writes within G seconds of its last read, a release that waits longer than G
after its own write and then reads again sees any write that raced with its own, and decides again on it. Each
release keeps its own read-to-write gap short (it reads again right before writing when deciding took long: a git
fetch may take minutes) and waits settle_seconds(its gap): SETTLE_MARGIN times its gap, for another release's being
slower against the same server, and at least SETTLE_MINIMUM.

What it cannot cover: a write that the server commits more than the settle time after it was sent (a server that
stalls a request for seconds). publisher-gate.md says so, and the pipelines' concurrency control stays the second
line of defence.
"""

import random
import time

SETTLE_MINIMUM = 1.0  # seconds
SETTLE_MARGIN = 4
SETTLE_MAXIMUM = 30.0
REREAD_AFTER = 0.2  # a decision that took longer reads again right before writing


class Gap:
    """From a read to the end of the write that acted on it."""

    def __init__(self):
        self.read_at = time.monotonic()
        self.seconds = None

    def elapsed(self):
        return time.monotonic() - self.read_at

    def written(self):
        self.seconds = self.elapsed()
        return self.seconds


def settle_seconds(gap_seconds):
    return min(SETTLE_MAXIMUM, max(SETTLE_MINIMUM, SETTLE_MARGIN * (gap_seconds or 0.0)))


def wait(gap_seconds):
    """Sleep longer than a concurrent release's read-to-write gap can be."""
    time.sleep(settle_seconds(gap_seconds))


def back_off(attempt):
    """A short random pause before trying again after losing a race, growing with the attempts."""
    time.sleep(random.uniform(0.02, 0.1) * (attempt + 1))
