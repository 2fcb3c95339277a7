"""The one subprocess runner: git and Bazel run through it, to completion, with their output captured."""

import subprocess


def run(command, missing, cwd=None, binary=False, env=None, timeout=None, input=None):
    """The CompletedProcess of command. missing: the error (a ReleasekitError) raised when the program is not
    installed, naming how to install it or where to point releasekit instead. input: what the command reads on its
    standard input."""
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=not binary, env=env, timeout=timeout,
                              input=input)
    except FileNotFoundError:
        raise missing from None
