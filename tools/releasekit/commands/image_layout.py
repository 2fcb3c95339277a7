"""releasekit image-layout: assemble a deterministic single-layer OCI layout from files (image_layout's action)."""

NAME = "image-layout"
HELP = "assemble an OCI layout from files"
BUILD_ACTION = True


def add_arguments(parser):
    parser.add_argument("--spec", required=True)
    parser.add_argument("--out", required=True)


def run(args):
    from releasekit.publishing.layout_builder import build_layout_from_spec

    build_layout_from_spec(args.spec, args.out)
    return 0
