"""releasekit image-plan: check an image input (an OCI layout or a docker-save tarball) and write its plan."""

NAME = "image-plan"
HELP = "validate an image input and write its plan"
BUILD_ACTION = True


def add_arguments(parser):
    parser.add_argument("--image", required=True)
    parser.add_argument("--image-rlocation", required=True)
    parser.add_argument("--layers-out", help="directory for a docker-save tarball's layers, compressed")
    parser.add_argument("--label", required=True)
    parser.add_argument("--out", required=True)


def run(args):
    from releasekit.publishing.image import write_plan

    write_plan(args.image, args.image_rlocation, "{} (attribute image)".format(args.label), args.out, args.layers_out)
    return 0
