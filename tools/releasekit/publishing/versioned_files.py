"""Versioned files in a store: the one algorithm by which the file and deploy kinds publish (and a kind of another rule
set can: docs/extending.md).

`<base>/<version>/` holds a version's files; `<base>/latest` holds the name of the current version. A release:
1. reads what the store holds of the version's files (a large file is not read back: the small file that covers it,
   its checksum, stands for it, and is written after it);
2. refuses a CI version already there with other content (ImmutableVersionError, exit 3): nothing is written;
3. writes only the files that differ, in the order given (a file before what describes it);
4. writes what the caller has to write after the files and before the pointer (signed provenance, an OCI copy);
5. then moves `latest`, only forward for CI: to a commit that descends from the one the version it names records in its
   release.json (pointers.py), and records what it did with it. The move is a compare-and-swap with what `latest`
   holds (store_updates.py), so two releases at once never move it back.
A dry run reads and refuses alike, and writes nothing. A dev version is replaced.
"""

import dataclasses
import json
import os

from releasekit.core.errors import ImmutableVersionError
from releasekit.publishing import pointers

POINTER = "latest"


@dataclasses.dataclass(frozen=True)
class VersionedFile:
    """One file of a version. content: its bytes, compared with the store's; or local_path: a large file, streamed,
    never read back, whose presence covered_by (the name of a file written after it: its checksum) stands for.
    immutable: part of what a CI version may not change. label: how a dry run names it (default: its name)."""

    name: str
    content: bytes = None
    local_path: str = None
    covered_by: str = None
    immutable: bool = True
    label: str = None

    @property
    def size(self):
        return len(self.content) if self.content is not None else os.path.getsize(self.local_path)


@dataclasses.dataclass
class Published:
    """What publish_version did: status (published, completed, already published, or what a dry run would write),
    the bytes it wrote, and the pointer's outcome (pointers.PointerOutcome)."""

    status: str
    bytes_written: int
    pointer: object


def summary_json(fields):
    """A version's release.json: what it is, from which commit (the pointer reads the commit back)."""
    return json.dumps(fields, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def publish_version(store, base, version, files, release, noun="version", before_pointer=None,
                    before_pointer_label=None):
    """Publish files as <base>/<version>/ and move <base>/latest (see the module docstring). release: the kinds'
    Release (its channel, commit, workspace and dry_run); noun: how a refusal names the version.
    before_pointer(bytes written so far): writes what comes after the files and before the pointer, and returns the
    bytes it wrote; a dry run calls it too, with the bytes the files would take, and it returns what it would write
    without writing it (before_pointer_label: how the dry run names that)."""
    directory = "{}/{}".format(base, version)
    held = {f.name: store.get("{}/{}".format(directory, f.name))[0] for f in files if f.content is not None}
    if release.channel == "ci":
        differing = [f.name for f in files if f.immutable and held.get(f.name) not in (None, f.content)]
        if differing:
            raise ImmutableVersionError(
                "{}: {} is already published with different content ({}); a CI {} is immutable, so nothing was "
                "written. Publish a new version.".format(release.manifest.release, store.describe(directory),
                                                         ", ".join(differing), noun))
    pending = _pending(files, held)
    if release.dry_run:
        current = store.get("{}/{}".format(base, POINTER))[0]
        pointer = pointers.store_pointer(store, base, version, current, release)
        moves = pointer.moves and current != (version + "\n").encode("utf-8")
        would = before_pointer(sum(f.size for f in pending)) if before_pointer is not None else 0
        labels = [f.label or f.name for f in pending] + [before_pointer_label] * bool(would and before_pointer_label)
        labels += ["pointer"] if moves else []
        return Published("would write " + ", ".join(labels) if labels else "already published", 0, pointer)
    written = 0
    for file in pending:
        if file.content is None:
            store.put_file("{}/{}".format(directory, file.name), file.local_path)
        else:
            store.put("{}/{}".format(directory, file.name), file.content)
        written += file.size
    extra = before_pointer(written) if before_pointer is not None else 0
    written += extra
    # Last, and decided again on what the pointer holds as it is written: another release may move it meanwhile.
    pointer, moved = pointers.move_store_pointer(store, base, version, release)
    written += moved
    if not pending and not moved and not extra:
        return Published("already published", 0, pointer)
    # Completed: part of the version was there already (a run that died), and this run wrote the rest.
    partly_there = any(f.immutable and f.content is not None and held.get(f.name) == f.content for f in files)
    return Published("completed" if partly_there else "published", written, pointer)


def _pending(files, held):
    """The files whose content the store lacks, in order: a large file when the file that covers it differs."""
    by_name = {f.name: f for f in files}
    pending = []
    for file in files:
        stands_for = by_name[file.covered_by] if file.content is None else file
        if held.get(stands_for.name) != stands_for.content:
            pending.append(file)
    return pending
