"""Pages written by scripts: the rules' reference from the rules' own docs, and benchmark figures from the committed
results files. Each test fails when the committed page is not what its script writes now."""

import os
import subprocess
import sys

from helpers.servers import REPO_ROOT


def check(script):
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "tools", script), "--check"],
                          capture_output=True, text=True, timeout=60)


def test_the_rules_reference_is_the_rules_own_docs():
    result = check("rules_reference.py")
    assert result.returncode == 0, result.stderr


def test_the_rules_reference_has_every_public_name_and_attribute_doc():
    sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))
    try:
        import rules_reference
    finally:
        sys.path.pop(0)
    text = rules_reference.render()
    for name in ("container_release", "jar_release", "deploy_release", "file_release", "image_layout",
                 "artifact_ci_release", "artifact_dev_release", "release_lib", "ReleaseInfo", "ReleaseArtifactInfo",
                 "MavenInfo"):
        assert "\n## {}\n".format(name) in text
    # An attribute's doc= reaches the page: image_layout's `files`, artifact_ci_release's `release_deps`.
    assert "| `files` | label_keyed_string_dict |  | Files to put in the image's layer" in text
    assert "| `release_deps` | label_list |  | Releases of the same channel" in text
    assert "| `image` | required | an OCI image layout directory" in text  # a macro's required argument


def test_a_changed_doc_string_makes_the_reference_stale(tmp_path):
    """The check reads the rules as they are: a doc= edited without writing the page again fails it."""
    import shutil

    copy = tmp_path / "checkout"
    for part in ("rules", "tools/rules_reference.py", "docs/rules.md"):
        source = os.path.join(REPO_ROOT, part)
        target = copy / part
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if os.path.isdir(source) else shutil.copy)(source, str(target))
    layout = copy / "rules" / "private" / "image_layout.bzl"
    layout.write_text(layout.read_text().replace('doc = "The image\'s Cmd."', 'doc = "The command the image runs."'))
    result = subprocess.run([sys.executable, str(copy / "tools" / "rules_reference.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "docs/rules.md is stale" in result.stderr


def test_the_benchmark_figures_are_those_of_the_committed_results_files():
    result = check("benchmark_figures.py")
    assert result.returncode == 0, result.stderr
