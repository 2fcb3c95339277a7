"""Stores: where publishing writes files (Maven layout, deploy YAML, files), where collect records target graphs and
where CI runs keep their history. One protocol, Store; one registry of URL schemes (schemes.py); a backend per module
(http.py with webdav_lock.py, s3.py, directory.py). tests/core/test_store_contract.py runs every backend through the
same contract.

The contract, for a path below the store's root ('a/b.txt'; a directory 'a' or 'a/'):
- get(path) -> (bytes, version) or (None, None) when nothing is there. The version is what if_match compares.
- put(path, data, if_match=None, if_none_match=False): the whole object, replaced at once; a reader never sees half
  of it. Where `conditional_writes` is True, a stale if_match or an object already there with if_none_match raises
  ConflictError and leaves the object as it was (HTTP servers differ: the header is sent, a 412 is a conflict).
  A server that refuses to replace a published file (400, 403, 409) raises AlreadyPublishedError.
- put_file(path, local path): put, streamed from disk.
- exists(path) -> bool; delete(path): gone afterwards, and a path not there is fine.
- list(directory) -> sorted names, subdirectories ending in '/'; [] when the directory is not there.
- lock(directory): a context manager that serialises the writers of directory and yields True where the store has a
  lock (WebDAV MKCOL, flock); it yields False at once where it has none (S3, whose conditional writes serialise, or an
  HTTP server without MKCOL, where read-back has to do).
- with_policy(retry policy) -> the same store with another retry policy; describe(path) -> a URL for messages.
- Every failure is a StoreError (AuthError for refused credentials, ConflictError for a lost condition), retried first
  when transient (core/http.py's policy).
Who writes what, and in which order (files before the metadata that lists them), is the callers' business.
"""

import os
from typing import Protocol

from releasekit.core.credentials import ANONYMOUS, host_entry_credentials, store_credentials
from releasekit.core.stores.schemes import scheme_of


class Store(Protocol):
    """What every backend offers (see the contract above)."""

    destination: object
    conditional_writes: bool

    def describe(self, path=""): ...

    def get(self, path): ...

    def exists(self, path): ...

    def put(self, path, data, if_match=None, if_none_match=False): ...

    def put_file(self, path, local_path): ...

    def delete(self, path): ...

    def list(self, directory): ...

    def lock(self, directory): ...

    def with_policy(self, policy): ...


def open_store(destination, policy, environ=None, credentials=None):
    """The Store of a destination. credentials: read once by the run (RunContext); else from environ's variables of
    the destination's kind, where its scheme takes them."""
    environ = os.environ if environ is None else environ
    scheme = scheme_of(destination)
    if credentials is None:
        credentials = store_credentials(destination.kind, environ) if scheme.takes_store_credentials else ANONYMOUS
        if credentials is ANONYMOUS and scheme.takes_store_credentials:
            credentials = host_entry_credentials(destination, environ)
    return scheme.open(destination, policy, credentials, environ)
