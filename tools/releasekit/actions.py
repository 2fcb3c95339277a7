"""The build actions the rules run (their own entry point, apart from the user commands in cli.py): each checks
an input at build time and writes what the release reads when it runs."""

import argparse

from releasekit.commandline import run_command

ACTIONS = ("image-plan", "jar-check", "deploy-check", "image-layout")


def _image_plan(args):
    from releasekit.publishing.image import write_plan

    write_plan(args.image, args.image_rlocation, "{} (attribute image)".format(args.label), args.out, args.layers_out)
    return 0


def _jar_check(args):
    from releasekit.publishing.maven import check_jars

    check_jars(args.jar, args.label, args.out)
    return 0


def _deploy_check(args):
    from releasekit.publishing.deploy import check_files

    result = check_files(args.manifest, args.display, dict(item.split("=", 1) for item in args.placeholder),
                         args.platform, args.kubernetes_version, args.label, args.image_field, args.out, args.crd,
                         args.crd_display, args.schema, args.schema_display)
    for kind, why in (("unchecked", "not checked"), ("not_applicable", "not applicable")):
        for rule in result["cel_rules"][kind]:
            print("{}: note: CEL rule {!r} at {} {}: {}; the API server checks it on apply.".format(
                args.label, rule["rule"], rule["at"], why, rule["why"]))
    return 0


def _image_layout(args):
    from releasekit.publishing.layout_builder import build_layout_from_spec

    build_layout_from_spec(args.spec, args.out)
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="releasekit", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="ACTION")
    commands.required = True

    plan = commands.add_parser("image-plan", help="validate an image input and write its plan")
    plan.add_argument("--image", required=True)
    plan.add_argument("--image-rlocation", required=True)
    plan.add_argument("--layers-out", help="directory for a docker-save tarball's layers, compressed")
    plan.add_argument("--label", required=True)
    plan.add_argument("--out", required=True)
    plan.set_defaults(func=_image_plan)

    jar_check = commands.add_parser("jar-check", help="check that jars are readable zips")
    jar_check.add_argument("--jar", action="append", required=True)
    jar_check.add_argument("--label", required=True)
    jar_check.add_argument("--out", required=True)
    jar_check.set_defaults(func=_jar_check)

    deploy_check = commands.add_parser("deploy-check", help="check deploy YAML")
    deploy_check.add_argument("--manifest", action="append", required=True)
    deploy_check.add_argument("--display", action="append", required=True)
    deploy_check.add_argument("--placeholder", action="append", default=[], help="PLACEHOLDER=IMAGE_LABEL")
    deploy_check.add_argument("--platform", required=True)
    deploy_check.add_argument("--kubernetes-version", required=True)
    deploy_check.add_argument("--image-field", action="append", default=[], help="KIND:path/to/field of a custom kind")
    deploy_check.add_argument("--crd", action="append", default=[], help="a CustomResourceDefinition file")
    deploy_check.add_argument("--crd-display", action="append", default=[])
    deploy_check.add_argument("--schema", help="the JSON Schema of platform generic")
    deploy_check.add_argument("--schema-display")
    deploy_check.add_argument("--label", required=True)
    deploy_check.add_argument("--out", required=True)
    deploy_check.set_defaults(func=_deploy_check)

    layout = commands.add_parser("image-layout", help="assemble an OCI layout from files")
    layout.add_argument("--spec", required=True)
    layout.add_argument("--out", required=True)
    layout.set_defaults(func=_image_layout)
    return parser


def main(argv=None):
    return run_command(build_parser(), argv)
