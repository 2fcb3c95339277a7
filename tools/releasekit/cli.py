"""The releasekit command line: every command and build action (commands/), one parser, one error handling path."""

import sys
import time

from releasekit.commands import (build_parser, ci, collect, config, deploy_check, deployed, dispatch, explain,
                                 image_layout, image_plan, insight, jar_check, pipeline, pr, publish, run_command,
                                 verify)

# User commands in the order --help lists them, then the build actions the rules run.
COMMANDS = (publish, collect, explain, dispatch, ci, pr, pipeline, deployed, verify, insight, config,
            image_plan, jar_check, deploy_check, image_layout)


def main(argv=None):
    """The process entry point (console script, `python -m releasekit`, releasekit_entry.py)."""
    started = time.time()  # a CI run's wall time starts here, collect included
    argv = sys.argv[1:] if argv is None else argv
    return run_command(build_parser(COMMANDS, argv), argv, started=started)
