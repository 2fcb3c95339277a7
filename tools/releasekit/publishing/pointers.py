"""Pointers only move forward.

A pointer is what names "the current one" rather than one version: an image's remote tags (`stable`) and a store's
`latest`. A CI release moves a pointer only to a commit that descends from the commit it points at (ancestry.py, git
in the release's workspace). An older commit whose run finishes last (a retried or slow pipeline, two pipelines at
once) still publishes what is immutable (the commit tag, the version directory), leaves the pointer where it is, and
says so in its record (`pointers`) and its summary line. A pointer with no recorded commit (published before pointers
were recorded) moves, and the record says so. Dev releases move their pointers as they always did.

Where each pointer's commit is recorded, for the next release to read:
- an image tag: its pointer record (registry_artifacts.py), `org.opencontainers.image.revision`, written just
  before the tag moves: a record never lags behind its tag, so a lost tag write can hold a pointer back, never let
  an older commit pass it;
- a store's `latest`: the `release.json` of the version it names, written before the pointer, as always.

Two releases at once: a store's `latest` moves as a compare-and-swap (move_store_pointer, store_updates.py); an image
tag, in a registry that has none, by the record-settle-confirm protocol of tag_moves.py.
"""

import json

from releasekit.publishing import ancestry, store_updates

MOVED, LEFT, KEPT = "moved", "left", "kept"  # kept: already where this release would move it


class PointerOutcome:
    """What a release did with one pointer."""

    def __init__(self, pointer, action, commit, recorded=None, note=None):
        self.pointer, self.action, self.commit, self.recorded, self.note = pointer, action, commit, recorded, note

    @property
    def moves(self):
        return self.action == MOVED

    def as_record(self, dry_run=False):
        entry = {"pointer": self.pointer, "action": ("would be " if dry_run else "") + self.action,
                 "commit": self.commit, "recorded_commit": self.recorded}
        if self.note:
            entry["note"] = self.note
        return entry


def decide(pointer, recorded, commit, workspace, existed=True):
    """Whether a CI release of commit moves pointer, which records `recorded` (None: no commit recorded)."""
    if recorded is None:
        note = "it had no recorded commit: published before releasekit recorded pointers, or by another tool" \
            if existed else None
        return PointerOutcome(pointer, MOVED, commit, None, note)
    answer = ancestry.relation(workspace, recorded, commit)
    if answer.relation == ancestry.SAME:
        return PointerOutcome(pointer, MOVED, commit, recorded)
    return PointerOutcome(pointer, MOVED if answer.moves else LEFT, commit, recorded,
                          None if answer.moves else answer.detail)


def store_pointer(store, base, version, current, release):
    """Whether a release moves the store pointer `<base>/latest`, which now holds `current` (bytes or None)."""
    commit = release.source_version.commit
    if release.channel != "ci" or current is None:
        return PointerOutcome("latest", MOVED, commit)
    named = current.decode("utf-8", "replace").strip()
    if named == version:
        return PointerOutcome("latest", KEPT, commit, commit)
    summary = store.get("{}/{}/release.json".format(base, named))[0]
    try:
        recorded = json.loads(summary).get("commit") if summary else None
    except (ValueError, AttributeError):
        recorded = None
    return decide("latest", recorded if isinstance(recorded, str) else None, commit, release.workspace)


def move_store_pointer(store, base, version, release):
    """Move `<base>/latest` to version when it may (store_pointer decides), as one compare-and-swap with what it holds
    (store_updates.py): a release that read it before another's write decides again on that write. Returns (outcome,
    bytes written)."""
    pointer = (version + "\n").encode("utf-8")

    def decide(current):
        outcome = store_pointer(store, base, version, current, release)
        return (pointer if outcome.moves and current != pointer else None), outcome

    outcome, wrote = store_updates.update(store, base + "/latest", decide, lock_directory=base)
    return outcome, len(pointer) if wrote else 0


def notes(record):
    """What a summary line says about pointers a release left alone, or moved without a recorded commit."""
    said = []
    for entry in record.get("pointers") or []:
        if entry["action"].endswith(LEFT):
            said.append("{} {} at {} ({})".format(entry["pointer"], entry["action"],
                                                 (entry.get("recorded_commit") or "?")[:12], entry.get("note", "")))
        elif entry.get("note"):
            said.append("{} {} ({})".format(entry["pointer"], entry["action"], entry["note"]))
    return said
