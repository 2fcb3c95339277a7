"""Which repositories of a registry hold a blob, remembered so that a push mounts instead of uploading."""

import json
import logging
import os
import threading

from releasekit.core import environment
from releasekit.core.jsonio import write_atomic

log = logging.getLogger(__name__)


# Blobs remembered per registry, the most recently pushed kept: the file stays small on an agent that lives for
# months (every release reads and writes it whole), and a mount source matters most for recent blobs.
KEPT_PER_REGISTRY = 2000


class BlobLocator:
    """Remembers which repositories of a registry hold a blob, to mount instead of uploading.

    Kept in memory for the run and in a small cache file between runs; losing it costs uploads, not correctness.
    """

    def __init__(self, path=None):
        self.path = path
        self.lock = threading.Lock()
        self.known = {}
        if path:
            try:
                with open(path, encoding="utf-8") as handle:
                    self.known = json.load(handle)
            except (OSError, ValueError):
                self.known = {}

    @classmethod
    def default(cls):
        return cls(os.path.join(environment.cache_directory(), "blob-locations.json"))

    def candidates(self, host, digest, repository):
        with self.lock:
            return [r for r in self.known.get(host, {}).get(digest, []) if r != repository][:3]

    def remember(self, host, digest, repository):
        with self.lock:
            blobs = self.known.setdefault(host, {})
            repos = blobs.pop(digest, [])  # and back in last: the most recent at the end
            blobs[digest] = repos
            if repository in repos:
                repos.remove(repository)
            repos.insert(0, repository)
            del repos[5:]

    def save(self):
        if not self.path:
            return
        try:
            with self.lock:
                for host, blobs in self.known.items():
                    if len(blobs) > KEPT_PER_REGISTRY:
                        self.known[host] = dict(list(blobs.items())[-KEPT_PER_REGISTRY:])
                data = json.dumps(self.known)
            write_atomic(self.path, data)
        except OSError as error:
            log.debug("blob location cache not saved: %s", error)
