"""Public API of rules_release. Load rules from this file only; everything under private/ may change.

    load("@rules_release//rules:defs.bzl", "container_release", "deploy_release", "file_release", "image_layout", "jar_release")

Each release macro declares two executable targets: `<name>.ci` (rule kind
artifact_ci_release, production destinations, CI only) and `<name>.dev` (rule kind
artifact_dev_release, dev destinations). `bazel build` checks inputs and writes a release
manifest; `bazel run` publishes. Destinations come from releasekit.yaml at the workspace
root (or RELEASEKIT_CONFIG) when the release runs.
"""

load("//rules/private:container_release.bzl", _container_release = "container_release")
load("//rules/private:deploy_release.bzl", _deploy_release = "deploy_release")
load("//rules/private:file_release.bzl", _file_release = "file_release")
load("//rules/private:image_layout.bzl", _image_layout = "image_layout")
load("//rules/private:jar_release.bzl", _jar_release = "jar_release")
load("//rules/private:lib.bzl", _release_lib = "release_lib")
load("//rules/private:providers.bzl", _MavenInfo = "MavenInfo", _ReleaseArtifactInfo = "ReleaseArtifactInfo", _ReleaseInfo = "ReleaseInfo")
load("//rules/private:release.bzl", _artifact_ci_release = "artifact_ci_release", _artifact_dev_release = "artifact_dev_release")

container_release = _container_release
deploy_release = _deploy_release
file_release = _file_release
image_layout = _image_layout
jar_release = _jar_release

# The raw rules, for rule sets that bring their own artifact kinds: a rule providing ReleaseArtifactInfo of a kind
# that a Python package registers under the releasekit.kinds entry point group (docs/extending.md).
artifact_ci_release = _artifact_ci_release
artifact_dev_release = _artifact_dev_release

# What such a rule set's macro needs, as one struct (as bazel-lib's and rules_oci's *_lib structs):
#   release_lib.release_pair(name, artifact, tags, visibility, release_deps_ci = [], release_deps_dev = [], **kwargs)
#       declares <name>.ci and <name>.dev over the artifact target;
#   release_lib.check_name(name) and release_lib.check_attributes(name, macro, own, kwargs, required)
#       fail() at loading time on a bad name, an unknown attribute (naming the one meant) or a missing one;
#   release_lib.where(name) and release_lib.label_text(label): the labels errors name;
#   release_lib.runfiles_path(ctx, file): the path ReleaseArtifactInfo.fields give a file;
#   release_lib.common_attributes: the attributes every rule takes, passed on to each target a macro declares.
release_lib = _release_lib

ReleaseInfo = _ReleaseInfo
ReleaseArtifactInfo = _ReleaseArtifactInfo
MavenInfo = _MavenInfo
