"""The release manifest: what one release target publishes, from which files. The rules write it at build time
(rules/private/release.bzl, beside this reader); this class is its only reader in Python."""

import json
import os

from releasekit.core.errors import UsageError

SCHEMA_VERSION = 1


class ReleaseManifest:
    """One release target's manifest. fields is the artifact kind's own part (ReleaseArtifactInfo.fields)."""

    __slots__ = ("path", "channel", "kind", "release", "target", "fields", "depends_on", "depends_on_manifests",
                 "sources", "local_copies")

    def __init__(self, path, channel, kind, release, target, fields, depends_on=(), depends_on_manifests=None,
                 sources=None, local_copies=None):
        self.path, self.channel, self.kind, self.release, self.target = path, channel, kind, release, target
        self.fields, self.depends_on = fields, list(depends_on)
        self.depends_on_manifests = dict(depends_on_manifests or {})
        # The runfiles path of the list of the main repository's source files the release is built from (one
        # workspace-relative path a line); None in a manifest written without it, which is then not checked.
        self.sources = sources
        # The runfiles path of the copies of the files the release reads from disk, made on the release's machine:
        # read where the runfiles tree has no file (a build under --remote_download_minimal). None: no copies.
        self.local_copies = local_copies

    @classmethod
    def load(cls, path):
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError) as error:
            raise UsageError("Cannot read release manifest {}: {}. Rebuild the release target.".format(
                path, error)) from None
        if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
            raise UsageError(
                "{} has release manifest version {}, this releasekit reads version {}. Rebuild the target with "
                "matching rules_release and releasekit versions.".format(
                    path, data.get("schema_version") if isinstance(data, dict) else None, SCHEMA_VERSION))
        try:
            kind = data["kind"]
            return cls(path, data["channel"], kind, data["release"], data["target"], data[kind],
                       data.get("depends_on", ()), data.get("depends_on_manifests"), data.get("sources"),
                       data.get("local_copies"))
        except (KeyError, TypeError) as error:
            raise UsageError("{}: the release manifest lacks {}. Rebuild the release target.".format(
                path, error)) from None

    def dependency(self, release, runfiles_dir):
        """The manifest of a release this one publishes with it (a deploy release's images)."""
        if release not in self.depends_on_manifests:
            raise UsageError("{}: {} has no release manifest; rebuild the target.".format(self.release, release))
        return ReleaseManifest.load(os.path.join(runfiles_dir, self.depends_on_manifests[release]))
