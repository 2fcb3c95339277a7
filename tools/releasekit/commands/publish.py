"""releasekit publish: publish one release manifest, what a release target runs (or the fork server forks)."""

import os

from releasekit.commands.options import add_option, config_option
from releasekit.core import environment

NAME = "publish"
HELP = "publish one release (what a release target runs)"


def add_arguments(parser):
    parser.add_argument("--manifest", required=True, help="the release manifest the target's build wrote")
    add_option(parser, "--runfiles", help="runfiles directory the manifest's paths are relative to (else "
               "RUNFILES_DIR, else the current directory)")
    config_option(parser)
    add_option(parser, "--dry-run", action="store_true", variable=environment.DRY_RUN,
               help="check everything, publish nothing")
    parser.add_argument("--workers", type=int, default=4, help="blobs uploaded at once (default 4)")


def run(args):
    from releasekit.core.redact import redact
    from releasekit.core.startup import signal_started
    from releasekit.publishing.publisher import PublishOptions, publish, summary_line

    signal_started(os.environ)
    runfiles = args.runfiles or os.environ.get("RUNFILES_DIR") or os.getcwd()
    dry_run = args.dry_run or environment.DRY_RUN.is_true(os.environ)
    record = publish(args.manifest, PublishOptions(runfiles_dir=runfiles, config_path=args.config, dry_run=dry_run,
                                                   workers=args.workers))
    print(redact(summary_line(record)))
    return 0


def preload():
    """What every release imports, loaded once by the fork server before it forks them."""
    import releasekit.publishing.publisher  # noqa: F401  (the publisher and what it imports)
    from releasekit.publishing.kinds import import_built_in_kinds

    import_built_in_kinds()
