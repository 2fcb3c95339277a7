"""Small OCI artifacts releasekit keeps in a registry: an empty config, no layers, and what they say in annotations.
They live in one repository per namespace, `<namespace>/releasekit-channel`, so that image repositories list only
the tags users push; each is a tag of its own, read with one GET.

- `ci`: the channel marker (channel_marker.py);
- `owner.<sha256 of the repository>`: the release that owns an image repository (ownership.py);
- `pointer.<sha256 of repository:tag>`: the commit a remote tag such as `stable` was last moved to, in the
  standard `org.opencontainers.image.revision` annotation (pointers.py).

Records are tags rather than OCI 1.1 referrers: Debian's CNCF distribution registry (2.8) has no referrers API, and
a referrer hangs off an image digest, which commits share (a reproducible image does not change when an unrelated
file does), while a pointer's commit belongs to the tag, not to the image.
"""

import hashlib
import random
import time

from releasekit.core.errors import RegistryError
from releasekit.publishing.registry import BLOB_RACE_ATTEMPTS, BLOB_RACE_CODES
from releasekit.publishing.oci import EMPTY_DESCRIPTOR, EMPTY_JSON, OCI_MANIFEST, InlineLocation, canonical_json

RECORDS_REPOSITORY = "releasekit-channel"
OWNER_TYPE = "application/vnd.releasekit.owner.v1"
POINTER_TYPE = "application/vnd.releasekit.pointer.v1"
RELEASE = "vnd.releasekit.release"  # the label of the release that wrote the record
REPOSITORY = "vnd.releasekit.repository"  # the image repository a record is about
REVISION = "org.opencontainers.image.revision"
REF_NAME = "org.opencontainers.image.ref.name"
DIGEST = "vnd.releasekit.digest"  # the image a pointer record's tag was moved to


def records_repository(namespace):
    """The repository of a registry namespace that holds its channel marker and records."""
    return "/".join(part for part in (namespace, RECORDS_REPOSITORY) if part)


def owner_tag(repository):
    return "owner." + hashlib.sha256(repository.encode("utf-8")).hexdigest()


def pointer_tag(repository, tag):
    return "pointer." + hashlib.sha256("{}:{}".format(repository, tag).encode("utf-8")).hexdigest()


def config_is_there(client, repository):
    """Remember that the records repository has the empty config blob (an artifact there names it): not asked again."""
    client.present.add((repository, EMPTY_DESCRIPTOR["digest"]))


def read_annotations(client, repository, tag):
    """The annotations of the artifact at repository:tag ({} when it has none), or None when there is none."""
    manifest = client.read_manifest(repository, tag)
    if manifest is None:
        return None
    annotations = manifest.get("annotations") if isinstance(manifest, dict) else None
    return dict(annotations) if isinstance(annotations, dict) else {}


def put_artifact(client, repository, tag, artifact_type, annotations=None):
    """Write an empty artifact under repository:tag: its config blob first, then the manifest.

    Two releases that write the first records of a namespace at once upload its config blob at once, and the
    distribution registry may then refuse a manifest naming it (MANIFEST_BLOB_UNKNOWN, DIGEST_INVALID) while the
    other upload settles: the blob is pushed again and the manifest written again, a few times."""
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                "config": EMPTY_DESCRIPTOR, "layers": []}
    if annotations:
        manifest["annotations"] = dict(annotations)
    for attempt in range(BLOB_RACE_ATTEMPTS):
        client.push_blob(repository, EMPTY_DESCRIPTOR, InlineLocation(EMPTY_JSON))
        try:
            client.put_manifest(repository, tag, OCI_MANIFEST, canonical_json(manifest))
            return
        except RegistryError as error:
            if not getattr(error, "codes", set()) & BLOB_RACE_CODES or attempt == BLOB_RACE_ATTEMPTS - 1:
                raise
            client.present.discard((repository, EMPTY_DESCRIPTOR["digest"]))
            time.sleep(random.uniform(0.05, 0.25) * (attempt + 1))
