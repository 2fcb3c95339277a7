"""image_layout: a deterministic single-layer OCI image layout assembled from files."""

load(":paths.bzl", "label_text")
load(":tool.bzl", "RELEASEKIT_TOOL_ATTRS", "run_releasekit")

def _image_layout_impl(ctx):
    out = ctx.actions.declare_directory(ctx.label.name)
    files = []
    inputs = []
    for target, image_path in ctx.attr.files.items():
        target_files = target.files.to_list()
        if not target_files:
            fail("{}: attribute files: {} produces no files.".format(label_text(ctx.label), label_text(target.label)))
        for f in target_files:
            destination = image_path if len(target_files) == 1 else image_path.rstrip("/") + "/" + f.basename
            files.append([destination, f.path])
            inputs.append(f)
    spec = {
        "cmd": ctx.attr.cmd or None,
        "entrypoint": ctx.attr.entrypoint or None,
        "env": ctx.attr.env,
        "files": files,
        "labels": ctx.attr.labels,
        "workdir": ctx.attr.workdir or None,
    }
    if ctx.attr.base:
        base_files = ctx.files.base
        if len(base_files) != 1 or not base_files[0].is_directory:
            fail("{}: attribute base: expected one OCI image layout directory.".format(label_text(ctx.label)))
        spec["base"] = base_files[0].path
        inputs.append(base_files[0])
    spec_file = ctx.actions.declare_file(ctx.label.name + ".layout_spec.json")
    ctx.actions.write(spec_file, json.encode(spec))
    run_releasekit(
        ctx,
        inputs = inputs + [spec_file],
        outputs = [out],
        arguments = ["image-layout", "--spec", spec_file.path, "--out", out.path],
        mnemonic = "ImageLayout",
        progress_message = "Assembling image layout {}".format(label_text(ctx.label)),
    )
    return [DefaultInfo(files = depset([out]))]

image_layout = rule(
    implementation = _image_layout_impl,
    attrs = dict(RELEASEKIT_TOOL_ATTRS, **{
        "base": attr.label(
            allow_files = True,
            doc = "Optional base image: an OCI layout directory holding one single-platform image.",
        ),
        "cmd": attr.string_list(doc = "The image's Cmd."),
        "entrypoint": attr.string_list(doc = "The image's Entrypoint."),
        "env": attr.string_dict(doc = "Environment variables, merged over the base image's."),
        "files": attr.label_keyed_string_dict(
            allow_files = True,
            doc = "Files to put in the image's layer: label -> path in the image. A label with several files puts them in that directory.",
        ),
        "labels": attr.string_dict(doc = "Image labels, merged over the base image's."),
        "workdir": attr.string(doc = "The image's working directory."),
    }),
    doc = "Assembles a deterministic OCI image layout with one layer (mtime 0, root-owned, sorted): same inputs, same digest.",
)
