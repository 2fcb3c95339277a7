"""The Starlark: analysis tests (skylib analysistest) run with real Bazel in this repository's workspace, its
bzl_library targets, and what loading the rules needs."""

import os

import pytest

from helpers.servers import REPO_ROOT
from helpers.workspace import Workspace


@pytest.fixture(scope="module")
def root_workspace():
    workspace = Workspace(REPO_ROOT)
    yield workspace
    workspace.shutdown()


def test_starlark_analysis_tests_pass(root_workspace):
    result = root_workspace.bazel("test", "//tests/starlark:release_tests", "--test_output=errors",
                                  "--nocache_test_results", check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Executed 5 out of 5 tests: 5 tests pass" in result.stdout + result.stderr


def test_common_attributes_reach_every_target_a_macro_declares(root_workspace):
    """As rules_oci does: an incompatible or testonly release must not leave its artifact target behind."""
    declared = {"//tests/starlark:constrained", "//tests/starlark:constrained.ci", "//tests/starlark:constrained.dev"}
    for attribute, value in (("target_compatible_with", "never"), ("testonly", "1")):
        result = root_workspace.bazel("query", "attr({}, {}, //tests/starlark:all)".format(attribute, value),
                                      "--output=label", check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        assert declared <= set(result.stdout.split()), attribute


def test_every_package_of_the_repository_loads(root_workspace):
    result = root_workspace.bazel("query", "//...", check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "//rules:bzl_srcs" in result.stdout


def test_every_bzl_file_has_a_bzl_library_whose_deps_hold_what_it_loads(root_workspace):
    """Before: no bzl_library at all; stardoc and rule sets building on release_lib had nothing to depend on."""
    import re
    from xml.etree import ElementTree

    result = root_workspace.bazel("query", "kind(bzl_library, //...)", "--output=xml", check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    libraries = {}
    for rule in ElementTree.fromstring(result.stdout).iter("rule"):
        lists = {node.get("name"): [label.get("value") for label in node] for node in rule.iter("list")}
        libraries[rule.get("name")] = (lists.get("srcs", []), lists.get("deps", []))

    def reachable_sources(name, seen):
        if name in seen or name not in libraries:
            return set()
        seen.add(name)
        sources, deps = libraries[name]
        return set(sources).union(*(reachable_sources(dep, seen) for dep in deps))

    ours = {os.path.relpath(os.path.join(directory, name), REPO_ROOT)  # tests/bazel's offline stand-ins are not ours
            for top in ("rules", "tools", "tests/starlark")
            for directory, _, names in os.walk(os.path.join(REPO_ROOT, top)) for name in names if name.endswith(".bzl")}
    assert "rules/defs.bzl" in ours
    covered = {}
    for name, (sources, _) in libraries.items():
        for source in sources:
            covered["{}/{}".format(*source[2:].split(":"))] = name
    assert sorted(ours - set(covered)) == []
    for path in sorted(ours):
        package = os.path.dirname(path)
        with open(os.path.join(REPO_ROOT, path), encoding="utf-8") as handle:
            loads = re.findall(r'^load\("([^"]+)"', handle.read(), re.MULTILINE)
        wanted = {"//{}:{}".format(package, load[1:]) if load.startswith(":") else load
                  for load in loads if not load.startswith("@")}
        assert wanted <= reachable_sources(covered[path], set()), path


def test_one_skylib_version_for_workspace_and_bzlmod():
    """Before: WORKSPACE pinned bazel_skylib 1.3.0 and MODULE.bazel 1.7.1."""
    import re

    workspace = open(os.path.join(REPO_ROOT, "WORKSPACE"), encoding="utf-8").read()
    module = open(os.path.join(REPO_ROOT, "MODULE.bazel"), encoding="utf-8").read()
    in_workspace = set(re.findall(r"bazel-skylib-([0-9.]+)\.tar\.gz", workspace))
    in_module = re.findall(r'bazel_dep\(name = "bazel_skylib", version = "([0-9.]+)"', module)
    assert len(in_workspace) == 1 and in_module == list(in_workspace)


def test_building_releases_loads_nothing_of_bazel_skylib(example_workspace):
    """The bzl_library targets load bazel_skylib; no package a release target needs does: loading defs.bzl and
    building releases need nothing but Bazel."""
    loaded = example_workspace.bazel("query", "buildfiles(deps(kind('artifact_(ci|dev)_release', //...)))",
                                     "--output=label", check=False)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    files = loaded.stdout.split()
    assert "@rules_release//rules:defs.bzl" in files and "@rules_release//rules/private:BUILD.bazel" in files
    assert [f for f in files if "skylib" in f] == []
