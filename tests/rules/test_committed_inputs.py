"""Only committed files in a CI release: real Bazel, real git, the real registry and a directory store.

A glob takes every file in the working tree, tracked or not. A CI release built from a file no commit has would
publish, under an immutable version, content nobody can rebuild from its commit; it is refused, naming the file. A dev
release publishes and says which files it took that no commit has.
"""

import json
import os
import subprocess
import sys

import pytest

from helpers.servers import REPO_ROOT
from helpers.workspace import BAZEL, Workspace, git

ENTRY = os.path.join(REPO_ROOT, "tools", "releasekit_entry.py")
LOAD = 'load("@rules_release//rules:defs.bzl", "container_release", "file_release", "image_layout")\n\n'
FILES = {
    ".gitignore": "/bazel-*\n/releasekit-logs/\n*.local\n",
    "app/BUILD.bazel": LOAD + (
        'filegroup(name = "content", srcs = glob(["content/**"]))\n\n'
        'image_layout(name = "image", files = {":content": "/content/"})\n\n'
        'container_release(name = "app", image = ":image", repository = "inputs/app")\n'),
    "app/content/committed.txt": "committed\n",
    # A named output (":bundle.tar") of a genrule over a glob: the check reaches the genrule's sources.
    "bundle/BUILD.bazel": LOAD + (
        'genrule(\n    name = "tarball",\n    srcs = glob(["parts/**"]),\n    outs = ["bundle.tar"],\n'
        '    cmd = "tar --sort=name --mtime=@0 --owner=0 --group=0 -cf $@ $(SRCS)",\n)\n\n'
        'file_release(name = "bundle", src = ":bundle.tar")\n'),
    "bundle/parts/a.conf": "a = 1\n",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("committed-inputs") / "repo"
    path.mkdir()
    workspace = Workspace(str(path))
    workspace.write("WORKSPACE", 'local_repository(name = "rules_release", path = "{}")\n'.format(REPO_ROOT))
    for name, text in FILES.items():
        workspace.write(name, text)
    workspace.init_git()
    try:
        yield workspace
    finally:
        workspace.shutdown()


@pytest.fixture
def env(registry, tmp_path):
    config = tmp_path / "releasekit.yaml"
    config.write_text("channels:\n  ci: {{registry: 'http://{0}/inputs-prod', files: 'file://{1}/prod'}}\n"
                      "  dev: {{registry: 'http://{0}/inputs-dev', files: 'file://{1}/dev'}}\n".format(
                          registry.host, tmp_path / "files"))
    return {"RELEASEKIT_CONFIG": str(config), "RELEASEKIT_USER": "tester", "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "RELEASEKIT_REPORT": str(tmp_path / "record.json")}


@pytest.fixture
def stray_files(repo):
    """An untracked file the glob takes, and an ignored one (`*.local`) the other glob takes."""
    made = [repo.write("app/content/stray.txt", "no commit has me\n"), repo.write("bundle/parts/notes.local", "mine\n")]
    yield made
    for path in made:
        os.unlink(path)


def test_a_ci_release_taking_untracked_or_ignored_files_is_refused_naming_them(repo, registry, env, tmp_path,
                                                                               stray_files):
    """Before: the dirty check ignored untracked files, and both releases published what the globs took."""
    image = repo.bazel("run", "//app:app.ci", env=dict(env, CI="true"), check=False)
    assert image.returncode == 3, image.stderr[-3000:]
    head = git(repo.path, "rev-parse", "HEAD")[:12]
    assert ("UncommittedInputsError: //app:app.ci: its inputs include 1 file that commit {} does not have (untracked "
            "or ignored by git): app/content/stray.txt".format(head)) in image.stderr
    assert "Traceback" not in image.stderr
    assert not [r for r in registry.catalog() if r.startswith("inputs-prod/")]

    bundle = repo.bazel("run", "//bundle:bundle.ci", env=dict(env, CI="true"), check=False)
    assert bundle.returncode == 3, bundle.stderr[-3000:]
    assert "bundle/parts/notes.local" in bundle.stderr and "nothing was published" in bundle.stderr
    assert not (tmp_path / "files" / "prod" / "bundle").exists()


def test_dispatch_refuses_it_too(repo, registry, env, tmp_path, stray_files):
    (tmp_path / "releases.json").write_text(json.dumps({"format_version": 1, "targets": [
        {"label": "//app:app.ci", "kind": "artifact_ci_release", "reasons": []}]}))
    run_env = dict(os.environ, RELEASEKIT_BAZEL=BAZEL, CI="true", **env)
    run_env.pop("RELEASEKIT_REPORT")
    (tmp_path / "tests.json").write_text(json.dumps({"format_version": 1, "targets": []}))  # no test selected
    result = subprocess.run([sys.executable, ENTRY, "dispatch", "--tests", str(tmp_path / "tests.json"),
                             "--releases", str(tmp_path / "releases.json"),
                             "--logs", str(tmp_path / "logs"), "--report", str(tmp_path / "report.json")],
                            cwd=repo.path, capture_output=True, text=True, env=run_env, timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    [outcome] = json.load(open(tmp_path / "report.json"))["targets"]
    assert outcome["status"] == "refused" and "app/content/stray.txt" in outcome["reason"], outcome
    assert not [r for r in registry.catalog() if r.startswith("inputs-prod/")]


def test_a_dev_release_publishes_and_says_which_files_no_commit_has(repo, registry, env, stray_files):
    result = repo.bazel("run", "//app:app.dev", env=env)
    assert "took 1 file that no commit has: app/content/stray.txt" in result.stdout
    record = json.load(open(env["RELEASEKIT_REPORT"]))
    assert record["uncommitted_inputs"] == ["app/content/stray.txt"]
    assert registry.image_tags("inputs-dev/inputs/app") == record["tags"]
    # Its tag says that no commit holds what it was built from (before: `dev-tester-<sha>` as if committed).
    assert record["tags"] == ["dev-tester-{}-dirty".format(git(repo.path, "rev-parse", "HEAD")[:12])]


def test_a_ci_release_of_committed_files_publishes(repo, registry, env, tmp_path):
    repo.write("bundle/parts/b.conf", "b = 2\n")
    head = repo.commit("another part, committed")
    result = repo.bazel("run", "//bundle:bundle.ci", env=dict(env, CI="true"))
    assert "no commit has" not in result.stdout
    assert "uncommitted_inputs" not in json.load(open(env["RELEASEKIT_REPORT"]))
    assert (tmp_path / "files" / "prod" / "bundle" / "bundle" / head / "bundle.tar").exists()


@pytest.mark.parametrize("flag", ["--assume-unchanged", "--skip-worktree"])
def test_an_edit_git_is_told_not_to_look_at_is_refused_naming_the_file(repo, registry, env, tmp_path, flag):
    """Before: with the file flagged, `git status` was empty and the CI release published the edit."""
    path = "app/content/committed.txt"
    published = {tag: registry.inspect("inputs-prod/inputs/app:" + tag)["Digest"]
                 for tag in registry.image_tags("inputs-prod/inputs/app")}
    git(repo.path, "update-index", flag, path)
    repo.write(path, "an edit no commit has\n")
    try:
        image = repo.bazel("run", "//app:app.ci", env=dict(env, CI="true"), check=False)
        assert image.returncode == 3, image.stderr[-3000:]
        assert "uncommitted changes" in image.stderr and path in image.stderr and "Traceback" not in image.stderr
        # A run that pinned the tree as clean (as a run whose own check missed it would) is refused by the inputs
        # check, which names the file and why git status did not show it.
        pinned = repo.bazel("run", "//app:app.ci", env=dict(env, CI="true", RELEASEKIT_DIRTY="false"), check=False)
        assert pinned.returncode == 3, pinned.stderr[-3000:]
        assert "(changed where git is told not to look, assume-unchanged or skip-worktree, so git status does not " \
               "show it): " + path in pinned.stderr
        assert {tag: registry.inspect("inputs-prod/inputs/app:" + tag)["Digest"]
                for tag in registry.image_tags("inputs-prod/inputs/app")} == published
    finally:
        _unflag(repo, path)
        git(repo.path, "checkout", "--", path)
    # Flagged but unchanged: nothing to refuse.
    git(repo.path, "update-index", flag, path)
    try:
        repo.bazel("run", "//app:app.ci", env=dict(env, CI="true"))
    finally:
        _unflag(repo, path)


def _unflag(repo, path):
    git(repo.path, "update-index", "--no-assume-unchanged", path)
    git(repo.path, "update-index", "--no-skip-worktree", path)


def test_a_tracked_symlink_to_a_file_outside_the_repository_is_refused(repo, registry, env, tmp_path):
    """Before: the symlink was committed, so the check passed, and the release published whatever the target held."""
    outside = tmp_path / "outside.txt"
    outside.write_text("changes without a commit\n")
    link = os.path.join(repo.path, "app", "content", "linked.txt")
    os.symlink(str(outside), link)
    before = repo.commit("a symlink to a file outside the repository")
    try:
        image = repo.bazel("run", "//app:app.ci", env=dict(env, CI="true"), check=False)
        assert image.returncode == 3, image.stderr[-3000:]
        assert "(symlinks to what no commit of the repository holds): app/content/linked.txt -> {}".format(
            outside) in image.stderr
        assert before not in registry.image_tags("inputs-prod/inputs/app")
    finally:
        os.unlink(link)
        repo.commit("no symlink")


@pytest.fixture
def submodule(repo, tmp_path):
    """A git submodule whose file a release of the main repository publishes."""
    origin = tmp_path / "vendored-origin"
    origin.mkdir()
    vendored = Workspace(str(origin))
    vendored.write("data.txt", "vendored data\n")
    vendored.init_git()
    git(repo.path, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(origin), "third_party/vendored")
    repo.write("third_party/BUILD.bazel", LOAD + (
        'genrule(\n    name = "tarball",\n    srcs = glob(["vendored/*.txt"]),\n    outs = ["vendored.tar"],\n'
        '    cmd = "tar --sort=name --mtime=@0 --owner=0 --group=0 -cf $@ $(SRCS)",\n)\n\n'
        'file_release(name = "vendored_data", src = ":vendored.tar")\n'))
    repo.commit("a submodule")
    yield os.path.join(repo.path, "third_party", "vendored")
    git(repo.path, "rm", "-q", "-f", "third_party/vendored")
    os.unlink(os.path.join(repo.path, "third_party", "BUILD.bazel"))
    repo.commit("no submodule")


def test_files_of_a_submodule_are_checked_against_its_commit(repo, registry, env, tmp_path, submodule):
    """Before: every file inside a submodule showed as not in the commit, and the CI release was refused."""
    result = repo.bazel("run", "//third_party:vendored_data.ci", env=dict(env, CI="true"), check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "uncommitted_inputs" not in json.load(open(env["RELEASEKIT_REPORT"]))
    # A file the submodule's commit does not have is refused, named by its path in the main repository.
    with open(os.path.join(submodule, "stray.txt"), "w") as handle:
        handle.write("not in the submodule's commit\n")
    refused = repo.bazel("run", "//third_party:vendored_data.ci", env=dict(env, CI="true"), check=False)
    assert refused.returncode == 3, refused.stderr[-3000:]
    assert "(untracked or ignored by git): third_party/vendored/stray.txt" in refused.stderr


@pytest.fixture
def local_repository(repo):
    """A local_repository kept inside the checkout (vendored code), its directory hidden from the main repository's
    packages by .bazelignore, and a release of the main repository that publishes its files."""
    workspace_text = open(os.path.join(repo.path, "WORKSPACE")).read()
    repo.write("WORKSPACE", workspace_text + 'local_repository(name = "assets", path = "vendor/assets_repo")\n')
    repo.write(".bazelignore", "vendor/assets_repo\n")
    repo.write("vendor/assets_repo/WORKSPACE", "")
    repo.write("vendor/assets_repo/BUILD.bazel", 'filegroup(name = "assets", srcs = glob(["*.txt"]), '
                                                 'visibility = ["//visibility:public"])\n')
    repo.write("vendor/assets_repo/logo.txt", "a committed asset\n")
    repo.write("vendored/BUILD.bazel", LOAD + (
        'genrule(\n    name = "tarball",\n    srcs = ["@assets//:assets"],\n    outs = ["assets.tar"],\n'
        '    cmd = "tar --sort=name --mtime=@0 --owner=0 --group=0 -cf $@ $(SRCS)",\n)\n\n'
        'file_release(name = "assets", src = ":assets.tar")\n'))
    repo.commit("a local repository inside the checkout")
    yield os.path.join(repo.path, "vendor", "assets_repo")
    repo.write("WORKSPACE", workspace_text)
    for path in (".bazelignore", "vendor/assets_repo", "vendored"):
        git(repo.path, "rm", "-q", "-r", "-f", path)
    repo.commit("no local repository")


def test_an_untracked_file_of_a_local_repository_inside_the_checkout_is_refused(repo, registry, env, tmp_path,
                                                                                local_repository):
    """Before: the external repository's files were left out of the check, so the stray asset was published and the
    record said nothing of it."""
    result = repo.bazel("run", "//vendored:assets.ci", env=dict(env, CI="true"), check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "uncommitted_inputs" not in json.load(open(env["RELEASEKIT_REPORT"]))
    repo.write("vendored/notes.txt", "a commit of its own\n")
    head = repo.commit("another commit")
    with open(os.path.join(local_repository, "stray.txt"), "w") as handle:
        handle.write("no commit has me\n")
    try:
        refused = repo.bazel("run", "//vendored:assets.ci", env=dict(env, CI="true"), check=False)
        assert refused.returncode == 3, refused.stdout + refused.stderr[-3000:]
        assert "(untracked or ignored by git): vendor/assets_repo/stray.txt" in refused.stderr
        assert "nothing was published" in refused.stderr
        assert not (tmp_path / "files" / "prod" / "vendored" / "assets" / head).exists()
        # A dev release publishes, and names it.
        dev = repo.bazel("run", "//vendored:assets.dev", env=env)
        assert "took 1 file that no commit has: vendor/assets_repo/stray.txt" in dev.stdout
    finally:
        os.unlink(os.path.join(local_repository, "stray.txt"))


TOOLCHAIN_DEFS = '''def _toolchain_impl(ctx):
    return [platform_common.ToolchainInfo(files = depset(ctx.files.data))]

data_toolchain = rule(implementation = _toolchain_impl, attrs = {"data": attr.label_list(allow_files = True)})

def _packed_impl(ctx):
    files = ctx.toolchains["//tools/tc:type"].files.to_list()
    out = ctx.actions.declare_file(ctx.label.name + ".tar")
    ctx.actions.run_shell(outputs = [out], inputs = files, command = "tar --sort=name --mtime=@0 -cf {} {}".format(
        out.path, " ".join([f.path for f in files])))
    return [DefaultInfo(files = depset([out]))]

packed = rule(implementation = _packed_impl, toolchains = ["//tools/tc:type"])
'''


@pytest.fixture
def toolchain(repo):
    """A toolchain of the repository whose files a glob takes, and a release whose rule reads them only through
    toolchain resolution."""
    workspace_text = open(os.path.join(repo.path, "WORKSPACE")).read()
    repo.write("WORKSPACE", workspace_text + 'register_toolchains("//tools/tc:tc")\n')
    repo.write("tools/tc/defs.bzl", TOOLCHAIN_DEFS)
    repo.write("tools/tc/BUILD.bazel", 'load(":defs.bzl", "data_toolchain")\n\ntoolchain_type(name = "type")\n\n'
               'data_toolchain(name = "impl", data = glob(["data/**"]))\n\n'
               'toolchain(name = "tc", toolchain = ":impl", toolchain_type = ":type")\n')
    repo.write("tools/tc/data/a.txt", "committed toolchain data\n")
    repo.write("packed/BUILD.bazel", LOAD + 'load("//tools/tc:defs.bzl", "packed")\n\npacked(name = "made")\n\n'
               'file_release(name = "packed", src = ":made")\n')
    repo.commit("a toolchain of the repository")
    yield os.path.join(repo.path, "tools", "tc")
    repo.write("WORKSPACE", workspace_text)
    for path in ("tools", "packed"):
        git(repo.path, "rm", "-q", "-r", "-f", path)
    repo.commit("no toolchain")


def test_an_untracked_file_read_through_a_toolchain_is_refused(repo, registry, env, tmp_path, toolchain):
    """Before: the sources aspect did not follow toolchain resolution, so the toolchain's glob published the stray
    file; a file git does not track in a package that the release does not read still publishes."""
    env = dict(env, CI="true", RELEASEKIT_BAZEL=BAZEL)  # the Bazel that asks which files the toolchain reads
    scratch = repo.write("packed/scratch.local", "an ignored file the release does not read\n")
    try:
        result = repo.bazel("run", "//packed:packed.ci", env=env, check=False)
        assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    finally:
        os.unlink(scratch)
    repo.write("packed/notes.txt", "a commit of its own\n")
    head = repo.commit("another commit")
    stray = repo.write("tools/tc/data/stray.txt", "no commit has me\n")
    try:
        refused = repo.bazel("run", "//packed:packed.ci", env=env, check=False)
        assert refused.returncode == 3, refused.stdout + refused.stderr[-3000:]
        assert "(untracked or ignored by git, read through a toolchain): tools/tc/data/stray.txt" in refused.stderr
        assert not (tmp_path / "files" / "prod" / "packed" / "packed" / head).exists()
    finally:
        os.unlink(stray)
