"""The fixture monorepo of the selection tests: one base commit, one change kind per test.

Real git, real Bazel (the offline wrapper). Each test module makes its own copy (its own Bazel server) with
make_monorepo(), and resets it to the base commit before each test.
"""

import os
import shutil
import subprocess
import sys

from conftest import TEST_PASSWORD, TEST_USER

from .servers import REPO_ROOT
from .workspace import BAZEL, Workspace, git

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")

FILES = {
    ".gitignore": "/bazel-*\n",
    "WORKSPACE": 'workspace(name = "fixture")\n\nlocal_repository(name = "rules_release", path = "{root}")\n\n'
                 'load("//third_party:repos.bzl", "fixture_repositories")\n\nfixture_repositories()\n',
    ".bazelrc": "build --announce_rc\n",
    "third_party/BUILD": "",
    "third_party/repos.bzl": 'load(":lock.bzl", "locked_libraries")\n\n'
                             'def fixture_repositories():\n'
                             '    locked_libraries(name = "deps", lock = "//third_party:deps.json")\n',
    # A lock file read by a repository rule, one target per library, as maven_install.json is.
    "third_party/deps.json": '{"alpha": "1.0", "beta": "2.0", "gamma": "3.0"}\n',
    "third_party/lock.bzl": 'def _locked_libraries_impl(rctx):\n'
                            '    build = []\n'
                            '    for name, version in json.decode(rctx.read(rctx.attr.lock)).items():\n'
                            '        rctx.file(name + ".txt", version + "\\n")\n'
                            '        build.append(\'filegroup(name = "%s", srcs = ["%s.txt"], visibility = '
                            '["//visibility:public"])\' % (name, name))\n    rctx.file("BUILD.bazel", '
                            '"\\n".join(build) + "\\n")\n\nlocked_libraries = repository_rule(implementation = '
                            '_locked_libraries_impl, attrs = {"lock": attr.label()})\n',
    "uses_deps/BUILD": 'sh_test(name = "alpha_test", srcs = ["t.sh"], data = ["@deps//:alpha"])\n\n'
                       'sh_test(name = "beta_test", srcs = ["t.sh"], data = ["@deps//:beta"])\n',
    "uses_deps/t.sh": "#!/bin/sh\n",
    "tools/BUILD": "",
    "tools/macros.bzl": 'def lib_with_test(name):\n    native.py_library(name = name, srcs = [name + ".py"])\n'
                        '    native.py_test(name = name + "_test", srcs = [name + "_test.py"], deps = [":" + name])\n',
    "tools/defs.bzl": 'load(":macros.bzl", _lib_with_test = "lib_with_test")\n\nlib_with_test = _lib_with_test\n',
    "lib/BUILD": 'py_library(name = "lib", srcs = glob(["*.py"]), visibility = ["//visibility:public"])\n\n'
                 'exports_files(["data.txt", "unused.txt"])\n',
    "lib/a.py": "A = 1\n",
    "lib/b.py": "B = 2\n",
    "lib/data.txt": "data\n",
    "lib/unused.txt": "nobody uses this\n",
    "oldlib/BUILD": 'py_library(name = "oldlib", srcs = ["old.py"], visibility = ["//visibility:public"])\n',
    "oldlib/old.py": "OLD = 1\n",
    "app/BUILD": 'load("@rules_release//rules:defs.bzl", "container_release", "image_layout")\n\n'
                 'py_library(name = "app_lib", srcs = ["app.py"], deps = ["//lib"])\n\n'
                 'py_test(name = "app_test", srcs = ["app_test.py"], deps = [":app_lib", "//oldlib"], data = '
                 '["//lib:data.txt"])\n\nimage_layout(name = "image", files = {":app_lib": "/app"})\n\n'
                 'container_release(name = "app", image = ":image", repository = "fixture/app")\n',
    "app/app.py": "from lib import a\n",
    "app/app_test.py": "print('ok')\n",
    "gen/BUILD": 'genrule(name = "gen", srcs = ["template.txt"], outs = ["gen.txt"], cmd = "cp $< $@")\n\n'
                 'sh_test(name = "gen_test", srcs = ["gen_test.sh"], data = [":gen.txt"])\n',
    "gen/template.txt": "template\n",
    "gen/gen_test.sh": "#!/bin/sh\n",
    "macro/BUILD": 'load("//tools:defs.bzl", "lib_with_test")\n\nlib_with_test(name = "m")\n',
    "macro/m.py": "M = 1\n",
    "macro/m_test.py": "print('m')\n",
    "suite/BUILD": 'sh_test(name = "s1", srcs = ["s1.sh"])\n\nsh_test(name = "s2", srcs = ["s2.sh"])\n\n'
                   'test_suite(name = "suite", tests = [":s1"])\n',
    "suite/s1.sh": "#!/bin/sh\n",
    "suite/s2.sh": "#!/bin/sh\n",
    "noci/BUILD": 'load("@rules_release//rules:defs.bzl", "container_release", "image_layout")\n\n'
                  'sh_test(name = "noci_test", srcs = ["t.sh"], tags = ["no-ci"])\n\n'
                  'sh_test(name = "manual_test", srcs = ["t.sh"], tags = ["manual"])\n\n'
                  'sh_test(name = "ok_test", srcs = ["t.sh"])\n\n'
                  'image_layout(name = "image", files = {"t.sh": "/t.sh"})\n\n'
                  'container_release(name = "rel", image = ":image", repository = "fixture/noci", tags = ["no-ci"])\n',
    "noci/t.sh": "#!/bin/sh\n",
    "docs/notes.md": "not in any package\n",
    "tools/helper.bzl": 'def stamp_text(name):\n    return "stamp " + name\n',
    "tools/rules.bzl": 'load(":helper.bzl", "stamp_text")\n\n'
                       'def _stamp_impl(ctx):\n    out = ctx.actions.declare_file(ctx.label.name + ".txt")\n'
                       '    ctx.actions.write(out, stamp_text(ctx.label.name))\n    return [DefaultInfo(files = '
                       'depset([out]))]\n\nstamp_file = rule(implementation = _stamp_impl)\n',
    "ruled/BUILD": 'load("//tools:rules.bzl", "stamp_file")\n\nstamp_file(name = "stamp")\n\n'
                   'sh_test(name = "ruled_test", srcs = ["t.sh"], data = [":stamp"])\n\n'
                   'sh_test(name = "other_test", srcs = ["t.sh"])\n',
    "ruled/t.sh": "#!/bin/sh\n",
    "native/BUILD": 'cc_library(name = "native", srcs = ["n.cc"])\n\ncc_test(name = "native_test", srcs = ["t.cc"], '
                    'deps = [":native"])\n',
    "native/n.cc": "int native() { return 1; }\n",
    "native/t.cc": "int main() { return 0; }\n",
    # A C++ tool the build runs (built in the exec configuration), and a test of what it makes.
    "hosttool/BUILD": 'cc_binary(name = "gen_tool", srcs = ["tool.cc"])\n\n'
                      'genrule(name = "made", outs = ["made.txt"], tools = [":gen_tool"], cmd = "$(location :gen_tool) '
                      '> $@")\n\nsh_test(name = "made_test", srcs = ["t.sh"], data = [":made.txt"])\n',
    "hosttool/tool.cc": "#include <cstdio>\nint main() { std::puts(\"made\"); return 0; }\n",
    "hosttool/t.sh": "#!/bin/sh\n",
    "platform/BUILD": 'constraint_setting(name = "kind")\n\n'
                      'constraint_value(name = "never", constraint_setting = ":kind", visibility = '
                      '["//visibility:public"])\n',
    "compat/BUILD": 'sh_test(name = "compatible_test", srcs = ["t.sh"])\n\n'
                    'sh_test(name = "incompatible_test", srcs = ["t.sh"], target_compatible_with = '
                    '["//platform:never"])\n',
    "compat/t.sh": "#!/bin/sh\n",
    "tree/BUILD": 'sh_test(name = "tree_test", srcs = ["t.sh"], data = glob(["**"], exclude = ["BUILD", "t.sh"]))\n',
    "tree/t.sh": "#!/bin/sh\n",
    "tree/sub/x.txt": "x\n",
    "tree/split/BUILD": "",
    "tree/split/y.txt": "y\n",
}

ALL_TESTS = {"//app:app_test", "//gen:gen_test", "//macro:m_test", "//suite:s1", "//suite:s2", "//noci:ok_test",
             "//tree:tree_test", "//compat:compatible_test", "//ruled:ruled_test", "//ruled:other_test",
             "//native:native_test", "//uses_deps:alpha_test", "//uses_deps:beta_test", "//hosttool:made_test"}


def make_monorepo(tmp_path_factory):
    """The monorepo with a Collector (workspace.collector) whose servers stop when the generator ends."""
    from releasekit.selection.bazelquery import Bazel
    from releasekit.selection.collect import Collector

    path = tmp_path_factory.mktemp("collect") / "repo"
    path.mkdir()
    workspace = Workspace(str(path))
    for name, text in FILES.items():
        workspace.write(name, text.replace("{root}", REPO_ROOT), executable=name.endswith(".sh"))
    workspace.init_git()
    workspace.base = git(workspace.path, "rev-parse", "HEAD").strip()
    workspace.cache = str(tmp_path_factory.mktemp("collect-cache"))
    collector = Collector(workspace.path, bazel=Bazel(workspace.path, command=BAZEL),
                          base_checkout_dir=os.path.join(workspace.cache, "base"))
    workspace.collector = collector
    try:
        yield workspace
    finally:
        collector.close()
        workspace.shutdown()


def reset(monorepo):
    """The monorepo at its base commit, with nothing else in its working tree."""
    git(monorepo.path, "reset", "-q", "--hard", monorepo.base)
    git(monorepo.path, "clean", "-q", "-fdx", "-e", "bazel-*")
    return monorepo


def change(repo, edits=(), deletes=(), renames=()):
    for name, text in dict(edits).items():
        repo.write(name, text.replace("{root}", REPO_ROOT), executable=name.endswith(".sh"))
    for name in deletes:
        target = os.path.join(repo.path, name)
        shutil.rmtree(target) if os.path.isdir(target) else os.unlink(target)
    for old, new in renames:
        git(repo.path, "mv", old, new)
    repo.commit("change")


def selected(repo, head="HEAD"):
    selection = repo.collector.collect(repo.base, head)
    return selection, {t.label for t in selection.tests}, {t.label for t in selection.releases}


def run_cli(*args, cwd, **environ):
    env = dict(os.environ, RELEASEKIT_BAZEL=BAZEL, XDG_CACHE_HOME=os.path.join(os.path.dirname(cwd), "cli-cache"),
               **environ)
    return subprocess.run([sys.executable, ENTRY, *args], cwd=cwd, capture_output=True, text=True, env=env)


# -- target graphs recorded by one run, read by the next (target_graphs.py) ------------------------------------------

GRAPH_STORE_LOGIN = {"RELEASEKIT_TARGET_GRAPHS_USERNAME": TEST_USER, "RELEASEKIT_TARGET_GRAPHS_PASSWORD": TEST_PASSWORD}


def graph_collector(repo, tmp_path, store_url, startup_options=""):
    """A collector with a target graph store, whose Bazel logs each command it runs. startup_options: what the
    user's Bazel command adds (`--bazelrc=...`)."""
    from releasekit.core.http import RetryPolicy
    from releasekit.core.run_context import RunContext
    from releasekit.selection.bazelquery import Bazel
    from releasekit.selection.collect import Collector
    from releasekit.selection.target_graphs import Prepared

    bazel, log = str(tmp_path / "bazel"), str(tmp_path / "bazel.log")
    with open(bazel, "w") as handle:
        handle.write('#!/bin/sh\necho "$@" >> {}\nexec {} "$@"\n'.format(log, BAZEL))
    os.chmod(bazel, 0o755)
    command = (bazel + " " + startup_options).strip()
    context = RunContext(None, RetryPolicy(), dict(os.environ, **GRAPH_STORE_LOGIN))
    graphs = Prepared(lambda: context.target_graphs(store_url), command.split(), context.open_store,
                      workspace=repo.path, record=(True, None))
    return Collector(repo.path, bazel=Bazel(repo.path, command=command), graphs=graphs), log


def graph_collect(repo, tmp_path, store_url, base=None, startup_options=""):
    """(selection, the Bazel commands it ran) of a fresh collector with the store."""
    collector, log = graph_collector(repo, tmp_path, store_url, startup_options)
    open(log, "w").close()
    try:
        selection = collector.collect(base or repo.base, "HEAD")
    finally:
        collector.close()
    with open(log) as handle:  # each command's name: its first word that is not a startup option
        return selection, [next((w for w in line.split() if not w.startswith("-")), "") for line in handle]


def entries(selection):
    return sorted((t.label, t.kind, t.reasons) for t in selection.tests + selection.releases)


def record_the_base_graph(repo, tmp_path, store_url, startup_options=""):
    """A source change at base: its run records the graph of base's BUILD files, unless one is recorded."""
    change(repo, {"lib/a.py": "A = 100\n"})
    selection, _ = graph_collect(repo, tmp_path, store_url, startup_options=startup_options)
    assert any(note.startswith(("recorded the target graph", "read the target graph")) for note in selection.notes), \
        selection.notes
    git(repo.path, "reset", "-q", "--hard", repo.base)
