"""The deploy_release macro."""

load(":deploy.bzl", "deploy_artifact")
load(":macros.bzl", "check_attributes", "check_name", "release_pair", "where")

def _absolute(label):
    """'//pkg' -> '//pkg:pkg', ':name' -> '//this/pkg:name', so that a .ci/.dev suffix can be added."""
    if label.startswith(":"):
        return "//{}{}".format(native.package_name(), label)
    if ":" not in label.split("//")[-1]:
        return "{}:{}".format(label, label.split("/")[-1])
    return label

def deploy_release(name, manifests = None, images = {}, image_fields = [], platform = "kubernetes", kubernetes_version = "1.30.0", crds = [], schema = None, tags = [], visibility = None, **kwargs):
    """Publishes deploy YAML for CD systems after the images it references, pinned by digest.

    Declares `<name>` (the checked YAML), `<name>.ci` and `<name>.dev`. The CI variant depends
    on the CI variants of the images, the dev variant on their dev variants.

    Args:
      name: base name.
      manifests: YAML files (multi-document allowed).
      images: {placeholder: container_release target}; a placeholder is what an `image:` field
        says in the YAML (alone, or with a :tag), replaced by registry/repository@sha256:digest.
      image_fields: image fields beyond every `image:` key, as "Kind:path/to/field" with [] after
        a list for every item, or [key=value] for the items whose key has that value (e.g.
        "ExampleService:spec/sidecars[]/image",
        "Deployment:spec/template/spec/containers[]/env/[name=RELATED_IMAGE_DB]/value").
        A placeholder in any other string value fails the build.
      platform: "kubernetes" (validated against the Kubernetes schemas) or "generic".
      kubernetes_version: the Kubernetes version to validate against.
      crds: CustomResourceDefinition files that custom kinds in manifests are checked against, as
        the API server checks them (CEL rules included).
      schema: for platform "generic", a JSON Schema file every document is validated against.
      tags: Bazel tags of the three targets.
      visibility: visibility of the three targets.
      **kwargs: common attributes (testonly, target_compatible_with, ...) of the three targets.
    """
    check_name(name)
    check_attributes(name, "deploy_release", ["name", "manifests", "images", "image_fields", "platform", "kubernetes_version", "crds", "schema", "tags", "visibility"], kwargs, {"manifests": manifests})
    resolved = {}
    for placeholder, label in images.items():
        if type(label) != "string":
            fail("{}: attribute images: the value for '{}' must be a label string.".format(where(name), placeholder))
        resolved[placeholder] = _absolute(label)

    # One key per image; several placeholders may stand for the same image.
    placeholders_by_image = {}
    for placeholder, label in sorted(resolved.items()):
        placeholders_by_image[label] = placeholders_by_image.get(label, []) + [placeholder]
    deploy_artifact(
        name = name,
        manifests = manifests,
        images = {label: ",".join(placeholders) for label, placeholders in placeholders_by_image.items()},
        image_fields = image_fields,
        platform = platform,
        kubernetes_version = kubernetes_version,
        crds = crds,
        schema = schema,
        tags = tags,
        visibility = visibility,
        **kwargs
    )
    release_pair(
        name,
        ":" + name,
        tags,
        visibility,
        release_deps_ci = [label + ".ci" for label in placeholders_by_image],
        release_deps_dev = [label + ".dev" for label in placeholders_by_image],
        **kwargs
    )
