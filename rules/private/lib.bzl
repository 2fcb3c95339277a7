"""What a rule set needs to add its own artifact kind, as one struct: `release_lib` (public through defs.bzl).

A kind is a rule that returns ReleaseArtifactInfo, a macro that declares it and its `.ci` / `.dev` release targets
with release_lib.release_pair, and a Python class registered under the `releasekit.kinds` entry point group. See
docs/extending.md; file_release (file.bzl, file_release.bzl) is written against this struct alone.
"""

load(":macros.bzl", "COMMON_ATTRIBUTES", "check_attributes", "check_name", "release_pair", "where")
load(":paths.bzl", "label_text", "runfiles_path")

release_lib = struct(
    # (list of string) attributes every rule takes, which a macro passes on to each target it declares.
    common_attributes = COMMON_ATTRIBUTES,
    # check_attributes(name, macro, own, kwargs, required): fail() on an unknown or missing attribute.
    check_attributes = check_attributes,
    # check_name(name): fail() on a name the .ci/.dev suffixes would make ambiguous.
    check_name = check_name,
    # label_text(label): `//pkg:name`, or `@repo//pkg:name`, on every Bazel version.
    label_text = label_text,
    # release_pair(name, artifact, tags, visibility, ...): declares <name>.ci and <name>.dev over one artifact.
    release_pair = release_pair,
    # runfiles_path(ctx, file): the path ReleaseArtifactInfo.fields give a file, below the runfiles root.
    runfiles_path = runfiles_path,
    # where(name): the label a macro's error names, //package:name.
    where = where,
)
