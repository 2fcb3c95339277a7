"""Provenance: what a release says of where each published digest came from, signed, and attached beside it.

The statement is an in-toto Statement v1 whose predicate is SLSA Provenance v1 (https://slsa.dev/provenance/v1):
- subject: each digest the release published (an image manifest, a jar, a YAML file, a file);
- buildDefinition.externalParameters: the release target and label, its channel and kind, where it published, the
  source (repository and branch), and the selection that chose it (environment.SELECTION, set by dispatch);
- buildDefinition.resolvedDependencies: the commit of the repository (`git+<repository>@refs/heads/<branch>`);
- runDetails.builder.id: the CI run (its engine's URL for it), and metadata the release's start and end.

It is signed in a DSSE envelope (signing.py): a CI release with the CI key, a dev release with the dev key or not at
all; the statement's channel says which channel wrote it and the record says how it was signed. Where it goes is the
kind's business (one place per kind, written after what it describes and before any pointer moves): an image's OCI
1.1 referrer (referrers.py), `<artifact>-<version>.intoto.jsonl` beside a jar, `provenance.intoto.jsonl` in a deploy
version's directory, `<file>.intoto.jsonl` beside a file.
"""

import datetime
import json
import os
import re
import subprocess
import time

from releasekit.core import ci_context, environment
from releasekit.publishing import signing

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://rules-release.dev/releasekit/release/v1"
STORE_FILE = "provenance.intoto.jsonl"  # a deploy version's provenance
SUFFIX = ".intoto.jsonl"  # beside a file or a jar
ARTIFACT_TYPE = "application/vnd.in-toto+json"  # an image's provenance referrer
_RUN_URLS = (("BUILDKITE_BUILD_URL",), ("CI_JOB_URL",), ("BUILD_URL",))


def subject(name, sha256_hex):
    return {"name": name, "digest": {"sha256": sha256_hex.split(":", 1)[-1]}}


def _git(workspace, *args):
    try:
        result = subprocess.run(["git", "-C", workspace, *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def without_credentials(url):
    """A repository URL with any user:password@ taken out: a provenance is public, a token in a remote is not."""
    return re.sub(r"^([a-z0-9+.-]+://)[^/@]*@", r"\1", url or "") or None


def source_of(environ, workspace):
    """(repository URL, branch) the release's commit comes from: the CI engine's word first, then git's."""
    repository = None
    if environ.get("GITHUB_REPOSITORY"):
        repository = "{}/{}".format(environ.get("GITHUB_SERVER_URL", "https://github.com"),
                                    environ["GITHUB_REPOSITORY"])
    repository = repository or environ.get("BUILDKITE_REPO") or environ.get("CI_REPOSITORY_URL") or \
        _git(workspace, "config", "--get", "remote.origin.url")
    branch = ci_context.branch(environ) or _git(workspace, "symbolic-ref", "--short", "-q", "HEAD")
    return without_credentials(repository), branch


def builder_id(environ):
    """The CI run, as its engine names it; a run no engine names is the machine's releasekit."""
    if environ.get("GITHUB_RUN_ID") and environ.get("GITHUB_REPOSITORY"):
        return "{}/{}/actions/runs/{}".format(environ.get("GITHUB_SERVER_URL", "https://github.com"),
                                              environ["GITHUB_REPOSITORY"], environ["GITHUB_RUN_ID"])
    for (variable,) in _RUN_URLS:
        if environ.get(variable):
            return without_credentials(environ[variable])
    return "urn:releasekit:host:{}".format(os.uname().nodename)


def _selection(environ):
    text = environment.SELECTION.get(environ)
    if not text:
        return {"chosen_by": "bazel run of the release target"}
    try:
        value = json.loads(text)
        return value if isinstance(value, dict) else {"chosen_by": str(value)}
    except ValueError:
        return {"chosen_by": text[:200]}


def _time(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def statement(release, subjects, destination, started):
    """The in-toto statement (dict) of a release that published subjects to destination (its text)."""
    manifest, version = release.manifest, release.source_version
    repository, branch = source_of(release.environ, release.workspace)
    dependency = {"uri": "git+{}@refs/heads/{}".format(repository or "unknown", branch or "unknown"),
                  "digest": {"gitCommit": version.commit}}
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "target": manifest.target, "release": manifest.release, "channel": manifest.channel,
                    "kind": manifest.kind, "destination": destination,
                    "source": {"repository": repository, "branch": branch, "commit": version.commit,
                               "dirty": version.dirty},
                    "selection": _selection(release.environ),
                },
                "resolvedDependencies": [dependency],
            },
            "runDetails": {
                "builder": {"id": builder_id(release.environ)},
                "metadata": {"invocationId": manifest.target, "startedOn": _time(started),
                             "finishedOn": _time(time.time())},
            },
        },
    }


class Provenance:
    """What a release attaches: the envelope's bytes, and how it was signed (for the release record)."""

    def __init__(self, envelope, signer):
        self.envelope = envelope
        self.data = signing.envelope_bytes(envelope) + b"\n"
        self.signed_by = "{} key {}".format(signer.channel, signer.keyid[:16]) if signer else "unsigned"

    def record(self, where):
        return {"signed_by": self.signed_by, "location": where}


def make(release, subjects, destination):
    """The signed provenance of release for subjects (signed as its channel's key allows; see signing.signer_for)."""
    started = getattr(release, "started", None) or time.time()
    payload = json.dumps(statement(release, subjects, destination, started), sort_keys=True).encode("utf-8")
    signer = release.signer if hasattr(release, "signer") else signing.signer_for(release.channel, release.environ)
    return Provenance(signer.sign(payload) if signer else signing.unsigned(payload), signer)


def enabled(release):
    """Whether this run writes provenance (every run does; a benchmark's run without it is the exception)."""
    return getattr(release.options, "provenance", True)


def attach_image(release, client, repository, root, name):
    """Sign the image's provenance and push it as an OCI 1.1 referrer of its manifest (root: its descriptor).
    Returns the record's entry."""
    from releasekit.publishing import referrers

    made = make(release, [subject(name, root["digest"])], name)
    annotations = {"in-toto.io/predicate-type": PREDICATE_TYPE, "vnd.releasekit.channel": release.channel,
                   "vnd.releasekit.signed-by": made.signed_by, "vnd.releasekit.commit": release.source_version.commit,
                   "org.opencontainers.image.created": _time(time.time())}
    for entry in referrers.referrers(client, repository, root["digest"], ARTIFACT_TYPE):
        said = entry.get("annotations") or {}
        if all(said.get(k) == annotations[k] for k in ("vnd.releasekit.commit", "vnd.releasekit.signed-by")):
            return dict(made.record("{}@{}".format(name, entry["digest"])), status="kept")  # a re-run adds none
    digest = referrers.push_referrer(client, repository, root, ARTIFACT_TYPE, signing.ENVELOPE_MEDIA_TYPE, made.data,
                                     annotations)
    return made.record("{}@{}".format(name, digest))


def store_entry(store, path, made, immutable, dry_run):
    """Write a store's provenance file (a CI one only when none is there: a re-run keeps the first, which already
    describes the same digests). Returns (record entry, bytes written)."""
    if dry_run:
        return dict(made.record(store.describe(path)), status="would write"), 0
    if immutable and store.get(path)[0] is not None:
        return dict(made.record(store.describe(path)), status="kept"), 0
    store.put(path, made.data)
    return made.record(store.describe(path)), len(made.data)
