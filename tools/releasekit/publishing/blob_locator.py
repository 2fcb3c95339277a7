"""Which repositories of a registry hold a blob, remembered so that a push mounts instead of uploading."""

import json
import logging
import os
import threading

from releasekit.core.jsonio import write_atomic

log = logging.getLogger(__name__)


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
        root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return cls(os.path.join(root, "releasekit", "blob-locations.json"))

    def candidates(self, host, digest, repository):
        with self.lock:
            return [r for r in self.known.get(host, {}).get(digest, []) if r != repository][:3]

    def remember(self, host, digest, repository):
        with self.lock:
            repos = self.known.setdefault(host, {}).setdefault(digest, [])
            if repository in repos:
                repos.remove(repository)
            repos.insert(0, repository)
            del repos[5:]

    def save(self):
        if not self.path:
            return
        try:
            with self.lock:
                data = json.dumps(self.known)
            write_atomic(self.path, data)
        except OSError as error:
            log.debug("blob location cache not saved: %s", error)
