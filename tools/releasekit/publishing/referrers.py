"""OCI 1.1 referrers: an artifact that names another manifest as its `subject`, found from that manifest's digest.

A registry with the referrers API indexes a manifest pushed with a `subject` itself, and says so with the
`OCI-Subject` header on the push. One without it (Debian's CNCF distribution 2.8 is one) is served by the spec's
tag-schema fallback: the image index tagged `sha256-<hex of the subject digest>` lists the referrers' descriptors.
That index is read, extended and written again; the write is read back and retried when another release's write
replaced it, so two releases attaching to one image at once both stay listed.
"""

import logging
import random
import time

from releasekit.core.errors import RegistryError
from releasekit.publishing.oci import EMPTY_DESCRIPTOR, EMPTY_JSON, OCI_INDEX, OCI_MANIFEST, InlineLocation, \
    canonical_json, sha256_digest

log = logging.getLogger(__name__)
MERGE_ATTEMPTS = 6


def fallback_tag(digest):
    """The tag-schema fallback's tag for a subject digest: `<algorithm>-<hex>`."""
    return digest.replace(":", "-")


def push_referrer(client, repository, subject, artifact_type, blob_media_type, blob, annotations):
    """Push an artifact holding blob (bytes) as a referrer of subject (a descriptor: mediaType, digest, size).
    Returns the artifact manifest's digest. Blobs first, then the manifest by digest, then the fallback index."""
    layer = {"mediaType": blob_media_type, "digest": sha256_digest(blob), "size": len(blob)}
    client.push_blob(repository, EMPTY_DESCRIPTOR, InlineLocation(EMPTY_JSON))
    client.push_blob(repository, layer, InlineLocation(blob))
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                "config": EMPTY_DESCRIPTOR, "layers": [layer],
                "subject": {k: subject[k] for k in ("mediaType", "digest", "size")}, "annotations": dict(annotations)}
    content = canonical_json(manifest)
    digest = sha256_digest(content)
    response = client.put_manifest(repository, digest, OCI_MANIFEST, content)
    if response is not None and response.headers.get("OCI-Subject") == subject["digest"]:
        return digest  # the registry indexes referrers itself
    descriptor = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(content), "artifactType": artifact_type,
                  "annotations": dict(annotations)}
    _add_to_fallback_index(client, repository, subject["digest"], descriptor)
    return digest


def _add_to_fallback_index(client, repository, subject_digest, descriptor):
    tag = fallback_tag(subject_digest)
    for attempt in range(MERGE_ATTEMPTS):
        listed = _listed(client, repository, tag)
        if any(entry.get("digest") == descriptor["digest"] for entry in listed):
            return
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed + [descriptor]}
        client.put_manifest(repository, tag, OCI_INDEX, canonical_json(index))
        if any(entry.get("digest") == descriptor["digest"] for entry in _listed(client, repository, tag)):
            return
        log.info("the referrers index %s:%s changed under us; adding ours again", repository, tag)
        time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
    raise RegistryError("Could not add the provenance of {} to {}:{}: other releases keep rewriting it.".format(
        subject_digest[:19], repository, tag))


def _listed(client, repository, tag):
    index = client.read_manifest(repository, tag, accept=OCI_INDEX)
    entries = index.get("manifests") if isinstance(index, dict) else None
    return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []


def referrers(client, repository, subject_digest, artifact_type=None):
    """The descriptors of subject_digest's referrers: the referrers API where the registry has it, else the
    fallback tag's index."""
    found = client.list_referrers(repository, subject_digest)
    if found is None:
        found = _listed(client, repository, fallback_tag(subject_digest))
    return [entry for entry in found if artifact_type is None or entry.get("artifactType") == artifact_type]
