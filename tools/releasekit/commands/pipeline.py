"""releasekit pipeline: a sharded pipeline for Buildkite or GitHub Actions, test shards before release shards, that
runs as generated (docs/running.md)."""

from releasekit.commands.options import add_option
from releasekit.core import environment

NAME = "pipeline"
HELP = "emit a sharded pipeline for Buildkite or GitHub Actions"


def add_arguments(parser):
    from releasekit.running.pipeline import ENGINES

    parser.add_argument("--format", required=True, choices=sorted(ENGINES))
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--main-branch", default="main", help="the branch releases publish from (default main)")
    parser.add_argument("--base", help="a revision every run collects from (default: computed per run: a pull "
                        "request's base, the last passed main-line run, the merge base, else everything)")
    parser.add_argument("--releasekit", default="@rules_release//tools:releasekit",
                        help="releasekit's Bazel label (built with `bazel run --script_path`; the default), or a "
                             "command on the agent's PATH")
    parser.add_argument("--install", help="with --releasekit COMMAND: the command that installs it on a fresh agent")
    parser.add_argument("--quarantine", metavar="auto|FILE|none",
                        help="the test jobs' quarantine (default: auto when there is a run history)")
    parser.add_argument("--history", metavar="URL", help="the run history (default: releasekit.yaml's history)")
    add_option(parser, "--config", variable=environment.CONFIG,
               help="the releasekit.yaml whose destinations' credentials the jobs take")
    parser.add_argument("--bazel", default="bazel", help="the agents' Bazel command (default bazel)")


def run(args):
    import os

    from releasekit.core.run_context import RUNNING, RunContext
    from releasekit.running.pipeline import Settings, render

    config = RunContext.load(RUNNING, args.config, workspace=os.getcwd()).config
    print(render(args.format, Settings(args.shards, args.main_branch, args.releasekit, args.install, config,
                                       args.quarantine, args.history, args.bazel, args.base)), end="")
    return 0
