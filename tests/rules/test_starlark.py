"""The Starlark analysis tests (skylib analysistest), run with real Bazel in this repository's workspace."""

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
