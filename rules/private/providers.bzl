"""Providers shared by the release rules."""

ReleaseArtifactInfo = provider(
    doc = "What one artifact kind contributes to a release target: its part of the release manifest and the files it needs at run time.",
    fields = {
        "depends_on": "(list of string, optional) releases, as ReleaseInfo.release names them, that publish before this one when a run has both (a jar's deps); the release's release_deps are added to them",
        "fields": "(dict) JSON-ready description of the artifact, stored in the release manifest under `kind`; paths are runfiles paths",
        "files": "(depset of File) files the publisher reads when the release runs",
        "kind": "(string) the artifact kind: the name of a publisher that releasekit has built in (tools/releasekit/publishing/kinds/) or that a Python package registers under the releasekit.kinds entry point group",
        "remote_files": "(depset of File, optional) those of `files` the publisher can stream from Bazel's remote cache by digest (an image's layers), so a build under --remote_download_minimal need not download them; every other file is brought to the release's machine",
    },
)

ReleaseInfo = provider(
    doc = "A release target (artifact_ci_release or artifact_dev_release).",
    fields = {
        "channel": "(string) 'ci' or 'dev'",
        "kind": "(string) the artifact kind",
        "manifest": "(File) the release manifest the publisher reads",
        "release": "(string) the label of the release as declared in the BUILD file, without the .ci/.dev suffix",
    },
)

MavenInfo = provider(
    doc = "A jar published by jar_release, for the dependencies of other jar_release poms.",
    fields = {
        "coordinates": "(string) group:artifact, or group:artifact:version",
    },
)
