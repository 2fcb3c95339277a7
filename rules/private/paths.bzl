"""Path and label helpers shared by the rules."""

def runfiles_path(ctx, file):
    """The path of `file` below the runfiles root, the same under WORKSPACE and bzlmod."""
    if file.short_path.startswith("../"):
        return file.short_path[3:]
    return ctx.workspace_name + "/" + file.short_path

def label_text(label):
    """`//pkg:name`, or `@repo//pkg:name` outside the main repository, on every Bazel version."""
    prefix = "@" + label.workspace_name if label.workspace_name else ""
    return "{}//{}:{}".format(prefix, label.package, label.name)
