"""Container images: an image plan's blobs, then its manifest by digest, then its tags, to the channel's registry and
to each of its mirrors.

A CI release first makes sure the repository is its own (ownership.py); it tags the commit, attaches the image's signed
provenance as an OCI 1.1 referrer (provenance.py), then moves each remote tag that may move (tag_moves.py); its
commit tag is immutable. With mirrors, the image goes to every registry at once (each registry's checks too), blobs
mounted or uploaded once per registry, each blob read and hashed once for all the registries that upload it
(shared_reads.py), and no tag moves anywhere until every registry holds the manifest: a registry that fails leaves
every tag where it was, and a re-run completes the release. A blob that is not on this machine is streamed from Bazel's
remote cache (remote_cache.py)."""

import concurrent.futures
import contextlib
import logging

from releasekit.core.errors import ImmutableVersionError
from releasekit.publishing import channel_marker, ownership, provenance, tag_moves
from releasekit.core.versioning import image_tags
from releasekit.publishing.registry_credentials import registry_credentials
from releasekit.publishing.image_plan import ImagePlan
from releasekit.publishing.kinds import ArtifactKind, dry_run_note, human_bytes
from releasekit.publishing.blob_locator import BlobLocator
from releasekit.publishing.oci import check_tag
from releasekit.publishing.registry import RegistryClient, check_repository
from releasekit.publishing.remote_cache import RemoteCache
from releasekit.publishing.shared_reads import SharedReads

log = logging.getLogger(__name__)

_COUNTS = ("bytes_uploaded", "blobs_uploaded", "blobs_skipped", "blobs_mounted")


def _targets(release, destinations, repository_path, plan):
    """A _Target per registry: the primary first (the release's credentials), then each mirror (its own)."""
    locator = BlobLocator.default()
    shared = SharedReads(len(destinations)) if len(destinations) > 1 else None  # each blob read once for all
    targets = []
    for index, destination in enumerate(destinations):
        repository = "/".join(p for p in (destination.path, repository_path) if p)
        credentials = registry_credentials(destination, release.environ)
        client = RegistryClient(destination, credentials, release.policy, workers=release.options.workers,
                                locator=locator)
        targets.append(_Target(destination, repository, client, plan, shared, index))
    return targets


class ContainerKind(ArtifactKind):
    name = "container"

    def publish(self, release):
        container, manifest = release.fields, release.manifest
        repository_path = check_repository(container["repository"], "{} repository".format(manifest.release))
        destinations = _registries(release)
        tags = image_tags(manifest.channel, release.source_version, container.get("tags", []))
        for tag in tags:
            check_tag(tag)
        # CI: the commit tag is immutable and always written; remote tags are pointers, which only move forward.
        fixed, movable = (tags[:1], tags[1:]) if manifest.channel == "ci" else (tags, [])
        cache = RemoteCache.from_environment(release.environ)
        reader = _cache_reader(cache, release.options.workers + 2) if cache else None
        plan = ImagePlan.load(release.runfile(container["plan"]), release.runfile(container["image"]),
                              release.runfile(container["layers"]) if container.get("layers") else None, reader)
        plan.check_unchanged(manifest.target)
        targets = _targets(release, destinations, repository_path, plan)
        primary = targets[0]
        record = {"registry": primary.destination.host, "repository": primary.name, "digest": plan.root["digest"],
                  "reference": primary.reference, "tags": tags}
        record.update({count: 0 for count in _COUNTS})
        if plan.data.get("compressed_layers"):
            record["compressed_layers"] = plan.data["compressed_layers"]
        if release.dry_run:
            entries = [target.check(manifest, release, fixed, movable) for target in targets]
            record.update(blobs_skipped=primary.counts["blobs_skipped"],
                          would_upload_blobs=sum(e["would_upload_blobs"] for e in entries),
                          would_upload_bytes=sum(e["would_upload_bytes"] for e in entries),
                          checks=[c for e in entries for c in e.pop("checks")],
                          pointers=entries[0]["pointers"], registries=entries)
            if provenance.enabled(release):
                record["provenance"] = {"status": "would attach", "location": record["reference"]}
            return record
        _prepare_everywhere(targets, manifest, fixed)
        _push_everywhere(targets, fixed)
        for target in targets:  # every registry holds the manifest: now the tags, provenance, and the pointers
            if not target.already_there:
                if manifest.channel == "ci":  # again: a release of the same commit may have pushed meanwhile
                    target.check_commit_tag(manifest, fixed)
                target.client.tag(target.repository, plan, fixed)
            if provenance.enabled(release):  # after the image it describes, before any pointer moves to it
                target.provenance = provenance.attach_image(release, target.client, target.repository, plan.root,
                                                            target.name)
            target.moved = tag_moves.move_image_tags(target.client, target.destination, target.repository, plan,
                                                     movable, release)
        record.update({count: sum(t.counts[count] for t in targets) for count in _COUNTS})
        record.update(status="already published" if all(t.already_there for t in targets) else "published",
                      tags=fixed + [p.pointer for p in primary.moved if p.moves],
                      pointers=[p.as_record() for p in primary.moved],
                      registries=[target.entry(fixed) for target in targets])
        if primary.provenance is not None:
            record["provenance"] = primary.provenance
        if reader is not None:
            record.update(remote_cache=cache.display, bytes_downloaded=reader.downloaded.value,
                          blobs_from_cache=len(reader.blobs))
        return record

    def summary(self, record):
        where, mirrors = record["repository"], len(record.get("registries") or []) - 1
        if mirrors > 0:
            where += " and {} mirror{}".format(mirrors, "s" if mirrors > 1 else "")
        if record["dry_run"]:
            return "{} would publish {} to {} tags {} ({} to upload in {} blobs, {} blobs there already){}".format(
                record["release"], record["digest"][:19], where, ",".join(record["tags"]),
                human_bytes(record["would_upload_bytes"]), record["would_upload_blobs"], record["blobs_skipped"],
                dry_run_note(record))
        streamed = ""
        if record.get("remote_cache"):
            streamed = ", {} streamed from the remote cache".format(human_bytes(record["bytes_downloaded"]))
        return "{} {} {} to {} tags {} ({} uploaded{}, {} blobs skipped, {} mounted) in {:.2f}s".format(
            record["release"], record.get("status", "published"), record["digest"][:19], where,
            ",".join(record["tags"]),
            human_bytes(record["bytes_uploaded"]), streamed, record["blobs_skipped"], record["blobs_mounted"],
            record["duration_seconds"])


def _cache_reader(cache, pool_size):
    if cache.is_grpc:
        from releasekit.publishing.bytestream import ByteStreamReader  # grpc is imported only for a gRPC cache

        return ByteStreamReader(cache)
    return cache.reader(pool_size)


def _registries(release):
    """The channel's registries, primary first."""
    from releasekit.core.mirrors import registries

    return registries(release.config, release.channel)


class _Target:
    """The image's repository at one registry, and what was done there."""

    def __init__(self, destination, repository, client, plan, shared=None, index=0):
        self.destination, self.repository, self.client, self.plan = destination, repository, client, plan
        self.shared, self.index = shared, index  # the blob reads this registry's push shares with the others
        self.counts = {count: 0 for count in _COUNTS}
        self.moved, self.provenance, self.already_there = [], None, False

    @property
    def name(self):
        return "{}/{}".format(self.destination.host, self.repository)

    @property
    def reference(self):
        return "{}@{}".format(self.name, self.plan.root["digest"])

    def push(self, fixed):
        """Blobs and manifests, untagged; a re-run whose blobs and fixed tags are all there writes no manifest."""
        try:
            plan = self.shared.plan_for(self.plan, self.index) if self.shared else self.plan
            result = self.client.push(self.repository, plan, [], tagged_already=fixed)
        finally:
            if self.shared:
                self.shared.finished(self.index)
        self.counts = {count: getattr(result, count) for count in _COUNTS}
        self.already_there = result.already_there

    def prepare(self, manifest, fixed, dry_run=False):
        """Before the first blob: the channel marker, and in CI the repository's owner and the commit tag. dry_run:
        only read them, refuse as the writes would, and return what the writes would do."""
        claim = channel_marker.guard_registry(manifest.channel, self.destination, self.client, dry_run=dry_run)
        owner = None
        if manifest.channel == "ci":
            owner = ownership.claim_registry(self.client, self.destination, self.repository, manifest.release,
                                             dry_run=dry_run)
            self.check_commit_tag(manifest, fixed)
        return [note for note in (claim, owner) if note]

    def entry(self, fixed):
        entry = {"registry": self.destination.host, "repository": self.name, "reference": self.reference,
                 "tags": fixed + [p.pointer for p in self.moved if p.moves],
                 "pointers": [p.as_record() for p in self.moved]}
        if self.provenance is not None:
            entry["provenance"] = self.provenance
        entry.update(self.counts)
        return entry

    def check(self, manifest, release, fixed, movable):
        """A dry run at this registry, read-only: it answers, accepts the credentials for reading, and has what."""
        checks = self.prepare(manifest, fixed, dry_run=True)
        present, missing, missing_bytes, root_there = self.client.check_push(self.repository, self.plan)
        there = "image {} there already at {}".format(self.plan.root["digest"][:19], self.destination.host) \
            if root_there else None
        moved = tag_moves.move_image_tags(self.client, self.destination, self.repository, self.plan, movable, release,
                                          dry_run=True)
        self.counts["blobs_skipped"] = present
        return {"registry": self.destination.host, "repository": self.name, "blobs_skipped": present,
                "would_upload_blobs": missing, "would_upload_bytes": missing_bytes,
                "checks": checks + ([there] if there else []), "pointers": [p.as_record(True) for p in moved]}


    def check_commit_tag(self, manifest, fixed):
        """A CI image's commit tag is immutable, as a jar's or a file's version is: a commit tag that names another
        image (a build that is not reproducible, released again from another checkout) refuses the release before
        anything of it is pushed, and again right before the tag is written; its pointers are left where they are."""
        for tag in fixed:
            there = self.client.tag_digest(self.repository, tag)
            if there is not None and there != self.plan.root["digest"]:
                raise ImmutableVersionError(
                    "{}: {}:{} already names another image ({}, not {}); a CI commit tag is immutable, so nothing "
                    "was pushed and no tag moved. Make the image reproducible (the same commit must build the same "
                    "digest), or release a new commit.".format(manifest.release, self.name, tag, there[:19],
                                                              self.plan.root["digest"][:19]))


def _push_everywhere(targets, fixed):
    """Blobs and manifests (by digest, untagged) to every registry at once. A registry that fails fails the release,
    naming it, after the others finished: no tag has moved anywhere."""
    failed = _at_every_registry(targets, lambda target: target.push(fixed), named=False)
    if not failed:
        return
    target, error = failed[0]
    _log_other_failures(failed)
    if len(targets) > 1:
        reached = [t.destination.host for t in targets if t not in [f[0] for f in failed]]
        error.args = ("{}: {} The image reached {}, untagged: no tag moved at any registry. Run the release again "
                      "to complete it.".format(target.destination.host, error,
                                               ", ".join(reached) if reached else "no registry"),)
    raise error


def _prepare_everywhere(targets, manifest, fixed):
    """Every registry's read-only checks first, so that a registry that refuses leaves no marker or owner record
    written at the others; then the writes (marker, owner claim and its settle time), at every registry at once. With
    one registry, the writes alone: they refuse as the checks would."""
    steps = [lambda target: target.prepare(manifest, fixed)]
    if len(targets) > 1:
        steps.insert(0, lambda target: target.prepare(manifest, fixed, dry_run=True))
    for step in steps:
        failed = _at_every_registry(targets, step)
        if failed:  # nothing pushed anywhere yet
            _log_other_failures(failed)
            raise failed[0][1]


def _log_other_failures(failed):
    """The first failure is raised; the other registries' are logged, so that none is hidden behind it."""
    for _, error in failed[1:]:
        log.error("%s", error)


def _at_every_registry(targets, action, named=True):
    """action(target) at every registry at once (a registry's checks wait on its own round trips and settle time,
    not on the others'). Returns [(target, error)] of those that failed, in the registries' order, after all
    finished; named: each error says which registry it came from."""
    def run(target):
        if not named:
            return action(target)
        with _naming(target, targets):
            return action(target)

    def outcome(target):
        try:
            run(target)
        except Exception as error:  # every registry finishes before the first failure is raised
            return error
        return None

    if len(targets) == 1:
        errors = [outcome(targets[0])]
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(targets)) as pool:
            errors = list(pool.map(outcome, targets))
    return [(target, error) for target, error in zip(targets, errors) if error is not None]


@contextlib.contextmanager
def _naming(target, targets):
    """With mirrors, an error says which registry it came from."""
    try:
        yield
    except Exception as error:
        if len(targets) > 1 and error.args and isinstance(error.args[0], str):
            error.args = ("{}: {}".format(target.destination.host, error.args[0]),) + error.args[1:]
        raise
