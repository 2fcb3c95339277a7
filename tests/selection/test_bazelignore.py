"""A change under a `.bazelignore`d directory, with real Bazel 4.2 and git: no package of the main repository; a file of
a local repository kept there is judged as that repository's, and nothing else there selects anything."""

import json
import os
import subprocess
import sys

import pytest

from helpers.servers import REPO_ROOT
from helpers.workspace import BAZEL, git, rules_monorepo

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
FILES = {
    ".gitignore": "/bazel-*\n",
    ".bazelignore": "third_party\n",
    # A local repository kept inside the ignored directory, and what else lies there.
    "third_party/vendored/WORKSPACE": 'workspace(name = "vendored")\n',
    "third_party/vendored/BUILD.bazel": 'exports_files(["asset.txt"])\n',
    "third_party/vendored/asset.txt": "asset\n",
    "third_party/README.md": "vendored code\n",
    "third_party/junk/BUILD.bazel": 'exports_files(["x.txt"])\n',
    "third_party/junk/x.txt": "x\n",
    "apps/a/BUILD.bazel": 'load("@rules_release//rules:defs.bzl", "file_release")\n\n'
                          'file_release(name = "a", src = "@vendored//:asset.txt")\n\n'
                          'sh_test(name = "a_test", srcs = ["a_test.sh"], data = ["@vendored//:asset.txt"])\n',
    "apps/a/a_test.sh": "#!/bin/sh\ntrue\n",
    "apps/b/BUILD.bazel": 'sh_test(name = "b_test", srcs = ["b_test.sh"])\n',
    "apps/b/b_test.sh": "#!/bin/sh\ntrue\n",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    yield from rules_monorepo(tmp_path_factory, "bazelignore", FILES,
                              ['local_repository(name = "vendored", path = "third_party/vendored")'])


def collected(repo, tmp_path, files, message):
    base = git(repo.path, "rev-parse", "HEAD").strip()
    for name, text in files.items():
        repo.write(name, text)
    repo.commit(message)
    result = subprocess.run([sys.executable, ENTRY, "collect", "--base", base, "--head", "HEAD", "--tests-out",
                             str(tmp_path / "tests.json"), "--releases-out", str(tmp_path / "releases.json")],
                            cwd=repo.path, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, RELEASEKIT_BAZEL=BAZEL, XDG_CACHE_HOME=repo.cache))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stdout + result.stderr
    return ({t["label"] for t in json.load(open(tmp_path / "tests.json"))["targets"]},
            {t["label"] for t in json.load(open(tmp_path / "releases.json"))["targets"]})


def test_a_file_of_a_local_repository_in_an_ignored_directory_selects_its_dependents(repo, tmp_path):
    """Before: exit 2, "Evaluation of subquery //third_party/vendored:* failed ... Fix the workspace"."""
    tests, releases = collected(repo, tmp_path, {"third_party/vendored/asset.txt": "asset 2\n"}, "change the asset")
    assert tests == {"//apps/a:a_test"} and releases == {"//apps/a:a.ci"}


def test_other_files_of_an_ignored_directory_select_nothing(repo, tmp_path):
    tests, releases = collected(repo, tmp_path, {"third_party/README.md": "vendored code, v2\n",
                                                 "third_party/junk/x.txt": "x 2\n", "third_party/junk/new.txt": "new\n",
                                                 "third_party/junk/sub/BUILD.bazel": ""}, "change what Bazel ignores")
    assert tests == set() and releases == set()
