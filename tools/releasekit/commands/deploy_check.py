"""releasekit deploy-check: check deploy YAML as the API server (or the generic schema) would, and its images."""

NAME = "deploy-check"
HELP = "check deploy YAML"
BUILD_ACTION = True


def add_arguments(parser):
    parser.add_argument("--manifest", action="append", required=True)
    parser.add_argument("--display", action="append", required=True)
    parser.add_argument("--placeholder", action="append", default=[], help="PLACEHOLDER=IMAGE_LABEL")
    parser.add_argument("--platform", required=True)
    parser.add_argument("--kubernetes-version", required=True)
    parser.add_argument("--image-field", action="append", default=[], help="KIND:path/to/field of a custom kind")
    parser.add_argument("--crd", action="append", default=[], help="a CustomResourceDefinition file")
    parser.add_argument("--crd-display", action="append", default=[])
    parser.add_argument("--schema", help="the JSON Schema of platform generic")
    parser.add_argument("--schema-display")
    parser.add_argument("--label", required=True)
    parser.add_argument("--out", required=True)


def run(args):
    from releasekit.publishing.deploy_yaml import check_files

    result = check_files(args.manifest, args.display, dict(item.split("=", 1) for item in args.placeholder),
                         args.platform, args.kubernetes_version, args.label, args.image_field, args.out, args.crd,
                         args.crd_display, args.schema, args.schema_display)
    for kind, why in (("unchecked", "not checked"), ("not_applicable", "not applicable")):
        for rule in result["cel_rules"][kind]:
            print("{}: note: CEL rule {!r} at {} {}: {}; the API server checks it on apply.".format(
                args.label, rule["rule"], rule["at"], why, rule["why"]))
    return 0
