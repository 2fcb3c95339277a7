"""releasekit jar-check: check that jars are readable zips."""

NAME = "jar-check"
HELP = "check that jars are readable zips"
BUILD_ACTION = True


def add_arguments(parser):
    parser.add_argument("--jar", action="append", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--out", required=True)


def run(args):
    from releasekit.publishing.maven import check_jars

    check_jars(args.jar, args.label, args.out)
    return 0
