"""The channel marker: dev never writes where CI publishes, whatever the destination is called.

releasekit.yaml's check compares destinations by identity (config.Destination.overlaps), which no
name can fully settle: a proxy, a DNS alias or a second port of one server reach the same data. The
marker travels with the data instead. Every CI release makes sure its destination's root holds a
marker saying `ci` (one read; one write the first time); before its first write, a dev release reads
the marker at its destination's root and at each parent path, and refuses when one says `ci`.

- Stores (HTTP, S3, file): the object `.releasekit-channel` at the root, holding `ci`.
- Registries: the tag `ci` of the repository `<namespace>/releasekit-channel`, an empty OCI artifact.
"""

import dataclasses

from releasekit.core.errors import RefusedError
from releasekit.publishing.registry_artifacts import config_is_there, put_artifact, records_repository

STORE_MARKER = ".releasekit-channel"
MARKER_TYPE = "application/vnd.releasekit.channel.v1"
CLAIMED = b"ci\n"


def _parents(path):
    """The path and each parent, the path itself first: '/a/b' -> ['/a/b', '/a', '']; 'a/b' -> ['a/b', 'a', '']."""
    lead = "/" if path.startswith("/") else ""
    parts = [p for p in path.split("/") if p]
    return [(lead + "/".join(parts[:length])) if length else "" for length in range(len(parts), -1, -1)]


def _refuse(destination, where):
    return RefusedError(
        "{} is claimed by the CI channel: {} says so. A dev release never writes where CI releases publish, so "
        "nothing was written. Give the dev channel a destination of its own in {}.".format(
            destination.describe(), where, "releasekit.yaml"))


def guard_store(channel, destination, store, open_store, dry_run=False):
    """CI: claim the store's root. Dev: refuse when the root or a parent is claimed.

    store is the destination's own store; open_store(destination) opens a parent's. A dry run only reads: it
    says whether CI would claim the root, and refuses a dev release as a run would.
    """
    if channel == "ci":
        if store.get(STORE_MARKER)[0] != CLAIMED:
            if dry_run:
                return "would claim {} for the CI channel".format(store.describe(STORE_MARKER))
            store.put(STORE_MARKER, CLAIMED)
        return None
    for path in _parents(destination.path):
        level = store if path == destination.path else open_store(dataclasses.replace(destination, path=path))
        if level.get(STORE_MARKER)[0] == CLAIMED:
            raise _refuse(destination, level.describe(STORE_MARKER))
    return None


def guard_registry(channel, destination, client, dry_run=False):
    """CI: claim the registry namespace. Dev: refuse when the namespace or a parent is claimed."""
    if channel == "ci":
        repository = records_repository(destination.path)
        if dry_run:
            if not client.tag_exists(repository, CLAIMED.strip().decode()):
                return "would claim {}/{}:ci for the CI channel".format(destination.host, repository)
            return None
        if not client.tag_exists(repository, CLAIMED.strip().decode()):
            put_artifact(client, repository, CLAIMED.strip().decode(), MARKER_TYPE)
        config_is_there(client, repository)  # the marker's: the records written beside it need not check it
        return None
    for path in _parents(destination.path):
        repository = records_repository(path)
        if client.tag_exists(repository, CLAIMED.strip().decode()):
            raise _refuse(destination, "{}/{}:ci".format(destination.host, repository))
    return None

