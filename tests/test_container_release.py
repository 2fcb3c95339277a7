"""container_release end to end: real Bazel, real git, the real registry, checked with skopeo."""

import importlib.util
import json
import os
import shutil
import subprocess

import pytest

from helpers.images import corrupt_one_layer, make_docker_archive, make_layout
from helpers.workspace import git


@pytest.fixture(scope="module")
def release_env(registry, tmp_path_factory):
    directory = tmp_path_factory.mktemp("release-env")
    config = directory / "releasekit.yaml"
    config.write_text(
        "channels:\n  ci: {registry: 'http://%s/prod'}\n  dev: {registry: 'http://%s/dev'}\n" % (registry.host, registry.host)
    )
    return {
        "RELEASEKIT_CONFIG": str(config),
        "RELEASEKIT_USER": "tester",
        "XDG_CACHE_HOME": str(directory / "cache"),
        "RELEASEKIT_REPORT": str(directory / "record.json"),
    }


def record_of(env):
    with open(env["RELEASEKIT_REPORT"]) as handle:
        return json.load(handle)


def test_macro_expands_into_the_two_rule_kinds(example_workspace):
    ci = example_workspace.query("kind(artifact_ci_release, //...)")
    dev = example_workspace.query("kind(artifact_dev_release, //...)")
    assert "artifact_ci_release rule //services/hello:hello.ci" in ci
    assert "artifact_dev_release rule //services/hello:hello.dev" in dev
    assert len(ci) == len(dev) >= 2
    no_ci = example_workspace.query("attr(tags, no-ci, //services/...)")
    assert no_ci == [
        "artifact_ci_release rule //services/greeter:greeter.ci",
        "artifact_dev_release rule //services/greeter:greeter.dev",
        "container_artifact rule //services/greeter:greeter",
    ]
    artifact = example_workspace.query("//services/hello:hello")
    assert artifact == ["container_artifact rule //services/hello:hello"]


def test_build_writes_a_release_manifest(example_workspace):
    example_workspace.bazel("build", "//services/hello:hello.ci")
    manifest = json.load(open(os.path.join(example_workspace.path, "bazel-bin/services/hello/hello.ci.release.json")))
    assert manifest["channel"] == "ci" and manifest["kind"] == "container"
    assert manifest["release"] == "//services/hello:hello"
    assert manifest["container"]["repository"] == "examples/hello"
    assert manifest["container"]["tags"] == ["stable"]


def test_release_runfiles_carry_bytecode_python_accepts(example_workspace):
    """Each release is a fresh interpreter: without bytecode beside the sources it compiles releasekit every run."""
    example_workspace.bazel("build", "//services/hello:hello.dev")
    package = os.path.join(example_workspace.path, "bazel-bin/services/hello/hello.dev.runfiles/rules_release/tools/releasekit")
    sources = sorted(name for name in os.listdir(package) if name.endswith(".py"))
    assert "publish.py" in sources
    for name in sources:
        source = os.path.join(package, name)
        with open(importlib.util.cache_from_source(source), "rb") as handle:
            header = handle.read(16)
        with open(source, "rb") as handle:
            source_hash = importlib.util.source_hash(handle.read())
        assert header[:4] == importlib.util.MAGIC_NUMBER, name
        assert int.from_bytes(header[4:8], "little") == 0b11, name  # hash-based, checked against the source
        assert header[8:] == source_hash, name


def test_dev_and_ci_variants_push_with_their_tags(example_workspace, registry, release_env, tmp_path):
    head = git(example_workspace.path, "rev-parse", "HEAD").strip()
    example_workspace.bazel("run", "//services/hello:hello.dev", env=release_env)
    dev = record_of(release_env)
    assert dev["channel"] == "dev"
    assert dev["tags"] == ["dev-tester-" + head[:12]]
    assert registry.tags("dev/examples/hello") == ["dev-tester-" + head[:12]]

    example_workspace.bazel("run", "//services/hello:hello.ci", env=dict(release_env, CI="true"))
    ci = record_of(release_env)
    assert ci["tags"] == [head, "stable"]
    inspected = registry.inspect("prod/examples/hello:stable")
    assert inspected["Digest"] == ci["digest"] == dev["digest"]
    assert sorted(inspected["RepoTags"]) == sorted([head, "stable"])
    assert inspected["Labels"] == {"org.opencontainers.image.title": "hello"}
    # The blobs were mounted from the dev repository pushed just before: nothing uploaded twice.
    assert ci["bytes_uploaded"] == 0 and ci["blobs_mounted"] == 2
    copy = subprocess.run(
        ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://{}/prod/examples/hello:{}".format(registry.host, head),
         "oci:{}".format(tmp_path / "copied")], capture_output=True, text=True,
    )
    assert copy.returncode == 0, copy.stderr

    example_workspace.bazel("run", "//services/hello:hello.ci", env=dict(release_env, CI="true"))
    again = record_of(release_env)
    assert again["bytes_uploaded"] == 0 and again["blobs_skipped"] == 2


def test_dirty_tree_gets_a_dirty_dev_tag(example_workspace, release_env):
    path = os.path.join(example_workspace.path, "services/hello/hello.sh")
    original = open(path).read()
    try:
        with open(path, "a") as handle:
            handle.write("# local edit\n")
        example_workspace.bazel("run", "//services/hello:hello.dev", env=release_env)
        assert record_of(release_env)["tags"][0].endswith("-dirty")
    finally:
        with open(path, "w") as handle:
            handle.write(original)


def test_ci_variant_without_ci_refuses_and_pushes_nothing(example_workspace, registry, release_env):
    result = example_workspace.bazel("run", "//services/greeter:greeter.ci", env=release_env, check=False)
    assert result.returncode != 0
    assert "CI=true is not set" in result.stderr
    assert "bazel run //services/greeter:greeter.dev" in result.stderr
    assert "prod/examples/greeter" not in registry.catalog()


def test_docker_save_tarball_input(example_workspace, registry, release_env, tmp_path):
    digest = make_layout(str(tmp_path / "layout"), {"/legacy/app": b"legacy"}, entrypoint=["/legacy/app"])
    os.makedirs(os.path.join(example_workspace.path, "services/legacy"), exist_ok=True)
    make_docker_archive(str(tmp_path / "layout"), os.path.join(example_workspace.path, "services/legacy/image.tar"))
    example_workspace.write(
        "services/legacy/BUILD.bazel",
        'load("@rules_release//rules:defs.bzl", "container_release")\n\n'
        'container_release(\n    name = "legacy",\n    image = "image.tar",\n    repository = "examples/legacy",\n)\n',
    )
    example_workspace.commit("add a docker-save tarball release")
    example_workspace.bazel("run", "//services/legacy:legacy.dev", env=release_env)
    record = record_of(release_env)
    inspected = registry.inspect("dev/examples/legacy:" + record["tags"][0])
    assert inspected["Digest"] == record["digest"]
    assert digest != record["digest"]  # a tarball's manifest is rebuilt; its layer content is the same
    assert inspected["Layers"] and record["blobs_uploaded"] == 2


@pytest.mark.parametrize(
    "package,build,files,expected",
    [
        ("text_file", 'container_release(name = "app", image = "notes.txt", repository = "a/b")',
         {"notes.txt": "x"}, "//text_file:app: attribute image: text_file/notes.txt is neither an OCI image layout"),
        ("two_files", 'filegroup(name = "two", srcs = ["a.tar", "b.tar"])\n'
                      'container_release(name = "app", image = ":two", repository = "a/b")',
         {"a.tar": "", "b.tar": ""}, "//two_files:app: attribute image: expected exactly one"),
        ("bad_repository", 'container_release(name = "app", image = "a.tar", repository = "team/../prod")',
         {"a.tar": ""}, "//bad_repository:app: attribute repository 'team/../prod'"),
        ("bad_tag", 'container_release(name = "app", image = "a.tar", repository = "a/b", tags = ["bad:tag"])',
         {"a.tar": ""}, "//bad_tag:app: attribute tags: 'bad:tag' is not a valid image tag"),
        ("not_a_tarball", 'container_release(name = "app", image = "a.tar", repository = "a/b")',
         {"a.tar": "plain text"}, "//not_a_tarball:app (attribute image) is not a docker-save tarball"),
    ],
)
def test_bad_inputs_fail_the_build_naming_target_and_attribute(broken_workspace, package, build, files, expected):
    assert expected in broken_workspace.build_package_expecting_failure(package, build, files)


def test_corrupt_layout_fails_the_build(broken_workspace, tmp_path):
    make_layout(str(tmp_path / "layout"), {"/a": b"content" * 50})
    target = os.path.join(broken_workspace.path, "corrupt", "layout")
    shutil.copytree(str(tmp_path / "layout"), target)
    bad = corrupt_one_layer(target)
    stderr = broken_workspace.build_package_expecting_failure(
        "corrupt", 'container_release(name = "app", image = "layout", repository = "a/b")', target="//corrupt:app.dev")
    assert "{} does not match its digest".format(bad) in stderr


def test_ci_release_from_a_dirty_tree_is_refused(example_workspace, registry, release_env):
    path = os.path.join(example_workspace.path, "services/greeter/greeter.py")
    original = open(path).read()
    try:
        with open(path, "a") as handle:
            handle.write("# uncommitted\n")
        result = example_workspace.bazel("run", "//services/greeter:greeter.ci", env=dict(release_env, CI="true"), check=False)
        assert result.returncode != 0
        assert "uncommitted changes" in result.stderr
        assert "prod/examples/greeter" not in registry.catalog()
    finally:
        with open(path, "w") as handle:
            handle.write(original)
