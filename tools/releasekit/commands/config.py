"""releasekit config: check releasekit.yaml, as a run that publishes would, and show its destinations."""

from releasekit.commands.options import config_option

NAME = "config"
HELP = "check releasekit.yaml and show its destinations"


def add_arguments(parser):
    config_option(parser, "releasekit.yaml to check")


def run(args):
    from releasekit.core.run_context import PUBLISHING, RunContext

    config = RunContext.load(PUBLISHING, args.config, required=True).config
    print("config: {}".format(config.source))
    for channel, destinations in sorted(config.channels.items()):
        for kind, destination in sorted(destinations.items()):
            print("  {}.{}: {}{}{}".format(
                channel, kind, destination.text, " (insecure)" if destination.insecure else "",
                " (" + destination.credentials.describe() + ")" if destination.credentials else ""))
    return 0
