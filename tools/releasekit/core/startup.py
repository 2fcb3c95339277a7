"""How a release tells `releasekit dispatch` that it has finished starting up.

A release is a fresh Python process, and its start-up (importing its HTTP stack) is CPU
work: many at once on a small CI machine only slow each other down, while a release that
has started spends most of its time waiting on the network. So dispatch starts at most one
release per CPU at a time, and each release writes one byte to the pipe named by
environment.STARTED_FD once it is loaded, before its first network request. Standard
library only: both sides import it.
"""

import os

from releasekit.core.environment import STARTED_FD

STARTED_FD_VARIABLE = STARTED_FD.name


def signal_started(environ):
    """Tell the dispatcher this release has loaded. A no-op outside dispatch; never fails the release."""
    descriptor = environ.pop(STARTED_FD_VARIABLE, None)
    if not descriptor:
        return
    try:
        os.write(int(descriptor), b"S")
        os.close(int(descriptor))
    except (OSError, ValueError):
        pass  # the dispatcher is gone or the variable is stray: starting up is done either way


class StartedSignal:
    """The dispatcher's end: a pipe whose write end the release inherits."""

    def __init__(self):
        self._read_end, self.write_end = os.pipe()

    def release_launched(self):
        os.close(self.write_end)

    def abandon(self):
        """The release could not be launched: nobody will wait on the pipe."""
        os.close(self._read_end)

    def wait(self):
        """Block until the release has started up, or has exited; then close the pipe."""
        try:
            os.read(self._read_end, 1)
        finally:
            os.close(self._read_end)
