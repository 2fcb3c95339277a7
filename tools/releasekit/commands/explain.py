"""releasekit explain: why a target is selected by a change, or why not."""

import os

from releasekit.commands.options import selection_options

NAME = "explain"
HELP = "say why a target is selected, or why not"


def add_arguments(parser):
    parser.add_argument("label")
    selection_options(parser)


def run(args):
    from releasekit.selection.bazelquery import Bazel
    from releasekit.selection.collect import Collector
    from releasekit.selection.explain import explain

    workspace = os.path.abspath(args.workspace)
    collector = Collector(workspace, bazel=Bazel(workspace, command=args.bazel))
    try:
        print("\n".join(explain(collector, args.base, args.head, args.label)))
    finally:
        collector.close()
    return 0
