"""The container artifact: an image input checked at build time and described by an image plan."""

load(":paths.bzl", "label_text", "runfiles_path")
load(":providers.bzl", "ReleaseArtifactInfo")
load(":tool.bzl", "RELEASEKIT_TOOL_ATTRS", "run_releasekit")

def _layout_root(ctx, files):
    """The oci-layout file of a layout given as its files (a filegroup over glob(["DIR/**"]))."""
    markers = [f for f in files if f.basename == "oci-layout"]
    if len(markers) != 1:
        fail("{}: attribute image: expected exactly one image: an OCI image layout directory, a docker-save .tar, or the files of one OCI layout (with exactly one oci-layout file); got {} files ({}).".format(
            label_text(ctx.label),
            len(files),
            ", ".join([f.short_path for f in files[:5]]) or "none",
        ))
    root = markers[0].dirname
    outside = [f.short_path for f in files if not f.path.startswith(root + "/")]
    if outside:
        fail("{}: attribute image: {} lie outside the layout {}; give only the layout's files.".format(
            label_text(ctx.label),
            ", ".join(outside[:5]),
            markers[0].short_path[:-len("/oci-layout")],
        ))
    return markers[0]

def _image_input(ctx):
    """(path for the build action, runfiles path, files) of the image input."""
    files = ctx.files.image
    if len(files) > 1:
        marker = _layout_root(ctx, files)
        return marker.dirname, runfiles_path(ctx, marker)[:-len("/oci-layout")], files
    if len(files) != 1:
        _layout_root(ctx, files)
    image = files[0]
    name = image.basename
    if name.endswith(".tar.gz") or name.endswith(".tgz"):
        fail("{}: attribute image: {} is a compressed archive, which cannot be read in place. Give the uncompressed .tar, e.g. genrule(name = \"image_tar\", srcs = [\"{}\"], outs = [\"image.tar\"], cmd = \"gzip -dc $< > $@\").".format(
            label_text(ctx.label),
            image.short_path,
            name,
        ))
    if image.is_source and (image.is_directory or "." not in name):
        fail("{}: attribute image: {} is a directory in the source tree. Bazel does not track the files inside a source directory, so after the layout changes a release could publish the image it held before. List its files instead: filegroup(name = \"{}_files\", srcs = glob([\"{}/**\"])) and image = \":{}_files\".".format(
            label_text(ctx.label),
            image.short_path,
            name,
            name,
            name,
        ))
    if not image.is_directory and not name.endswith(".tar"):
        fail("{}: attribute image: {} is neither an OCI image layout directory nor a docker-save .tar. Use the output of oci_image, image_layout, oci_load or docker save.".format(
            label_text(ctx.label),
            image.short_path,
        ))
    return image.path, runfiles_path(ctx, image), files

def _container_artifact_impl(ctx):
    image_path, image_rlocation, image_files = _image_input(ctx)
    plan = ctx.actions.declare_file(ctx.label.name + ".image_plan.json")

    # A docker-save tarball's uncompressed layers, gzip-compressed once at build time as docker push would.
    layers = ctx.actions.declare_directory(ctx.label.name + ".layers")
    run_releasekit(
        ctx,
        inputs = image_files,
        outputs = [plan, layers],
        arguments = [
            "image-plan",
            "--image",
            image_path,
            "--image-rlocation",
            image_rlocation,
            "--label",
            label_text(ctx.label),
            "--out",
            plan.path,
            "--layers-out",
            layers.path,
        ],
        mnemonic = "ReleaseImagePlan",
        progress_message = "Checking image of {}".format(label_text(ctx.label)),
    )
    return [
        DefaultInfo(files = depset([plan])),
        ReleaseArtifactInfo(
            kind = "container",
            fields = {
                "image": image_rlocation,
                "layers": runfiles_path(ctx, layers),
                "plan": runfiles_path(ctx, plan),
                "repository": ctx.attr.repository,
                "tags": ctx.attr.remote_tags,
            },
            files = depset(image_files + [plan, layers]),
            # The publisher streams the image's blobs from the remote cache by their digests when they are not here.
            remote_files = depset(image_files + [layers]),
        ),
    ]

container_artifact = rule(
    implementation = _container_artifact_impl,
    attrs = dict(RELEASEKIT_TOOL_ATTRS, **{
        "image": attr.label(
            mandatory = True,
            allow_files = True,
            doc = "The image: an OCI image layout directory built by a rule (oci_image, image_layout), the files of a layout kept in the source tree (a filegroup over glob([\"DIR/**\"]); a bare source directory is refused because Bazel does not track its contents), or a docker-save tarball (.tar from oci_load, container_image or docker save).",
        ),
        "remote_tags": attr.string_list(
            doc = "Tags the CI release adds after the commit SHA.",
        ),
        "repository": attr.string(
            mandatory = True,
            doc = "Repository below the channel's registry, e.g. 'payments/api'.",
        ),
    }),
    doc = "Checks an image input at build time (structure and every blob digest) and writes its image plan.",
)
