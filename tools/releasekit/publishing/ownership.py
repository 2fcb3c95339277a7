"""One owner per destination.

A CI release publishes to the places its fields name below the channel's destinations: an image repository, Maven
coordinates (group:artifact), a deploy or files path (package/name). Each such place has one owner, the label of the
release that publishes there; a copy-pasted BUILD file must not make two releases fight over `stable` or `latest`.

- In a run: two CI releases that would publish to one place are refused before any release of the run starts, each
  naming both labels (refusals_in_run, called by dispatch). A deploy release counts its images' places as theirs.
- Across runs: the place records its owner, and another label's CI release to it is refused (DestinationOwnedError,
  exit 3) naming both, before it writes anything. A registry repository: the owner record
  `<repository>:releasekit.owner` (registry_artifacts.py); a store path: the object `<path>/.releasekit-owner`. A
  place published before owners were recorded is claimed by the next CI release to it. To hand a place over on
  purpose, delete its owner record.

Dev releases publish to the dev channel's own destinations and are not checked.
"""

import dataclasses

from releasekit.core.errors import DestinationOwnedError, ReleasekitError
from releasekit.publishing import registry_artifacts, settle, store_updates

STORE_OWNER = ".releasekit-owner"


@dataclasses.dataclass(frozen=True)
class Claim:
    """A place a release publishes to: a releasekit.yaml destination kind and the path below it."""

    destination: str  # registry, maven, deploy or files
    path: str
    what: str  # how a message names it


def store_path(fields):
    """Where a deploy or file release publishes below its store: <package>/<name>."""
    return "/".join(part for part in (fields["package"], fields["name"]) if part)


def claims(manifest):
    """The places a release publishes to (a plugin kind's come from its claims())."""
    fields = manifest.fields
    if manifest.kind == "container":
        return [Claim("registry", fields["repository"], "repository " + fields["repository"])]
    if manifest.kind == "jar":
        from releasekit.publishing.maven import Coordinates

        coordinates = Coordinates.parse(fields["coordinates"], "{} coordinates".format(manifest.release))
        return [Claim("maven", coordinates.directory, "Maven coordinates {}:{}".format(coordinates.group,
                                                                                      coordinates.artifact))]
    if manifest.kind in ("deploy", "file"):
        kind = "deploy" if manifest.kind == "deploy" else "files"
        return [Claim(kind, store_path(fields), "{} path {}".format(kind, store_path(fields)))]
    from releasekit.publishing.kinds import kind_named

    return list(kind_named(manifest.kind, manifest.path).claims(manifest))


def refusals_in_run(releases, config):
    """{target: reason} for the CI releases of one run that share a place with another release's label.

    releases: (ReleaseManifest, runfiles directory) of each release of the run. A release whose claims cannot be
    read here is left to report its own error when it runs."""
    owners = {}  # place -> {owning label: (claim, [targets that publish there])}
    for manifest, runfiles in releases:
        if manifest.channel != "ci":
            continue
        try:
            owned = [(manifest, claim) for claim in claims(manifest)]
            if manifest.kind == "deploy":  # it publishes its images, as theirs
                for image in sorted(manifest.fields.get("images", {}).values()):
                    image_manifest = manifest.dependency(image, runfiles)
                    owned += [(image_manifest, claim) for claim in claims(image_manifest)]
            places = [(owner, claim, _place(config, claim)) for owner, claim in owned]
        except (ReleasekitError, KeyError, TypeError, AttributeError):
            continue  # a manifest it cannot read: the release reports it when it runs
        for owner, claim, place in places:
            if place is not None:
                by_label = owners.setdefault(place, {})
                by_label.setdefault(owner.release, (claim, []))[1].append(manifest)
    refused = {}
    for by_label in owners.values():
        if len(by_label) < 2:
            continue
        labels = sorted(by_label)
        for label, (claim, manifests) in sorted(by_label.items()):
            where = config.destination("ci", claim.destination)
            for manifest in manifests:
                through = "" if manifest.release == label else " (through its image {})".format(label)
                refused.setdefault(manifest.target, (
                    "{} would publish to {} at {}{}, as {} would: one destination has one owner, so none of them ran "
                    "and nothing of theirs was published. Give each its own {}, or delete the copy.".format(
                        manifest.release, claim.what, where.text, through,
                        _and(other for other in labels if other != label),
                        claim.what.rsplit(" ", 1)[0])))
    return refused


def _and(names):
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _place(config, claim):
    """What identifies a place whatever it is called: the destination by identity, then the path."""
    try:
        destination = config.destination("ci", claim.destination)
    except ReleasekitError:
        return None
    host, port, segments = destination.identity()
    return destination.location_family(), host, port, segments + tuple(p for p in claim.path.split("/") if p)


def _refuse(label, owner, what, where, record):
    return DestinationOwnedError(
        "{}: the {} {} belongs to {} (its owner record {} says so), so this release was refused and nothing was "
        "published. One destination has one owner: give {} a {} of its own, or, if {} has handed it over, delete "
        "{}.".format(label, what, where, owner, record, label, what, owner, record))


def claim_registry(client, destination, repository, label, dry_run=False):
    """Refuse when the repository's owner record names another release; otherwise record label as its owner.
    Returns what a dry run would do, or None.

    A registry has no conditional writes, so a first claim is verified after a settle time (settle.py), before any
    blob or tag of the release is pushed: of two first releases at once, the one whose record was overwritten sees
    the other's label and refuses, and the other goes on."""
    records = registry_artifacts.records_repository(destination.path)
    tag = registry_artifacts.owner_tag(repository)
    record = "{}/{}:{}".format(destination.host, records, tag)
    where = "{}/{}".format(destination.host, repository)

    def owner():
        annotations = registry_artifacts.read_annotations(client, records, tag) or {}
        return annotations.get(registry_artifacts.RELEASE)

    gap = settle.Gap()
    found = owner()
    if found and found != label:
        raise _refuse(label, found, "repository", where, record)
    if found:
        return None
    if dry_run:
        return "would record {} as the owner of {}".format(label, where)
    registry_artifacts.put_artifact(client, records, tag, registry_artifacts.OWNER_TYPE,
                                    {registry_artifacts.RELEASE: label, registry_artifacts.REPOSITORY: repository})
    settle.wait(gap.written())
    found = owner()  # two first releases at once: both read back what stayed, and the one it does not name refuses
    if found != label:
        raise _refuse(label, found, "repository", where, record)
    return None


def claim_store(store, path, label, what, dry_run=False):
    """claim_registry for a store path: the object <path>/.releasekit-owner holds the owner's label, created as a
    compare-and-swap (store_updates.py). what names the kind of place (deploy path, files path, Maven coordinates)."""
    record = "/".join(p for p in (path, STORE_OWNER) if p)
    where = store.describe(path)

    def owner(content):
        return content.decode("utf-8", "replace").strip() if content is not None else None

    def decide(content):
        found = owner(content)
        if found and found != label:
            raise _refuse(label, found, what, where, store.describe(record))
        return (None if found else (label + "\n").encode("utf-8")), found

    if dry_run:
        return None if decide(store.get(record)[0])[1] else "would record {} as the owner of {}".format(label, where)
    store_updates.update(store, record, decide, lock_directory=path)
    found = owner(store.get(record)[0])
    if found != label:
        raise _refuse(label, found, what, where, store.describe(record))
    return None
