"""releasekit pipeline: a sharded pipeline for Buildkite or GitHub Actions, test shards before release shards."""

NAME = "pipeline"
HELP = "emit a sharded pipeline for Buildkite or GitHub Actions"


def add_arguments(parser):
    from releasekit.running.pipeline import ENGINES

    parser.add_argument("--format", required=True, choices=sorted(ENGINES))
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--base", default="$BASE_COMMIT", help="the base revision the steps collect from")
    parser.add_argument("--head", default="$HEAD_COMMIT", help="the head revision")
    parser.add_argument("--releasekit", default="releasekit", help="how the steps call releasekit")
    parser.add_argument("--install", default="python3 -m pip install releasekit",
                        help="the command that installs releasekit on a fresh agent")


def run(args):
    from releasekit.running.pipeline import render

    print(render(args.format, args.shards, args.base, args.head, args.releasekit, args.install), end="")
    return 0
