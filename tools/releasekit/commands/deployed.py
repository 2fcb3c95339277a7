"""releasekit deployed: what a CD system reads for a deploy release, and whether it is all there."""

from releasekit.commands.options import config_option

NAME = "deployed"
HELP = "what a CD system reads for a deploy release, and if it is all there"


def add_arguments(parser):
    parser.add_argument("label", help="the deploy_release, //package:name")
    parser.add_argument("--channel", default="ci", choices=["ci", "dev"])
    parser.add_argument("--version", default="latest", help="a version, or latest (what the pointer names)")
    parser.add_argument("--from", dest="source", default="store", choices=["store", "registry"],
                        help="read the deploy store (default) or the channel's deploy_registry (the OCI artifact)")
    config_option(parser, "releasekit.yaml to read the destinations from")


def run(args):
    from releasekit.core.redact import redact
    from releasekit.core.run_context import PUBLISHING, RunContext
    from releasekit.publishing.deployed import deployed

    context = RunContext.load(PUBLISHING, args.config, required=True)
    lines, complete = deployed(args.label, args.channel, args.version, context, args.source)
    print(redact("\n".join(lines)))
    return 0 if complete else 1
