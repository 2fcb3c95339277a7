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
        # A namespace of this module's own: other modules' releases of the example do not change what it sees.
        "channels:\n  ci: {registry: 'http://%s/cr/prod'}\n  dev: {registry: 'http://%s/cr/dev'}\n" % (registry.host,
                                                                                                       registry.host)
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
    package = os.path.join(example_workspace.path,
                           "bazel-bin/services/hello/hello.dev.runfiles/rules_release/tools/releasekit")
    sources = sorted(os.path.relpath(os.path.join(directory, name), package)
                     for directory, _, names in os.walk(package) for name in names if name.endswith(".py"))
    assert {"cli.py", "core/http.py", "publishing/publisher.py", "publishing/registry.py"} <= set(sources)
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
    assert registry.image_tags("cr/dev/examples/hello") == ["dev-tester-" + head[:12]]

    example_workspace.bazel("run", "//services/hello:hello.ci", env=dict(release_env, CI="true"))
    ci = record_of(release_env)
    assert ci["tags"] == [head, "stable"]
    inspected = registry.inspect("cr/prod/examples/hello:stable")
    assert inspected["Digest"] == ci["digest"] == dev["digest"]
    # The commit, the pointer, and the referrers fallback tag that lists the image's provenance.
    assert sorted(inspected["RepoTags"]) == sorted([head, "stable", inspected["Digest"].replace(":", "-")])
    assert inspected["Labels"] == {"org.opencontainers.image.title": "hello"}
    # The blobs were mounted from the dev repository pushed just before: nothing uploaded twice.
    assert ci["bytes_uploaded"] == 0 and ci["blobs_mounted"] == 2
    copy = subprocess.run(
        ["skopeo", "copy", "--quiet", "--src-tls-verify=false",
         "docker://{}/cr/prod/examples/hello:{}".format(registry.host, head),
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
    assert "cr/prod/examples/greeter" not in registry.catalog()


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
    inspected = registry.inspect("cr/dev/examples/legacy:" + record["tags"][0])
    assert inspected["Digest"] == record["digest"]
    # The manifest is rebuilt and the layer compressed deterministically, as image_layout compresses: the image the
    # tarball was saved from comes back digest for digest.
    assert digest == record["digest"]
    assert inspected["Layers"] and record["blobs_uploaded"] == 2
    # docker save keeps layers uncompressed; they are pushed gzip-compressed, as docker push and skopeo do.
    [layer] = record["compressed_layers"]
    raw = json.loads(subprocess.run(["skopeo", "inspect", "--raw", *registry.skopeo_args(),
                                     "docker://{}/cr/dev/examples/legacy@{}".format(
        registry.host, record["digest"])], capture_output=True, text=True, check=True).stdout)
    assert raw["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert raw["layers"][0]["digest"] == layer["compressed"] != layer["uncompressed"]
    assert raw["layers"][0]["size"] < 1024 < os.path.getsize(os.path.join(example_workspace.path,
                                                                          "services/legacy/image.tar"))
    config = json.loads(subprocess.run(["skopeo", "inspect", "--config", "--raw", *registry.skopeo_args(),
                                        "docker://{}/cr/dev/examples/legacy@{}".format(registry.host,
                                                                                       record["digest"])],
                                       capture_output=True, text=True, check=True).stdout)
    assert config["rootfs"]["diff_ids"] == [layer["uncompressed"]]


@pytest.mark.parametrize(
    "package,build,files,expected",
    [
        ("text_file", 'container_release(name = "app", image = "notes.txt", repository = "a/b")',
         {"notes.txt": "x"}, "//text_file:app: attribute image: text_file/notes.txt is neither an OCI image layout"),
        ("two_files", 'filegroup(name = "two", srcs = ["a.tar", "b.tar"])\n'
                      'container_release(name = "app", image = ":two", repository = "a/b")',
         {"a.tar": "", "b.tar": ""}, "//two_files:app: attribute image: expected exactly one image"),
        ("bad_repository", 'container_release(name = "app", image = "a.tar", repository = "team/../prod")',
         {"a.tar": ""}, "//bad_repository:app: attribute repository 'team/../prod'"),
        ("bad_tag", 'container_release(name = "app", image = "a.tar", repository = "a/b", remote_tags = ["bad:tag"])',
         {"a.tar": ""}, "//bad_tag:app: attribute remote_tags: 'bad:tag' is not a valid image tag"),
        ("not_a_tarball", 'container_release(name = "app", image = "a.tar", repository = "a/b")',
         {"a.tar": "plain text"}, "//not_a_tarball:app (attribute image) is not a docker-save tarball"),
    ],
)
def test_bad_inputs_fail_the_build_naming_target_and_attribute(broken_workspace, package, build, files, expected):
    assert expected in broken_workspace.build_package_expecting_failure(package, build, files)


def test_corrupt_layout_fails_the_build(broken_workspace, tmp_path):
    make_layout(str(tmp_path / "layout"), {"/a": b"content" * 50})
    target = os.path.join(broken_workspace.path, "corrupt", "image")
    shutil.copytree(str(tmp_path / "layout"), target)
    bad = corrupt_one_layer(target)
    stderr = broken_workspace.build_package_expecting_failure(
        "corrupt", 'filegroup(name = "image_files", srcs = glob(["image/**"]))\n'
        'container_release(name = "app", image = ":image_files", repository = "a/b")', target="//corrupt:app.dev")
    assert "{} does not match its digest".format(bad) in stderr


@pytest.mark.parametrize("pinned_commit", [False, True], ids=["git", "RELEASEKIT_COMMIT"])
def test_ci_release_from_a_dirty_tree_is_refused(example_workspace, registry, release_env, pinned_commit):
    """A CI job that names its commit (as the README suggests) still gets the dirty-tree refusal."""
    path = os.path.join(example_workspace.path, "services/greeter/greeter.py")
    original = open(path).read()
    env = dict(release_env, CI="true")
    if pinned_commit:
        env["RELEASEKIT_COMMIT"] = git(example_workspace.path, "rev-parse", "HEAD").strip()
    try:
        with open(path, "a") as handle:
            handle.write("# uncommitted\n")
        result = example_workspace.bazel("run", "//services/greeter:greeter.ci", env=env, check=False)
        assert result.returncode != 0
        assert "uncommitted changes" in result.stderr
        assert "cr/prod/examples/greeter" not in registry.catalog()
    finally:
        with open(path, "w") as handle:
            handle.write(original)


def _skopeo_layout(source, destination, tag="latest"):
    subprocess.run(["skopeo", "copy", "--quiet", "oci:" + source, "oci:{}:{}".format(destination, tag)],
                   check=True, capture_output=True)


def test_a_layout_kept_in_the_source_tree_is_tracked_file_by_file(example_workspace, registry, release_env, tmp_path):
    """A bare source directory is refused; its files listed in a filegroup publish what the commit holds.

    With the same Bazel server, the layout is changed by umoci and committed: the next run publishes the new
    image, never the one the directory held before.
    """
    package = os.path.join(example_workspace.path, "services/checked_in")
    make_layout(str(tmp_path / "src"), {"/app/version": b"one"})
    os.makedirs(package, exist_ok=True)
    _skopeo_layout(str(tmp_path / "src"), os.path.join(package, "layout"))
    load = 'load("@rules_release//rules:defs.bzl", "container_release")\n\n'
    example_workspace.write("services/checked_in/BUILD.bazel",
                            load + 'container_release(name = "app", image = "layout", repository = '
                                   '"examples/checked-in")\n')
    refused = example_workspace.bazel("build", "//services/checked_in:app.dev", check=False)
    assert refused.returncode != 0
    assert ("//services/checked_in:app: attribute image: services/checked_in/layout is a directory in the source "
            "tree") in refused.stderr
    assert 'filegroup(name = "layout_files", srcs = glob(["layout/**"])) and image = ":layout_files"' in refused.stderr

    example_workspace.write("services/checked_in/BUILD.bazel", load +
                            'filegroup(name = "layout_files", srcs = glob(["layout/**"]))\n\n'
                            'container_release(name = "app", image = ":layout_files", repository = '
                            '"examples/checked-in")\n')
    example_workspace.commit("a checked-in layout")
    example_workspace.bazel("run", "//services/checked_in:app.dev", env=release_env)
    first = record_of(release_env)
    with open(os.path.join(package, "layout", "index.json")) as handle:
        assert json.load(handle)["manifests"][0]["digest"] == first["digest"]

    (tmp_path / "extra.txt").write_text("two")
    subprocess.run(["umoci", "insert", "--image", os.path.join(package, "layout") + ":latest",
                    str(tmp_path / "extra.txt"),
                    "/app/extra.txt"], check=True, capture_output=True)
    with open(os.path.join(package, "layout", "index.json")) as handle:
        changed = json.load(handle)["manifests"][0]["digest"]
    assert changed != first["digest"]
    head = example_workspace.commit("umoci changed the layout")
    example_workspace.bazel("run", "//services/checked_in:app.dev", env=release_env)
    second = record_of(release_env)
    assert second["digest"] == changed
    assert second["tags"] == ["dev-tester-" + head[:12]]
    assert registry.inspect("cr/dev/examples/checked-in:" + second["tags"][0])["Digest"] == changed


def test_a_release_named_like_its_layout_directory_gets_the_fix(broken_workspace):
    stderr = broken_workspace.build_package_expecting_failure(
        "same_name", 'container_release(name = "layout", image = "layout", repository = "a/b")',
        files={"layout/oci-layout": "{}"})
    assert "//same_name:layout: attribute image 'layout' names this container_release itself" in stderr
    assert 'name = "layout_release"' in stderr


@pytest.mark.parametrize("macro,call,expected", [
    ("container_release", 'container_release(name = "app", image = "a.tar", repositroy = "a/b")',
     "//misspelt_container_release:app: container_release has no attribute 'repositroy'. Did you mean 'repository'?"),
    ("jar_release", 'jar_release(name = "lib", jar = "a.jar", cordinates = "a:b")',
     "//misspelt_jar_release:lib: jar_release has no attribute 'cordinates'. Did you mean 'coordinates'?"),
    ("deploy_release", 'deploy_release(name = "d", manifest = ["a.yaml"])',
     "//misspelt_deploy_release:d: deploy_release has no attribute 'manifest'. Did you mean 'manifests'?"),
])
def test_a_misspelt_macro_attribute_is_named(broken_workspace, macro, call, expected):
    stderr = broken_workspace.build_package_expecting_failure("misspelt_" + macro, call,
                                                              files={"a.tar": "", "a.jar": "",
                                                                                               "a.yaml": "a: 1\n"})
    assert expected in stderr


def test_a_compressed_archive_is_refused_with_the_fix(broken_workspace):
    stderr = broken_workspace.build_package_expecting_failure(
        "gzipped", 'container_release(name = "app", image = "image.tar.gz", repository = "a/b")',
        files={"image.tar.gz": ""})
    assert "//gzipped:app: attribute image: gzipped/image.tar.gz is a compressed archive" in stderr
    assert 'cmd = "gzip -dc $< > $@"' in stderr
