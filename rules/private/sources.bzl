"""The source files a release is built from, for the publisher's check that a CI release takes only committed files.

An aspect follows every attribute from the release's artifact down (tools included: a tool's script shapes the output
as much as an input does) and gathers the source files of the main repository in depsets, never flattened during
analysis. Generated files are not sources: the sources they are made from are reached through their generating rules.

Files of external repositories are listed too, by their execution path (`external/<repository>/...`): most are pinned
by their own lock files and checksums, but a `local_repository` (or `new_local_repository`, `local_path_override`)
may lie inside the git checkout, and then its files are the checkout's files. The publisher tells them apart when the
release runs (publishing/committed_inputs.py), where it can see where each repository's directory is.
"""

ReleaseSourcesInfo = provider(
    doc = "The main repository's source files a target is built from, gathered by release_sources_aspect.",
    fields = {
        "external_files": "(depset of File) source files of external repositories in the target's transitive inputs",
        "files": "(depset of File) source files of the main repository in the target's transitive inputs",
    },
)

def _is_main_source(file):
    return file.is_source and not file.owner.workspace_name

def _targets_of(value):
    """The targets an attribute value holds: a target, a list of them, or a dict keyed or valued by them."""
    kind = type(value)
    if kind == "Target":
        return [value]
    if kind == "list":
        return [item for item in value if type(item) == "Target"]
    if kind == "dict":
        return [item for item in list(value.keys()) + list(value.values()) if type(item) == "Target"]
    return []

def _release_sources_aspect_impl(_target, ctx):
    direct = []
    transitive = []
    external = []
    transitive_external = []
    for name in dir(ctx.rule.attr):
        for dep in _targets_of(getattr(ctx.rule.attr, name)):
            if ReleaseSourcesInfo in dep:
                transitive.append(dep[ReleaseSourcesInfo].files)
                transitive_external.append(dep[ReleaseSourcesInfo].external_files)
            else:
                # A source file target (the aspect runs on rules, and on the rules that generate named outputs).
                for f in dep.files.to_list():
                    if _is_main_source(f):
                        direct.append(f)
                    elif f.is_source:
                        external.append(f)
    return [ReleaseSourcesInfo(
        files = depset(direct, transitive = transitive),
        external_files = depset(external, transitive = transitive_external),
    )]

release_sources_aspect = aspect(
    implementation = _release_sources_aspect_impl,
    attr_aspects = ["*"],
    # A label naming a rule's output (":bundle.tar.gz") reaches the sources of the rule that makes it.
    apply_to_generating_rules = True,
    doc = "Gathers the main repository's source files a target is built from (see ReleaseSourcesInfo).",
)

def write_release_sources(ctx, artifact, output):
    """Writes the paths of the artifact's source files, one per line, without flattening them.

    The main repository's come first, relative to the workspace; then those of external repositories, by their
    execution path (`external/<repository>/...`).

    Args:
      ctx: the release rule's context.
      artifact: the artifact target, analysed with release_sources_aspect.
      output: the File to write.
    """
    paths = ctx.actions.args()
    paths.set_param_file_format("multiline")
    paths.add_all(artifact[ReleaseSourcesInfo].files, expand_directories = False)
    paths.add_all(artifact[ReleaseSourcesInfo].external_files, expand_directories = False)
    ctx.actions.write(output, paths)
