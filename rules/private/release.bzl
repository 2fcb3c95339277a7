"""The two release rule kinds every artifact macro expands into.

`artifact_ci_release` publishes to the channel `ci` (production), `artifact_dev_release` to
the channel `dev`. `bazel build` writes a release manifest (what to publish, from which
files); `bazel run` publishes it. Destinations are read from releasekit.yaml when the
release runs, so a build never hard-codes where it goes.
"""

load(":paths.bzl", "label_text", "runfiles_path")
load(":providers.bzl", "ReleaseArtifactInfo", "ReleaseInfo")
load(":sources.bzl", "release_sources_aspect", "write_release_sources")

_MANIFEST_SCHEMA_VERSION = 1

_ATTRS = {
    "artifact": attr.label(
        mandatory = True,
        providers = [ReleaseArtifactInfo],
        aspects = [release_sources_aspect],
        doc = "The artifact to publish: a target providing ReleaseArtifactInfo (made by the container_release, jar_release or deploy_release macros). The main repository's source files it is built from are listed for the publisher, which refuses a CI release of files no commit has.",
    ),
    "release_deps": attr.label_list(
        providers = [ReleaseInfo],
        doc = "Releases of the same channel that must be published before this one (a deploy release's images). In a run that has both, this release waits for them, and is held back when one does not publish.",
    ),
    "_entry": attr.label(
        default = "//tools:releasekit_entry.py",
        allow_single_file = True,
        doc = "The releasekit entry point the launcher runs.",
    ),
    "_launcher": attr.label(
        default = "//rules/private:launcher.sh.tpl",
        allow_single_file = True,
        doc = "Template of the executable that runs the release.",
    ),
    "_releasekit": attr.label(
        default = "//tools:releasekit_runtime",
        doc = "The releasekit sources and their bytecode, shipped in the runfiles so rules and publisher always match.",
    ),
}

def _release_name(label):
    for suffix in (".ci", ".dev"):
        if label.name.endswith(suffix):
            return label_text(label)[:-len(suffix)]
    return label_text(label)

def _release_impl(ctx):
    channel = ctx.attr._channel
    artifact = ctx.attr.artifact[ReleaseArtifactInfo]
    for dep in ctx.attr.release_deps:
        if dep[ReleaseInfo].channel != channel:
            fail("{}: attribute release_deps: {} is a {} release; a {} release may only depend on {} releases.".format(
                label_text(ctx.label),
                label_text(dep.label),
                dep[ReleaseInfo].channel,
                channel,
                channel,
            ))
    sources = ctx.actions.declare_file(ctx.label.name + ".sources.txt")
    write_release_sources(ctx, ctx.attr.artifact, sources)
    manifest = ctx.actions.declare_file(ctx.label.name + ".release.json")
    local_copies = _local_copies(ctx, artifact)
    depends_on = [dep[ReleaseInfo].release for dep in ctx.attr.release_deps]
    depends_on += [release for release in getattr(artifact, "depends_on", None) or [] if release not in depends_on]
    ctx.actions.write(manifest, json.encode({
        "channel": channel,
        "depends_on": depends_on,
        "depends_on_manifests": {dep[ReleaseInfo].release: runfiles_path(ctx, dep[ReleaseInfo].manifest) for dep in ctx.attr.release_deps},
        "kind": artifact.kind,
        "local_copies": runfiles_path(ctx, local_copies),
        "release": _release_name(ctx.label),
        artifact.kind: artifact.fields,
        "schema_version": _MANIFEST_SCHEMA_VERSION,
        "sources": runfiles_path(ctx, sources),
        "target": label_text(ctx.label),
    }))
    executable = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.expand_template(
        template = ctx.file._launcher,
        output = executable,
        substitutions = {
            "%{entry}": runfiles_path(ctx, ctx.file._entry),
            "%{manifest}": runfiles_path(ctx, manifest),
            "%{target}": label_text(ctx.label),
        },
        is_executable = True,
    )
    runfiles = ctx.runfiles(
        files = [manifest, sources, local_copies, ctx.file._entry] + ctx.files._releasekit,
        transitive_files = artifact.files,
    )
    for dep in ctx.attr.release_deps:
        runfiles = runfiles.merge(dep[DefaultInfo].default_runfiles)
    return [
        DefaultInfo(executable = executable, files = depset([executable, manifest]), runfiles = runfiles),
        ReleaseInfo(channel = channel, kind = artifact.kind, release = _release_name(ctx.label), manifest = manifest),
    ]

def _local_copies(ctx, artifact):
    """Copies (hard links where it can) of the files the release reads from disk, made on this machine.

    The action runs here: under --remote_download_minimal Bazel brings its inputs here, and keeps its outputs. The files the
    publisher streams from the remote cache by digest (ReleaseArtifactInfo.remote_files: an image's blobs) are left
    there. The publisher reads a copy where the runfiles tree has no file."""
    remote = {f: None for f in (getattr(artifact, "remote_files", None) or depset()).to_list()}
    output = ctx.actions.declare_directory(ctx.label.name + ".local")
    pairs = ctx.actions.args()
    pairs.add(output.path)
    for f in artifact.files.to_list():
        if f not in remote and not f.is_source:
            pairs.add_all([f.path, runfiles_path(ctx, f)])
    ctx.actions.run_shell(
        outputs = [output],
        inputs = [f for f in artifact.files.to_list() if f not in remote and not f.is_source],
        command = 'out="$1"; shift; while [ "$#" -gt 0 ]; do mkdir -p "$(dirname "$out/$2")"; ' +
                  'ln -L "$1" "$out/$2" 2>/dev/null || cp -RL "$1" "$out/$2"; shift 2; done',
        arguments = [pairs],
        mnemonic = "ReleaseLocalCopies",
        progress_message = "Bringing the files {} reads here".format(label_text(ctx.label)),
        # Here, never from the remote cache, and outside a sandbox: its inputs are brought to this machine.
        execution_requirements = {"no-remote": "1", "no-sandbox": "1"},
    )
    return output

def _channel_attrs(channel):
    attrs = dict(_ATTRS)
    attrs["_channel"] = attr.string(default = channel, doc = "The channel this rule kind publishes to.")
    return attrs

artifact_ci_release = rule(
    implementation = _release_impl,
    executable = True,
    attrs = _channel_attrs("ci"),
    doc = """Publishes an artifact to the production (ci) destinations of releasekit.yaml.

Refuses to run unless CI=true, and when a source file it is built from is not in the commit
(untracked or ignored), or when another release owns its destination. Tags the full commit
SHA, then moves each declared tag, and the `latest` pointer of stores, only to a commit
that descends from the one it points at. On a partial failure nothing is visible: blobs
are pushed before the manifest, the manifest by digest before its tags, so a failed run
leaves no tag and a re-run completes it.""",
)

artifact_dev_release = rule(
    implementation = _release_impl,
    executable = True,
    attrs = _channel_attrs("dev"),
    doc = """Publishes an artifact to the dev destinations of releasekit.yaml, from a laptop or CI.

Tags `dev-<user>-<short sha>`, plus `-dirty` when the working tree has uncommitted changes.""",
)
