"""The deploy artifact: deploy YAML and the container releases its images come from."""

load(":paths.bzl", "label_text", "runfiles_path")
load(":providers.bzl", "ReleaseArtifactInfo")
load(":tool.bzl", "RELEASEKIT_TOOL_ATTRS", "run_releasekit")

def _deploy_artifact_impl(ctx):
    images = {}
    for target, placeholders in ctx.attr.images.items():
        info = target[ReleaseArtifactInfo] if ReleaseArtifactInfo in target else None
        if info == None or info.kind != "container":
            fail("{}: attribute images: {} (for '{}') is not a container_release. Map each placeholder to the name of a container_release target.".format(
                label_text(ctx.label),
                label_text(target.label),
                placeholders,
            ))
        for placeholder in placeholders.split(","):
            if not placeholder:
                fail("{}: attribute images: an empty placeholder for {}.".format(label_text(ctx.label), label_text(target.label)))
            images[placeholder] = label_text(target.label)
    manifests = ctx.files.manifests
    if not manifests:
        fail("{}: attribute manifests: no YAML files given.".format(label_text(ctx.label)))
    for f in manifests:
        if not (f.basename.endswith(".yaml") or f.basename.endswith(".yml")):
            fail("{}: attribute manifests: {} is not a .yaml or .yml file.".format(label_text(ctx.label), f.short_path))
    seen = {}
    for f in manifests:
        if f.basename in seen:
            fail("{}: attribute manifests: two files are named {}; they would overwrite each other where they are published.".format(label_text(ctx.label), f.basename))
        seen[f.basename] = True
    checked = ctx.actions.declare_file(ctx.label.name + ".deploy_check.json")
    arguments = [
        "deploy-check",
        "--label",
        label_text(ctx.label),
        "--out",
        checked.path,
        "--platform",
        ctx.attr.platform,
        "--kubernetes-version",
        ctx.attr.kubernetes_version,
    ]
    for f in manifests:
        arguments += ["--manifest", f.path, "--display", f.short_path]
    for placeholder, label in images.items():
        arguments += ["--placeholder", "{}={}".format(placeholder, label)]
    if ctx.file.schema and ctx.attr.platform != "generic":
        fail("{}: attribute schema: a JSON Schema checks platform = \"generic\" deploy YAML; Kubernetes kinds are checked against the Kubernetes schemas, and custom kinds against their CRDs (attribute crds).".format(label_text(ctx.label)))
    if ctx.files.crds and ctx.attr.platform != "kubernetes":
        fail("{}: attribute crds: CustomResourceDefinitions check Kubernetes custom resources; for platform = \"generic\", give a JSON Schema in attribute schema.".format(label_text(ctx.label)))
    for f in ctx.files.crds:
        arguments += ["--crd", f.path, "--crd-display", f.short_path]
    if ctx.file.schema:
        arguments += ["--schema", ctx.file.schema.path, "--schema-display", ctx.file.schema.short_path]
    for spec in ctx.attr.image_fields:
        kind, _, path = spec.partition(":")
        if not kind or not path or "" in path.split("/") or "[]" in path.split("/"):
            fail("{}: attribute image_fields: '{}' is not a field spec; write Kind:path/to/field, with [] after a list for every item or [key=value] for the items whose key has that value, e.g. 'ExampleService:spec/sidecars[]/image' or 'Deployment:spec/template/spec/containers[]/env/[name=RELATED_IMAGE_DB]/value'.".format(label_text(ctx.label), spec))
        arguments += ["--image-field", spec]
    run_releasekit(
        ctx,
        inputs = manifests + ctx.files.crds + ctx.files.schema,
        outputs = [checked],
        arguments = arguments,
        mnemonic = "ReleaseDeployCheck",
        progress_message = "Checking deploy YAML of {}".format(label_text(ctx.label)),
    )
    return [
        DefaultInfo(files = depset([checked])),
        ReleaseArtifactInfo(
            kind = "deploy",
            fields = {
                "files": [runfiles_path(ctx, f) for f in manifests],
                "image_fields": ctx.attr.image_fields,
                "images": images,
                "name": ctx.label.name,
                "package": ctx.label.package,
                "platform": ctx.attr.platform,
            },
            files = depset(manifests + [checked]),
        ),
    ]

deploy_artifact = rule(
    implementation = _deploy_artifact_impl,
    attrs = dict(RELEASEKIT_TOOL_ATTRS, **{
        "crds": attr.label_list(
            allow_files = [".yaml", ".yml"],
            doc = "CustomResourceDefinition files (apiextensions.k8s.io/v1): every custom resource in manifests is checked against the structural schema of its served version as the API server checks it (unknown fields, nulls, defaults, formats, patterns as RE2, list types, CEL rules). CRDs within manifests count too.",
        ),
        "image_fields": attr.string_list(
            doc = "Image fields beyond every `image:` key: 'Kind:path/to/field' with [] after a list for every item (kustomize's field specs), or [key=value] for the items whose key has that value (kustomize's list entry identifier), e.g. 'ExampleService:spec/sidecars[]/image' or 'Deployment:spec/template/spec/containers[]/env/[name=RELATED_IMAGE_DB]/value'. Their placeholders are pinned like pod images.",
        ),
        "images": attr.label_keyed_string_dict(
            doc = "container_release target -> the comma-separated placeholders (or image names) that stand for it in the YAML (deploy_release takes them as placeholder -> target).",
        ),
        "kubernetes_version": attr.string(
            default = "1.30.0",
            doc = "The Kubernetes version whose schemas the YAML is validated against (and whose CRD formats are checked).",
        ),
        "manifests": attr.label_list(
            mandatory = True,
            allow_files = [".yaml", ".yml"],
            doc = "Deploy YAML files; multi-document files are fine.",
        ),
        "platform": attr.string(
            default = "kubernetes",
            values = ["kubernetes", "generic"],
            doc = "'kubernetes': every document is validated against the Kubernetes schemas (custom kinds against their CRDs) at build time; 'generic': YAML for other CD systems (VM fleets), validated against attribute schema when given.",
        ),
        "schema": attr.label(
            allow_single_file = [".json"],
            doc = "For platform 'generic': a JSON Schema every document is validated against at build time.",
        ),
    }),
    doc = "Checks deploy YAML at build time: it parses, every placeholder is used, every image is a placeholder or pinned by digest, and (for Kubernetes) every document is schema-valid.",
)
