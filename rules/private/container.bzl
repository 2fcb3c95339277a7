"""The container artifact: an image input checked at build time and described by an image plan."""

load(":paths.bzl", "label_text", "runfiles_path")
load(":providers.bzl", "ReleaseArtifactInfo")
load(":tool.bzl", "RELEASEKIT_TOOL_ATTRS", "run_releasekit")

def _image_file(ctx):
    files = ctx.files.image
    if len(files) != 1:
        fail("{}: attribute image: expected exactly one OCI image layout directory or docker-save .tar, got {} files ({}). Point image at a single oci_image / image_layout target or one .tar.".format(
            label_text(ctx.label),
            len(files),
            ", ".join([f.short_path for f in files[:5]]) or "none",
        ))
    image = files[0]
    looks_like_layout = image.is_directory or (image.is_source and "." not in image.basename)
    if not looks_like_layout and not image.basename.endswith(".tar"):
        fail("{}: attribute image: {} is neither an OCI image layout directory nor a docker-save .tar. Use the output of oci_image, image_layout, oci_load or docker save.".format(
            label_text(ctx.label),
            image.short_path,
        ))
    return image

def _container_artifact_impl(ctx):
    image = _image_file(ctx)
    plan = ctx.actions.declare_file(ctx.label.name + ".image_plan.json")
    run_releasekit(
        ctx,
        inputs = [image],
        outputs = [plan],
        arguments = [
            "image-plan",
            "--image",
            image.path,
            "--image-rlocation",
            runfiles_path(ctx, image),
            "--label",
            label_text(ctx.label),
            "--out",
            plan.path,
        ],
        mnemonic = "ReleaseImagePlan",
        progress_message = "Checking image of {}".format(label_text(ctx.label)),
    )
    return [
        DefaultInfo(files = depset([plan])),
        ReleaseArtifactInfo(
            kind = "container",
            fields = {
                "image": runfiles_path(ctx, image),
                "plan": runfiles_path(ctx, plan),
                "repository": ctx.attr.repository,
                "tags": ctx.attr.remote_tags,
            },
            files = depset([image, plan]),
        ),
    ]

container_artifact = rule(
    implementation = _container_artifact_impl,
    attrs = dict(RELEASEKIT_TOOL_ATTRS, **{
        "image": attr.label(
            mandatory = True,
            allow_files = True,
            doc = "The image: an OCI image layout directory (oci_image, image_layout) or a docker-save tarball (.tar from oci_load, container_image or docker save).",
        ),
        "repository": attr.string(
            mandatory = True,
            doc = "Repository below the channel's registry, e.g. 'payments/api'.",
        ),
        "remote_tags": attr.string_list(
            doc = "Tags the CI release adds after the commit SHA.",
        ),
    }),
    doc = "Checks an image input at build time (structure and every blob digest) and writes its image plan.",
)
