"""The file artifact: one file or tarball, published with its checksum to the channel's file store. Written against
the public API alone (release_lib, ReleaseArtifactInfo), as another rule set's kind would be."""

load(":lib.bzl", "release_lib")
load(":providers.bzl", "ReleaseArtifactInfo")

_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+"

def _file_artifact_impl(ctx):
    sources = ctx.files.src
    if len(sources) != 1:
        fail("{}: attribute src: expected exactly one file, got {} ({}). Name one file, e.g. a pkg_tar's or a genrule's output.".format(
            release_lib.label_text(ctx.label),
            len(sources),
            ", ".join([f.short_path for f in sources[:5]]) or "none",
        ))
    source = sources[0]
    if source.is_directory:
        fail("{}: attribute src: {} is a directory; publish one file (tar it first, e.g. with pkg_tar).".format(release_lib.label_text(ctx.label), source.short_path))
    file_name = ctx.attr.file_name or source.basename
    for char in file_name.elems():
        if char not in _NAME_CHARS:
            fail("{}: attribute file_name: '{}' contains '{}'; a published file name is one path part of letters, digits, '.', '_', '-' and '+'.".format(release_lib.label_text(ctx.label), file_name, char))
    if file_name.startswith("."):
        fail("{}: attribute file_name: '{}' starts with '.'; name the file as it should be published.".format(release_lib.label_text(ctx.label), file_name))
    return [
        DefaultInfo(files = depset([source])),
        ReleaseArtifactInfo(
            kind = "file",
            fields = {
                "file": release_lib.runfiles_path(ctx, source),
                "file_name": file_name,
                "name": ctx.label.name,
                "package": ctx.label.package,
            },
            files = depset([source]),
        ),
    ]

file_artifact = rule(
    implementation = _file_artifact_impl,
    attrs = {
        "file_name": attr.string(
            doc = "The name the file is published under (default: its own name).",
        ),
        "src": attr.label(
            mandatory = True,
            allow_files = True,
            doc = "The one file to publish: a tarball, a deploy bundle, a binary.",
        ),
    },
    doc = "A file to publish, with its checksum, to the `files` store of a channel.",
)
