"""The releasekit command line as a Bazel target: `bazel run @rules_release//tools:releasekit -- ci ...`.

It runs releasekit from the same sources the release targets carry, pinned by the WORKSPACE or MODULE.bazel
entry that brings in the rules, with the python3 the release targets use (RELEASEKIT_PYTHON, else python3 on
PATH). That interpreter needs releasekit's Python packages (requests, PyYAML; docker for a Docker config's
credentials, boto3 for s3:// stores): a missing one stops the command with the pip command that installs it.
Bazel releases its server before it starts the tool, so the tool runs Bazel itself in the same workspace.
"""

def _runfiles_path(ctx, file):
    # As rules/private/paths.bzl says it (which buildifier keeps to //rules): the same under WORKSPACE and bzlmod.
    if file.short_path.startswith("../"):
        return file.short_path[3:]
    return ctx.workspace_name + "/" + file.short_path

def _releasekit_tool_impl(ctx):
    # Not `releasekit` itself: the sources' bytecode is written below the directory of that name.
    executable = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.expand_template(
        template = ctx.file._launcher,
        output = executable,
        substitutions = {
            "%{entry}": _runfiles_path(ctx, ctx.file._entry),
            "%{target}": "@rules_release//tools:" + ctx.label.name,
        },
        is_executable = True,
    )
    runfiles = ctx.runfiles(files = [ctx.file._entry] + ctx.files._releasekit)
    return [DefaultInfo(executable = executable, runfiles = runfiles)]

releasekit_tool = rule(
    implementation = _releasekit_tool_impl,
    executable = True,
    attrs = {
        "_entry": attr.label(
            default = "//tools:releasekit_entry.py",
            allow_single_file = True,
            doc = "The releasekit entry point the launcher runs.",
        ),
        "_launcher": attr.label(
            default = "//tools/private:releasekit.sh.tpl",
            allow_single_file = True,
            doc = "Template of the executable that runs the command line.",
        ),
        "_releasekit": attr.label(
            default = "//tools:releasekit_runtime",
            doc = "The releasekit sources and their bytecode.",
        ),
    },
    doc = "An executable that runs the releasekit command line from its runfiles, in the workspace `bazel run` names.",
)
