"""Running releasekit as a build action, with the python3 on the default shell PATH.

What that python3 needs: the image, jar and manifest actions use its standard library only;
deploy_release's check imports PyYAML, kubernetes-validate for platform = "kubernetes", jsonschema
for custom resources and a generic schema, google-re2 for CRD patterns and formats, and cel-python
for CRD CEL rules.
A missing package fails the action with the pip command that installs it.
"""

RELEASEKIT_TOOL_ATTRS = {
    "_tool": attr.label(
        default = "//tools:releasekit_entry.py",
        allow_single_file = True,
        executable = True,
        cfg = "exec",
        doc = "The releasekit entry point, run as a build action.",
    ),
    "_tool_srcs": attr.label(
        default = "//tools:releasekit_srcs",
        cfg = "exec",
        doc = "The releasekit sources the build action imports.",
    ),
}

def run_releasekit(ctx, arguments, inputs, outputs, mnemonic, progress_message):
    ctx.actions.run(
        executable = ctx.executable._tool,
        tools = ctx.files._tool_srcs,
        inputs = inputs,
        outputs = outputs,
        arguments = arguments,
        mnemonic = mnemonic,
        progress_message = progress_message,
        # The python3 on the default shell PATH: the one the user installed releasekit's packages for.
        use_default_shell_env = True,
    )
