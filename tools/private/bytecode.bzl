"""Compiled bytecode for releasekit's sources, shipped beside them in release runfiles.

Every release is a fresh Python process. Without bytecode next to the sources it would
compile every releasekit module on each run (runfiles trees are per target, and CI images
often set PYTHONDONTWRITEBYTECODE), which is a large share of a release's CPU when many
run in parallel. The files are hash-checked: Python validates them against the source and
falls back to the source if they do not match. Bytecode for another interpreter version
carries another file name and is ignored.
"""

def _python_bytecode_impl(ctx):
    directories = {src.dirname: True for src in ctx.files.srcs}
    if len(directories) != 1:
        fail("{}: attribute srcs: all sources must be in one directory, got {}.".format(
            ctx.label,
            sorted(directories.keys()),
        ))
    source_dir = ctx.files.srcs[0].dirname
    package_dir = "/".join([part for part in (ctx.label.workspace_root, ctx.label.package) if part])
    if source_dir != package_dir and not source_dir.startswith(package_dir + "/"):
        fail("{}: attribute srcs: the sources must be in package {}, got {}.".format(
            ctx.label,
            package_dir,
            source_dir,
        ))
    relative = source_dir[len(package_dir) + 1:]
    pycache = ctx.actions.declare_directory((relative + "/" if relative else "") + "__pycache__")
    args = ctx.actions.args()
    args.add(pycache.path)
    args.add_all(ctx.files.srcs)
    ctx.actions.run_shell(
        command = 'exec python3 "$@"',
        arguments = [ctx.file._compiler.path, args],
        inputs = ctx.files.srcs,
        tools = [ctx.file._compiler],
        outputs = [pycache],
        mnemonic = "PythonBytecode",
        progress_message = "Compiling Python bytecode for {}".format(ctx.label),
        # The python3 on the default shell PATH: the one that will run the release.
        use_default_shell_env = True,
    )
    return [DefaultInfo(files = depset([pycache]))]

python_bytecode = rule(
    implementation = _python_bytecode_impl,
    attrs = {
        "srcs": attr.label_list(
            allow_files = [".py"],
            mandatory = True,
            doc = "Python sources of one directory; their bytecode lands in that directory's __pycache__.",
        ),
        "_compiler": attr.label(
            default = "//tools/private:compile_bytecode.py",
            allow_single_file = True,
            doc = "The script that compiles the sources.",
        ),
    },
    doc = "A __pycache__ directory of hash-checked bytecode for `srcs`, for the python3 on PATH.",
)
