"""releasekit verify: check a release's signed provenance before rolling it out (publishing/verify.py)."""

from releasekit.commands.options import config_option

NAME = "verify"
HELP = "check a release's signed provenance before rolling it out: exit 0, or why not"


def add_arguments(parser):
    parser.add_argument("release", help="an image reference (host/repository:tag or @sha256:...), a Maven coordinate "
                        "group:artifact:version, or a deploy or file release's label //package:name")
    parser.add_argument("--key", required=True, help="the public key (PEM) CI releases are signed with")
    parser.add_argument("--repository", required=True, help="the repository releases must come from (its URL)")
    parser.add_argument("--branch", required=True, help="the branch releases must come from")
    parser.add_argument("--channel", default="ci", choices=["ci", "dev"], help="whose stores a label is read from")
    parser.add_argument("--version", default="latest", help="a label's version, or latest (what the pointer names)")
    parser.add_argument("--from", dest="source", default="store", choices=["store", "registry"],
                        help="a deploy release's YAML from its store (default) or the channel's deploy_registry")
    config_option(parser, "releasekit.yaml to read the destinations from")


def run(args):
    import os

    from releasekit.core.redact import redact
    from releasekit.publishing.verify import command

    print(redact("\n".join(command(args, os.environ))))
    return 0
