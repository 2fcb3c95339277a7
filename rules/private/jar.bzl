"""The jar artifact: jars and pom inputs checked at analysis and build time."""

load(":paths.bzl", "label_text", "runfiles_path")
load(":providers.bzl", "MavenInfo", "ReleaseArtifactInfo")
load(":tool.bzl", "RELEASEKIT_TOOL_ATTRS", "run_releasekit")

_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"

def _valid_part(part, extra = ""):
    if not part or part[0] in ".-" or ".." in part:
        return False
    for char in part.elems():
        if char not in _NAME_CHARS + extra:
            return False
    return True

def check_coordinates(where, coordinates):
    """Fails unless coordinates are group:artifact or group:artifact:version.

    Args:
      where: the target and attribute, for the message.
      coordinates: the string to check.
    """
    parts = coordinates.split(":")
    ok = len(parts) in (2, 3) and _valid_part(parts[0]) and _valid_part(parts[1])
    if ok and len(parts) == 3:
        ok = _valid_part(parts[2], "+")
    if not ok:
        fail("{}: '{}' must be group:artifact or group:artifact:version (letters, digits, '.', '_', '-'; no '..'), e.g. 'com.example:payments-api:1.2.0'.".format(where, coordinates))

def _one_jar(ctx, attribute, target):
    files = target.files.to_list()
    if len(files) != 1 or not files[0].basename.endswith(".jar"):
        fail("{}: attribute {}: {} must produce exactly one .jar, got {}. Point it at a java_binary's _deploy.jar, a java_library's jar or a genrule that writes one .jar.".format(
            label_text(ctx.label),
            attribute,
            label_text(target.label),
            ", ".join([f.basename for f in files]) or "no files",
        ))
    return files[0]

def _jar_artifact_impl(ctx):
    check_coordinates("{}: attribute coordinates".format(label_text(ctx.label)), ctx.attr.coordinates)
    jar = _one_jar(ctx, "jar", ctx.attr.jar)
    jars = [jar]
    fields = {
        "classifier_jars": {},
        "coordinates": ctx.attr.coordinates,
        "deps": [],
        "jar": runfiles_path(ctx, jar),
    }
    if ctx.attr.sources_jar:
        sources = _one_jar(ctx, "sources_jar", ctx.attr.sources_jar)
        jars.append(sources)
        fields["sources_jar"] = runfiles_path(ctx, sources)
    for target, classifier in ctx.attr.classifier_jars.items():
        if not _valid_part(classifier) or classifier == "sources":
            fail("{}: attribute classifier_jars: '{}' is not a usable classifier (letters, digits, '.', '_', '-'; 'sources' is sources_jar's).".format(label_text(ctx.label), classifier))
        classified = _one_jar(ctx, "classifier_jars", target)
        jars.append(classified)
        fields["classifier_jars"][classifier] = runfiles_path(ctx, classified)
    for dep in ctx.attr.deps:
        if MavenInfo not in dep:
            fail("{}: attribute deps: {} is not a jar_release; deps lists other jar_release targets, whose coordinates go into the pom.".format(
                label_text(ctx.label),
                label_text(dep.label),
            ))
        fields["deps"].append(dep[MavenInfo].coordinates)
    files = list(jars)
    if ctx.file.pom_template:
        fields["pom_template"] = runfiles_path(ctx, ctx.file.pom_template)
        files.append(ctx.file.pom_template)
    checked = ctx.actions.declare_file(ctx.label.name + ".jar_check.json")
    arguments = ["jar-check", "--label", label_text(ctx.label), "--out", checked.path]
    for f in jars:
        arguments += ["--jar", f.path]
    run_releasekit(
        ctx,
        inputs = jars,
        outputs = [checked],
        arguments = arguments,
        mnemonic = "ReleaseJarCheck",
        progress_message = "Checking jars of {}".format(label_text(ctx.label)),
    )
    files.append(checked)
    return [
        DefaultInfo(files = depset([checked])),
        MavenInfo(coordinates = ctx.attr.coordinates),
        # A jar's deps are published first in a run that has both: a pom must not name a dependency that failed.
        ReleaseArtifactInfo(kind = "jar", fields = fields, files = depset(files), depends_on = [label_text(dep.label) for dep in ctx.attr.deps]),
    ]

jar_artifact = rule(
    implementation = _jar_artifact_impl,
    attrs = dict(RELEASEKIT_TOOL_ATTRS, **{
        "classifier_jars": attr.label_keyed_string_dict(
            allow_files = True,
            doc = "More jars to publish: label -> classifier (jar_release takes them as classifier -> label).",
        ),
        "coordinates": attr.string(
            mandatory = True,
            doc = "group:artifact (the version comes at release time) or group:artifact:version.",
        ),
        "deps": attr.label_list(
            doc = "Other jar_release targets this jar depends on; they become the pom's dependencies.",
        ),
        "jar": attr.label(
            mandatory = True,
            allow_files = True,
            doc = "The jar to publish: any label producing exactly one .jar.",
        ),
        "pom_template": attr.label(
            allow_single_file = True,
            doc = "A pom with the placeholders {groupId}, {artifactId}, {version}, {type} and {dependencies}; a pom is generated when it is not given.",
        ),
        "sources_jar": attr.label(
            allow_files = True,
            doc = "An optional sources jar, published with the classifier 'sources'.",
        ),
    }),
    doc = "Checks a jar release's inputs (coordinates, one .jar per attribute, deps that are jar releases, readable zips) and describes them for the publisher.",
)
