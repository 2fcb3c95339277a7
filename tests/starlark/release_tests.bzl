"""Analysis tests of the release rules: providers, manifests and fail() messages."""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")
load("//rules:defs.bzl", "ReleaseArtifactInfo", "ReleaseInfo", "container_release")
load("//rules/private:container.bzl", "container_artifact")  # buildifier: disable=bzl-visibility

def _variant_test_impl(ctx):
    env = analysistest.begin(ctx)
    target = analysistest.target_under_test(env)
    info = target[ReleaseInfo]
    asserts.equals(env, ctx.attr.channel, info.channel)
    asserts.equals(env, "container", info.kind)
    asserts.equals(env, "//tests/starlark:app", info.release)
    asserts.equals(env, "app.{}.release.json".format(ctx.attr.channel), info.manifest.basename)
    asserts.true(env, target.files_to_run.executable != None, "a release target is executable")
    runfiles = [f.short_path for f in target[DefaultInfo].default_runfiles.files.to_list()]
    asserts.true(env, "tools/releasekit_entry.py" in runfiles, "the publisher ships in the runfiles")
    asserts.true(env, "tests/starlark/app.tar" in runfiles, "the image ships in the runfiles")
    return analysistest.end(env)

variant_test = analysistest.make(_variant_test_impl, attrs = {"channel": attr.string()})

def _bad_image_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.expect_failure(env, "attribute image: tests/starlark/notes.txt is neither an OCI image layout directory nor a docker-save .tar")
    return analysistest.end(env)

bad_image_test = analysistest.make(_bad_image_test_impl, expect_failure = True)

def _two_images_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.expect_failure(env, "attribute image: expected exactly one")
    return analysistest.end(env)

two_images_test = analysistest.make(_two_images_test_impl, expect_failure = True)

def _remote_tags_test_impl(ctx):
    """Image tags come from remote_tags alone: an ownership tag is a Bazel tag, never pushed."""
    env = analysistest.begin(ctx)
    target = analysistest.target_under_test(env)
    asserts.equals(env, ["stable"], target[ReleaseArtifactInfo].fields["tags"])
    return analysistest.end(env)

remote_tags_test = analysistest.make(_remote_tags_test_impl)

def release_test_suite(name):
    """Declares the targets under test and the tests.

    Args:
      name: name of the test_suite.
    """
    container_release(
        name = "app",
        image = "app.tar",
        repository = "tests/app",
        tags = ["stable", "manual"],
    )
    variant_test(name = "ci_variant_test", target_under_test = ":app.ci", channel = "ci")
    variant_test(name = "dev_variant_test", target_under_test = ":app.dev", channel = "dev")

    container_artifact(name = "bad_image", image = "notes.txt", repository = "tests/bad", tags = ["manual"])
    bad_image_test(name = "bad_image_test", target_under_test = ":bad_image")

    native.filegroup(name = "two_tars", srcs = ["app.tar", "other.tar"], tags = ["manual"])
    container_artifact(name = "two_images", image = ":two_tars", repository = "tests/bad", tags = ["manual"])
    two_images_test(name = "two_images_test", target_under_test = ":two_images")

    container_release(
        name = "owned",
        image = "app.tar",
        repository = "tests/owned",
        remote_tags = ["stable"],
        tags = ["owner:payments", "manual"],
    )
    remote_tags_test(name = "remote_tags_test", target_under_test = ":owned")

    native.constraint_setting(name = "fleet")
    native.constraint_value(name = "never", constraint_setting = ":fleet")
    container_release(
        name = "constrained",
        image = "app.tar",
        repository = "tests/constrained",
        tags = ["manual"],
        testonly = True,
        target_compatible_with = [":never"],
    )

    native.test_suite(
        name = name,
        tests = [":ci_variant_test", ":dev_variant_test", ":bad_image_test", ":two_images_test", ":remote_tags_test"],
    )
