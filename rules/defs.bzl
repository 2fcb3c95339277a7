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
load("//rules/private:providers.bzl", _MavenInfo = "MavenInfo", _ReleaseArtifactInfo = "ReleaseArtifactInfo", _ReleaseInfo = "ReleaseInfo")
load("//rules/private:release.bzl", _artifact_ci_release = "artifact_ci_release", _artifact_dev_release = "artifact_dev_release")

container_release = _container_release
deploy_release = _deploy_release
file_release = _file_release
image_layout = _image_layout
jar_release = _jar_release

# The raw rules, for rule sets that bring their own artifact kinds: a rule providing ReleaseArtifactInfo of a kind
# that a Python package registers under the releasekit.kinds entry point group (see the README).
artifact_ci_release = _artifact_ci_release
artifact_dev_release = _artifact_dev_release

ReleaseInfo = _ReleaseInfo
ReleaseArtifactInfo = _ReleaseArtifactInfo
MavenInfo = _MavenInfo
