"""Read, decide, write: one object of a store updated as a compare-and-swap, so that two releases at once never both
act on what they read.

A place's owner record and a `latest` pointer are decided from what the store holds; two releases that read before
either writes would both act (two owners, a pointer moved back). Each store makes the read-decide-write one step its
own way:

- S3: the write is conditional on what was read (If-Match with its ETag, If-None-Match when there was nothing); the
  write that loses the race fails, and its release reads and decides again.
- A directory: under an flock of the object's directory, which every release that updates it takes.
- HTTP (WebDAV): under the store's MKCOL lock (webdav_lock.py), with If-Match / If-None-Match sent too, for servers
  that honour them (nginx does not). A server without MKCOL gives no lock: the release then writes, waits longer than
  a release takes from its read to its write (settle.py), reads again, and decides again when another release's
  write replaced its own.
"""

import logging

from releasekit.core.errors import ConflictError, StoreError
from releasekit.publishing import settle

log = logging.getLogger(__name__)
ATTEMPTS = 8


def update(store, path, decide, lock_directory=None):
    """decide(what path holds, bytes or None) -> (bytes to write, or None to leave it, result). The decision that
    stood wins: returns (its result, whether it wrote)."""
    directory = lock_directory if lock_directory is not None else path.rpartition("/")[0]
    with store.lock(directory) as held:
        guarded = bool(held) or store.conditional_writes
        for attempt in range(ATTEMPTS):
            gap = settle.Gap()
            current, version = store.get(path)
            new, result = decide(current)
            if new is None or new == current:
                return result, False
            if not guarded and gap.elapsed() > settle.REREAD_AFTER:
                gap = settle.Gap()  # deciding took long: what it read may be stale, and the gap must stay short
                again, version = store.get(path)
                if again != current:
                    continue
            try:
                store.put(path, new, if_match=version if current is not None else None, if_none_match=current is None)
            except ConflictError:
                log.info("%s changed while it was being decided; deciding again", store.describe(path))
                settle.back_off(attempt)
                continue
            if guarded:
                return result, True
            settle.wait(gap.written())
            if store.get(path)[0] == new:
                return result, True
            log.info("another release wrote %s at the same time; deciding again", store.describe(path))
    raise StoreError("{} kept changing while this release updated it ({} attempts): other releases write it at the "
                     "same time. Run the release again.".format(store.describe(path), ATTEMPTS))
