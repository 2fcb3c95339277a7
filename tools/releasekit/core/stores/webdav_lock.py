"""The lock of an HTTP store with WebDAV collections: an MKCOL lock directory, held as a renewed lease.

The WebDAV lock is a lease. Its holder writes an owner file right after MKCOL, within OWNER_WRITE_SECONDS
or it steps back, and rewrites it every LEASE_RENEW_SECONDS. A waiter breaks the lock only when the
owner is a process of its own host that has exited, when no owner file appeared for ORPHANED_LOCK_SECONDS,
or when the owner file did not change for LEASE_SECONDS, both measured on the waiter's own clock. Each
limit is a multiple of what the holder is allowed, so a live holder, however slowed, is never broken.
"""

import contextlib
import dataclasses
import json
import logging
import os
import socket
import threading
import time

from releasekit.core.errors import ReleasekitError, StoreError

log = logging.getLogger(__name__)
OWNER_WRITE_SECONDS = 5.0
ORPHANED_LOCK_SECONDS = 3 * OWNER_WRITE_SECONDS
LEASE_RENEW_SECONDS = 5.0
LEASE_SECONDS = 6 * LEASE_RENEW_SECONDS
MKCOL_REFUSALS = 3  # a 405 with no lock directory there, this many times running: the server has no MKCOL


def _lock_owner(renewal=0):
    return {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time(), "renewal": renewal}


def _owner_has_exited(owner):
    """True when the lock's owner is a process of this host that no longer runs."""
    if owner.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(owner.get("pid", 0)), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, TypeError):
        return False
    return False


@contextlib.contextmanager
def held(store, directory):
    """The lock on directory of an HttpStore, through its public methods; yields whether it is held (False where the
    server has no MKCOL)."""
    lock_dir = directory.rstrip("/") + "/.releasekit-lock/"
    owner_path = lock_dir + "owner.json"
    taken = _acquire(store, directory, lock_dir, owner_path)
    renewer = _LeaseRenewer(store, owner_path) if taken else None
    try:
        yield taken
    finally:
        if renewer:
            renewer.stop()
            _remove(store, lock_dir, owner_path)


def _remove(store, lock_dir, owner_path):
    store.delete(owner_path)
    store.delete(lock_dir)


def _acquire(store, directory, lock_dir, owner_path):
    """True once this process holds the lock; False where the server has no MKCOL."""
    deadline = time.monotonic() + store.policy.total_seconds
    owner_writes = store.with_policy(dataclasses.replace(store.policy, total_seconds=OWNER_WRITE_SECONDS,
                                                         timeout=min(store.policy.timeout, OWNER_WRITE_SECONDS)))
    ownerless_since, seen_owner, seen_since = None, None, None
    refused_without_directory = 0  # MKCOL answered 405, and yet no lock directory is there
    while True:
        status = store.make_collection(lock_dir)
        if status == 409:  # a parent collection is missing
            store.make_collections(directory)
            status = store.make_collection(lock_dir)
        if status == 201:
            if _write_owner_in_time(owner_writes, owner_path):
                return True
            # Too slow to say who holds it: a waiter may soon count it orphaned, so step back and try again.
            log.info("stepping back from the lock on %s: its owner file took too long to write", directory)
            _remove(store, lock_dir, owner_path)
            continue
        if status != 405:
            log.warning("no lock on %s (MKCOL answered HTTP %s): conditional writes and read-back have to do",
                        directory, status)
            return False
        content, _ = store.get(owner_path)
        now = time.monotonic()
        if content is None:
            seen_owner = None
            if not store.exists(lock_dir):
                # Either the server has no MKCOL, or the holder released the lock since our MKCOL: ask again. Only
                # a server that keeps refusing to create a directory that is not there has no MKCOL.
                refused_without_directory += 1
                if refused_without_directory < MKCOL_REFUSALS:
                    ownerless_since = None
                    continue
                log.info("no lock on %s (the server has no MKCOL): conditional writes and read-back have to do",
                         directory)
                return False
            refused_without_directory = 0
            if ownerless_since is None:
                ownerless_since = now
            broken = now - ownerless_since > ORPHANED_LOCK_SECONDS
        else:
            ownerless_since, refused_without_directory = None, 0
            if content != seen_owner:
                seen_owner, seen_since = content, now
            broken = _owner_has_exited(_parsed_owner(content)) or now - seen_since > LEASE_SECONDS
        if broken:
            log.info("breaking a stale lock on %s", directory)
            _remove(store, lock_dir, owner_path)
            ownerless_since, seen_owner = None, None
            continue
        if now > deadline:
            raise StoreError("{} stayed locked by another release for too long.".format(store.describe(directory)))
        time.sleep(0.1 + 0.2 * (os.getpid() % 5) / 5)


def _write_owner_in_time(owner_writes, owner_path):
    """Write the owner file; whether that took at most OWNER_WRITE_SECONDS (a failed write counts as slow)."""
    started = time.monotonic()
    try:
        owner_writes.put(owner_path, json.dumps(_lock_owner()).encode())
    except ReleasekitError:
        pass
    return time.monotonic() - started <= OWNER_WRITE_SECONDS


def _parsed_owner(content):
    try:
        return json.loads(content)
    except ValueError:
        return {}


class _LeaseRenewer:
    """Rewrites the lock's owner file every LEASE_RENEW_SECONDS while the lock is held."""

    def __init__(self, store, owner_path):
        self.owner_path = owner_path
        self.store = store.with_policy(dataclasses.replace(store.policy, total_seconds=LEASE_SECONDS / 3,
                                                           timeout=min(store.policy.timeout, LEASE_SECONDS / 3)))
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="lease-renewer", daemon=True)
        self.thread.start()

    def _run(self):
        renewal = 0
        while not self.stopped.wait(LEASE_RENEW_SECONDS):
            renewal += 1
            try:
                self.store.put(self.owner_path, json.dumps(_lock_owner(renewal)).encode())
            except ReleasekitError as error:
                # The metadata it guards is still written conditionally and read back, so a lost lease costs a retry.
                log.warning("could not renew the lock %s: %s", self.owner_path, error)

    def stop(self):
        self.stopped.set()
        self.thread.join()
