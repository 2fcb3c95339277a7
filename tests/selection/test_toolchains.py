"""Toolchains of the repository, with real Bazel 4.2, git, registry and stores: a rule that takes its tool from
`ctx.toolchains[...]` (toolchain_type, toolchain(), register_toolchains) depends on that tool for collect, which
selects its release when the tool changes, and for the `deps` gate, which holds the release back when the tool's
test fails."""

import json
import os

import pytest

from helpers.servers import REPO_ROOT
from helpers.workspace import git, rules_monorepo

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
TOOL = "#!/bin/sh\necho stamped > \"$1\"\n"
FILES = {
    ".gitignore": "/bazel-*\n",
    "tools/tc/defs.bzl": '''StampInfo = provider(doc = "A stamping tool.", fields = {"tool": "(File) the tool"})

def _stamp_toolchain_impl(ctx):
    return [platform_common.ToolchainInfo(stamp = StampInfo(tool = ctx.executable.tool))]

stamp_toolchain = rule(
    implementation = _stamp_toolchain_impl,
    attrs = {"tool": attr.label(doc = "The tool.", executable = True, cfg = "exec", allow_single_file = True)},
)

def _stamped_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    tool = ctx.toolchains["//tools/tc:type"].stamp.tool
    ctx.actions.run(executable = tool, arguments = [out.path], outputs = [out])
    return [DefaultInfo(files = depset([out]))]

stamped = rule(implementation = _stamped_impl, toolchains = ["//tools/tc:type"])
''',
    "tools/tc/BUILD.bazel": '''load(":defs.bzl", "stamp_toolchain")

exports_files(["stamp.sh"])

toolchain_type(name = "type")

stamp_toolchain(name = "impl", tool = "stamp.sh")

toolchain(name = "tc", toolchain = ":impl", toolchain_type = ":type")

sh_test(name = "stamp_test", srcs = ["stamp_test.sh"], data = ["stamp.sh"])
''',
    "tools/tc/stamp.sh": TOOL,
    "tools/tc/stamp_test.sh": '#!/bin/sh\ngrep -q stamped "$(dirname "$0")/stamp.sh"\n',
    # A release built by the toolchain's tool, and one that has nothing to do with it.
    "apps/notes/BUILD.bazel": '''load("@rules_release//rules:defs.bzl", "file_release")
load("//tools/tc:defs.bzl", "stamped")

stamped(name = "stamp")

file_release(name = "notes", src = ":stamp")
''',
    "apps/other/BUILD.bazel": '''load("@rules_release//rules:defs.bzl", "file_release")

file_release(name = "other", src = "other.txt")

sh_test(name = "other_test", srcs = ["other_test.sh"], data = ["other.txt"])
''',
    "apps/other/other.txt": "other\n",
    "apps/other/other_test.sh": '#!/bin/sh\ngrep -q other "$(dirname "$0")/other.txt"\n',
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    yield from rules_monorepo(tmp_path_factory, "toolchains", FILES, ['register_toolchains("//tools/tc:tc")'])


def collected(repo, tmp_path, base):
    result = repo.releasekit("collect", "--base", base, "--head", "HEAD", "--tests-out", str(tmp_path / "tests.json"),
                             "--releases-out", str(tmp_path / "releases.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    return ({t["label"]: t["reasons"] for t in json.load(open(tmp_path / "tests.json"))["targets"]},
            {t["label"]: t["reasons"] for t in json.load(open(tmp_path / "releases.json"))["targets"]})


def test_a_change_to_a_toolchains_tool_selects_what_resolves_the_toolchain(repo, tmp_path):
    """Before: the tool's test was selected, the release its rule builds with the tool was not."""
    base = git(repo.path, "rev-parse", "HEAD").strip()
    repo.change({"tools/tc/stamp.sh": "#!/bin/sh\necho stamped twice > \"$1\"\n"}, "change the tool")
    tests, releases = collected(repo, tmp_path, base)
    assert set(tests) == {"//tools/tc:stamp_test"}
    assert set(releases) == {"//apps/notes:notes.ci"}
    assert releases["//apps/notes:notes.ci"] == ["tools/tc/stamp.sh"]

    # The toolchain() rule itself changed: the same.
    base = git(repo.path, "rev-parse", "HEAD").strip()
    build = FILES["tools/tc/BUILD.bazel"].replace('toolchain_type = ":type")',
                                                  'toolchain_type = ":type", visibility = ["//visibility:public"])')
    repo.change({"tools/tc/BUILD.bazel": build}, "change the toolchain rule")
    tests, releases = collected(repo, tmp_path, base)
    assert set(releases) == {"//apps/notes:notes.ci"}
    repo.change({"tools/tc/stamp.sh": TOOL, "tools/tc/BUILD.bazel": FILES["tools/tc/BUILD.bazel"]}, "as it was")


def test_a_recorded_target_graph_follows_the_toolchain_too(repo, tmp_path):
    """A change to the tool's content alone is answered from the graph an earlier run recorded: it holds each
    toolchain() rule's implementation and type, and what resolves the toolchain is selected as from a query."""
    graphs = "file://{}".format(tmp_path / "graphs")
    for number in (1, 2):  # the first run records the graph of these BUILD files, the second reads it
        base = git(repo.path, "rev-parse", "HEAD").strip()
        repo.change({"tools/tc/stamp.sh": "#!/bin/sh\necho stamped {} > \"$1\"\n".format(number)}, "the tool")
        result = repo.releasekit("collect", "--base", base, "--head", "HEAD", "--target-graphs", graphs,
                                 "--record-target-graphs", "--tests-out", str(tmp_path / "tests.json"),
                                 "--releases-out", str(tmp_path / "releases.json"))
        assert result.returncode == 0, result.stdout + result.stderr
        assert ("recorded the target graph" if number == 1 else "read the target graph") in result.stdout, \
            result.stdout
        releases = {t["label"] for t in json.load(open(tmp_path / "releases.json"))["targets"]}
        assert releases == {"//apps/notes:notes.ci"}, result.stdout
    repo.change({"tools/tc/stamp.sh": TOOL}, "as it was")


def test_the_deps_gate_holds_back_a_release_built_with_a_toolchain_whose_test_failed(repo, registry, tmp_path):
    """Before: the tool's failing test did not hold back the release built with it: the deps gate published it."""
    (tmp_path / "releasekit.yaml").write_text(
        "channels:\n  ci: {{registry: 'http://{0}/tc', files: 'file://{1}'}}\n  dev: {{registry: 'http://{0}/tc-dev'}}\n"
        .format(registry.host, tmp_path / "files"))
    env = {"RELEASEKIT_CONFIG": str(tmp_path / "releasekit.yaml")}
    # The tool breaks its test (it no longer says "stamped"), and the other release changes.
    repo.change({"tools/tc/stamp.sh": "#!/bin/sh\necho broke > \"$1\"\n", "apps/other/other.txt": "other 2\n"},
                "break the tool, change the other release")
    tests = tmp_path / "tests.json"
    tests.write_text(json.dumps({"format_version": 1, "kind": "tests", "targets": [
        {"label": label, "kind": "sh_test", "reasons": []} for label in ("//tools/tc:stamp_test",
                                                                        "//apps/other:other_test")]}))
    releases = tmp_path / "releases.json"
    releases.write_text(json.dumps({"format_version": 1, "kind": "releases", "targets": [
        {"label": label, "kind": "file_release", "reasons": []} for label in ("//apps/notes:notes.ci",
                                                                             "//apps/other:other.ci")]}))
    result = repo.releasekit("dispatch", "--tests", str(tests), "--releases", str(releases), "--gate", "deps", "--logs",
                             str(tmp_path / "logs"), env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stdout + result.stderr
    outcomes = {t["label"]: t for t in json.load(open(tmp_path / "logs" / "report.json"))["targets"]}
    assert outcomes["//tools/tc:stamp_test"]["status"] == "failed"
    assert outcomes["//apps/notes:notes.ci"]["status"] == "held back", outcomes["//apps/notes:notes.ci"]
    assert outcomes["//apps/notes:notes.ci"]["reason"] == ("held back (gate deps): //tools/tc:stamp_test failed "
                                                           "(shares //tools/tc:stamp.sh)")
    assert outcomes["//apps/other:other.ci"]["status"] == "published"
    assert not os.path.exists(tmp_path / "files" / "apps" / "notes") and "all or nothing" not in result.stdout
    repo.change({"tools/tc/stamp.sh": TOOL, "apps/other/other.txt": FILES["apps/other/other.txt"]}, "as it was")
