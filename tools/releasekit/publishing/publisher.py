"""The publisher of one release target: reads its release manifest, checks the channel, hands it to its kind, and
writes the release record.

A release manifest is written by the release rules at build time (what to publish, from which files).
Destinations are not in it: they come from releasekit.yaml when the release runs (or from what dispatch resolved for
its run), so one build serves any channel configuration. The kind's publisher (see kinds/) does the publishing.
"""

import dataclasses
import os
import time

from releasekit.core.environment import ALLOW_DIRTY, REPORT, SIGNING_KEY, SIGNING_KEY_FILE
from releasekit.core.errors import BlobNotInCacheError, RefusedError
from releasekit.core.jsonio import write_json_atomic
from releasekit.core.run_context import PUBLISHING, RunContext
from releasekit.core.versioning import read_source_version
from releasekit.publishing import committed_inputs, pointers
from releasekit.publishing.kinds import Release, kind_named
from releasekit.publishing.manifest import ReleaseManifest

RECORD_SCHEMA_VERSION = 1


@dataclasses.dataclass
class PublishOptions:
    runfiles_dir: str
    config_path: str = None
    dry_run: bool = False
    workers: int = 4
    environ: dict = None
    provenance: bool = True  # every release writes it; only a benchmark measures a run without


def check_channel_allowed(manifest, environ):
    if manifest.channel == "ci" and environ.get("CI", "").lower() != "true":
        raise RefusedError(
            "{} publishes to the production (ci) channel and only runs in CI (CI=true is not set). To "
            "publish from your machine, run the dev variant instead: bazel run {}.dev".format(
                manifest.target, manifest.release))


def check_clean_for_ci(manifest, version, environ):
    """A CI release is tagged with the commit SHA; uncommitted changes would make that tag lie."""
    if manifest.channel == "ci" and version.dirty and not ALLOW_DIRTY.is_true(environ):
        raise RefusedError(
            "{}: the working tree has uncommitted changes to tracked files, so the release would not be "
            "what commit {} holds. Commit or stash them (or set {}=true if the CI job changes files on "
            "purpose).".format(manifest.target, version.short_commit, ALLOW_DIRTY))


def publish(manifest_path, options):
    """Publish what the release manifest describes. Returns the release record (a dict)."""
    environ = os.environ if options.environ is None else options.environ
    started = time.time()
    manifest = ReleaseManifest.load(manifest_path)
    check_channel_allowed(manifest, environ)
    kind = kind_named(manifest.kind, manifest_path)
    context = RunContext.load(PUBLISHING, options.config_path, environ, required=True)
    version = read_source_version(environ)
    check_clean_for_ci(manifest, version, environ)
    uncommitted = committed_inputs.check(manifest, options.runfiles_dir, version, environ)
    if uncommitted and not version.dirty:  # a dev tag says that no commit holds what it was built from
        version = dataclasses.replace(version, dirty=True)
    release = Release(manifest, context, version, options)
    release.started = started
    if options.provenance:  # the key is read and checked before anything is published
        from releasekit.publishing.signing import signer_for

        release.signer = signer_for(manifest.channel, environ)
        if release.signer is None and manifest.channel == "ci" and context.config.signing_required:
            raise RefusedError(
                "{}: {} says `signing: required`, and neither {} nor {} holds the CI signing key, so nothing was "
                "published. Give the release job the key from the CI engine's secrets.".format(
                    manifest.target, context.config.source, SIGNING_KEY, SIGNING_KEY_FILE))
    try:
        record = kind.publish(release)
    except BlobNotInCacheError as error:
        # The build left blobs in the remote cache, which lost them since: they must be built here. The record tells
        # dispatch which, and it builds the release here and runs it again.
        if REPORT.get(environ):
            write_json_atomic(REPORT.get(environ), {"schema_version": RECORD_SCHEMA_VERSION, "target": manifest.target,
                                                    "release": manifest.release, "status": "failed",
                                                    "cache_misses": error.digests})
        error.args = ("{}: {}. Nothing was tagged. Build it here (bazel build --remote_download_outputs=all {}) and "
                      "run the release again; releasekit dispatch and ci do so themselves.".format(
                          manifest.target, error, manifest.target),)
        raise
    if uncommitted:
        record["uncommitted_inputs"] = uncommitted
    record.update(
        schema_version=RECORD_SCHEMA_VERSION,
        target=manifest.target,
        release=manifest.release,
        channel=manifest.channel,
        kind=manifest.kind,
        commit=version.commit,
        dry_run=options.dry_run,
        duration_seconds=round(time.time() - started, 3),
    )
    if REPORT.get(environ):
        write_json_atomic(REPORT.get(environ), record)
    return record


def summary_line(record):
    """The kind's one line for a release record, and what the release gate has to say about it: pointers left
    alone, and inputs no commit has."""
    said = pointers.notes(record)
    signed_by = (record.get("provenance") or {}).get("signed_by")
    if signed_by == "unsigned":
        said.append("provenance unsigned" + (": set {} (or {}) to sign it".format(SIGNING_KEY, SIGNING_KEY_FILE)
                                             if record.get("channel") == "ci" else ""))
    elif signed_by:
        said.append("provenance signed by the " + signed_by)
    uncommitted = record.get("uncommitted_inputs")
    if uncommitted:
        said.append("took {} that no commit has: {}".format(
            "1 file" if len(uncommitted) == 1 else "{} files".format(len(uncommitted)),
            committed_inputs.named(uncommitted)))
    return kind_named(record["kind"], record["target"]).summary(record) + "".join("; " + note for note in said)
