"""The source files a release is built from, for the publisher's check that a CI release takes only committed files.

An aspect follows every attribute from the release's artifact down (tools included: a tool's script shapes the output
as much as an input does) and gathers the source files of the main repository in depsets, never flattened during
analysis. Files of external repositories are left out (their own lock files and checksums pin them), and generated
files are not sources: the sources they are made from are reached through their generating rules.
"""

ReleaseSourcesInfo = provider(
    doc = "The main repository's source files a target is built from, gathered by release_sources_aspect.",
    fields = {
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

def _release_sources_aspect_impl(target, ctx):
    if target.label.workspace_name:
        # An external repository's target: toolchains and third-party code, which do not reach back into ours.
        return [ReleaseSourcesInfo(files = depset())]
    direct = []
    transitive = []
    for name in dir(ctx.rule.attr):
        for dep in _targets_of(getattr(ctx.rule.attr, name)):
            if ReleaseSourcesInfo in dep:
                transitive.append(dep[ReleaseSourcesInfo].files)
            elif dep.label.workspace_name == "":
                # A source file target (the aspect runs on rules, and on the rules that generate named outputs).
                direct.extend([f for f in dep.files.to_list() if _is_main_source(f)])
    return [ReleaseSourcesInfo(files = depset(direct, transitive = transitive))]

release_sources_aspect = aspect(
    implementation = _release_sources_aspect_impl,
    attr_aspects = ["*"],
    # A label naming a rule's output (":bundle.tar.gz") reaches the sources of the rule that makes it.
    apply_to_generating_rules = True,
    doc = "Gathers the main repository's source files a target is built from (see ReleaseSourcesInfo).",
)

def write_release_sources(ctx, artifact, output):
    """Writes the workspace-relative paths of the artifact's source files, one per line, without flattening them.

    Args:
      ctx: the release rule's context.
      artifact: the artifact target, analysed with release_sources_aspect.
      output: the File to write.
    """
    paths = ctx.actions.args()
    paths.set_param_file_format("multiline")
    paths.add_all(artifact[ReleaseSourcesInfo].files, expand_directories = False)
    ctx.actions.write(output, paths)
