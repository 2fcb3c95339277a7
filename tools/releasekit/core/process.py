"""The one place releasekit starts programs: git, Bazel, the releases and the fork server. run() runs one to completion
with its output captured; start() leaves one running (a release, the fork server, a check in the background). A
program that is not installed raises the caller's error, which says how to install it or where to point instead."""

import subprocess

TimeoutExpired = subprocess.TimeoutExpired
PIPE, STDOUT, DEVNULL = subprocess.PIPE, subprocess.STDOUT, subprocess.DEVNULL


def run(command, missing, cwd=None, binary=False, env=None, timeout=None, input=None):
    """The CompletedProcess of command. missing: the error (a ReleasekitError) raised when the program is not
    installed, naming how to install it or where to point releasekit instead. input: what the command reads on its
    standard input."""
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=not binary, env=env, timeout=timeout,
                              input=input)
    except FileNotFoundError:
        raise missing from None


def start(command, missing=None, **options):
    """The running subprocess.Popen of command (options as Popen takes them). missing: as for run(); None lets the
    OSError through, for a caller that falls back to another way."""
    try:
        return subprocess.Popen(command, **options)
    except FileNotFoundError:
        if missing is None:
            raise
        raise missing from None
