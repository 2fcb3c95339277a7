"""Artifact kinds: one publisher class per kind, registered under the kind's name.

The runner hands a kind a Release (the typed manifest, and what the run resolved: destinations, version, retry
policy, credentials through the environment) and records what the kind returns. Built-in kinds: container, jar,
deploy and file. Another package adds a kind through the `releasekit.kinds` entry point group:

    [project.entry-points."releasekit.kinds"]
    helm_chart = "rules_helm_release.kind:HelmChartKind"

with a rule set that builds release targets from the raw rules artifact_ci_release / artifact_dev_release over a
target providing ReleaseArtifactInfo(kind = "helm_chart", fields = {...}, files = ...). A kind publishes to the
destinations releasekit.yaml names (registry, maven, deploy, files).
"""

import importlib
import os

from releasekit.core.errors import UsageError
from releasekit.core.versioning import image_tags, release_version_setting, source_workspace
from releasekit.publishing import channel_marker

ENTRY_POINT_GROUP = "releasekit.kinds"
# The built-in kinds, listed once: kind name -> (module, class).
_BUILT_IN = {
    "container": ("releasekit.publishing.kinds.container", "ContainerKind"),
    "jar": ("releasekit.publishing.kinds.jar", "JarKind"),
    "deploy": ("releasekit.publishing.kinds.deploy", "DeployKind"),
    "file": ("releasekit.publishing.kinds.file", "FileKind"),
}


class ArtifactKind:
    """The API a kind implements. name is the kind of its ReleaseArtifactInfo."""

    name = None

    def publish(self, release):
        """Publish release (or, when release.dry_run, read and check as a run would and write nothing); return the
        fields of the release record. Refusals raise a ReleasekitError naming the input and the fix."""
        raise NotImplementedError

    def summary(self, record):
        """One line for the terminal and the CI log."""
        return "{} {} in {:.2f}s".format(record["release"], record.get("status", "published"),
                                         record["duration_seconds"])

    def claims(self, manifest):
        """The places a CI release of this kind publishes to (ownership.Claim: a releasekit.yaml destination kind and
        the path below it). Two releases of one run claiming one place are both refused before either runs."""
        return []


class Release:
    """What a kind publishes and where: the manifest, and what the run resolved once (core/run_context.py: the
    destinations, the retry policy, the credentials)."""

    def __init__(self, manifest, context, source_version, options):
        self.manifest, self.context, self.source_version, self.options = manifest, context, source_version, options

    @property
    def config(self):
        return self.context.config

    @property
    def policy(self):
        return self.context.policy

    @property
    def environ(self):
        return self.context.environ

    @property
    def fields(self):
        return self.manifest.fields

    @property
    def channel(self):
        return self.manifest.channel

    @property
    def dry_run(self):
        return self.options.dry_run

    def runfile(self, rlocation):
        """The path of a runfile; where the runfiles tree has none (the build left it in the remote cache), the copy
        the release's build made on this machine, if any."""
        path = os.path.join(self.options.runfiles_dir, rlocation)
        if not os.path.exists(path) and self.manifest.local_copies:
            copy = os.path.join(self.options.runfiles_dir, self.manifest.local_copies, rlocation)
            if os.path.exists(copy):
                return copy
        return path

    @property
    def workspace(self):
        """The git checkout the release runs in: where pointer ancestry is asked."""
        return source_workspace(self.environ)

    def destination(self, key):
        return self.context.destination(self.channel, key)

    def open_store(self, destination):
        """The Store of a destination (core/stores), with the run's retry policy and credentials."""
        return self.context.open_store(destination)

    def guard_store(self, destination, store):
        """The channel marker check (CI claims the store; dev refuses a store CI claimed); the dry run's note."""
        return channel_marker.guard_store(self.channel, destination, store, self.open_store, dry_run=self.dry_run)

    def version(self):
        """The version of a store release: the release version setting (environment.VERSION), else the commit SHA
        (CI); the dev tag (dev)."""
        if self.channel == "ci":
            return release_version_setting(self.environ) or self.source_version.commit
        return image_tags("dev", self.source_version, [])[0]

    def with_manifest(self, manifest):
        """The release of a dependency (a deploy release's image), run as part of this one: same start and key."""
        dependency = Release(manifest, self.context, self.source_version, self.options)
        dependency.__dict__.update({k: v for k, v in self.__dict__.items() if k in ("started", "signer")})
        return dependency


def human_bytes(count):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return "{:.0f} {}".format(count, unit) if unit == "B" else "{:.1f} {}".format(count, unit)
        count /= 1024.0


def dry_run_note(record):
    if record.get("checks"):
        return "; dry run, nothing written: {}".format("; ".join(record["checks"]))
    return "; dry run, nothing written" if record["dry_run"] else ""


def import_built_in_kinds():
    """Import every built-in kind's module: what the fork server loads once, before it forks the releases."""
    for module, _ in _BUILT_IN.values():
        importlib.import_module(module)


def kind_named(name, manifest_path):
    """The publisher of a kind: built in, or registered under the releasekit.kinds entry point group."""
    if name in _BUILT_IN:
        module, class_name = _BUILT_IN[name]
        return getattr(importlib.import_module(module), class_name)()
    from importlib.metadata import entry_points  # here: only a third-party kind pays for reading the metadata

    found = [entry for entry in entry_points(group=ENTRY_POINT_GROUP) if entry.name == name]
    if not found:
        import sys

        raise UsageError(
            "{}: release kind '{}' is neither built in ({}) nor registered under the '{}' entry point group for {}. "
            "Install the Python package of the rule set that declares it.".format(
                manifest_path, name, ", ".join(sorted(_BUILT_IN)), ENTRY_POINT_GROUP, sys.executable))
    kind_class = found[0].load()
    if not (isinstance(kind_class, type) and issubclass(kind_class, ArtifactKind)):
        raise UsageError("{}: the '{}' entry point {} is not an ArtifactKind subclass.".format(
            manifest_path, name, found[0].value))
    return kind_class()
