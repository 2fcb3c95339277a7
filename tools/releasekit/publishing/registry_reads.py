"""What a registry client reads: whether blobs, manifests and tags are there, what a tag names, manifests as JSON or
as the registry holds them, referrers. A mixin of RegistryClient (registry.py), which provides _request and _retry."""

import hashlib

from releasekit.core.errors import RegistryError, TransientError
from releasekit.core.redact import redact
from releasekit.publishing.oci import check_repository


class RegistryReads:
    def manifest_exists(self, repository, digest, scope):
        response = self._request("HEAD", "/v2/{}/manifests/{}".format(repository, digest), scope, "check manifest",
                                 headers={"Accept": ",".join(MANIFEST_ACCEPT)})
        return response.status_code == 200

    def check_push(self, repository, plan):
        """A dry run, read-only: the registry answers with these credentials, and what of the image it has.

        Returns (blobs present, blobs missing, bytes missing, whether the root manifest is there).
        """
        check_repository(repository)
        self.ping()
        scope = "repository:{}:pull".format(repository)
        present, missing, missing_bytes = 0, 0, 0
        for blob in plan.blobs:
            if self._retry(lambda b=blob: self.blob_exists(repository, b["digest"], scope), "check blob"):
                present += 1
            else:
                missing += 1
                missing_bytes += blob["size"]
        root = self._retry(lambda: self.manifest_exists(repository, plan.root["digest"], scope), "check manifest")
        return present, missing, missing_bytes, root

    def tag_exists(self, repository, tag):
        """Whether repository:tag exists (one HEAD; a repository the registry does not know has no tags)."""
        scope = "repository:{}:pull".format(repository)
        return self._retry(lambda: self.manifest_exists(repository, tag, scope), "check {}:{}".format(repository, tag))

    def read_manifest(self, repository, reference, accept=None):
        """The JSON of repository:reference as an OCI image manifest (or accept), or None when there is none (one
        GET)."""
        return self.read_json(repository, "manifests/" + reference, accept or MANIFEST_ACCEPT[0],
                              "read {}:{}".format(repository, reference[:40]))

    def tag_digest(self, repository, tag):
        """The digest repository:tag names (one HEAD; the manifest's own bytes when the registry does not say), or
        None when there is no such tag."""
        scope = "repository:{}:pull".format(repository)

        def operation():
            response = self._request("HEAD", "/v2/{}/manifests/{}".format(repository, tag), scope, "check " + tag[:40],
                                     headers={"Accept": ",".join(MANIFEST_ACCEPT)})
            return None if response.status_code == 404 else response.headers.get("Docker-Content-Digest") or "?"

        digest = self._retry(operation, "check {}:{}".format(repository, tag))
        if digest == "?":
            held = self.manifest_bytes(repository, tag)
            digest = None if held is None else "sha256:" + hashlib.sha256(held[0]).hexdigest()
        return digest

    _tag_digest = tag_digest

    def manifest_bytes(self, repository, reference):
        """(bytes, media type) of repository:reference as the registry holds it, or None when there is none."""
        scope = "repository:{}:pull".format(repository)
        what = "read {}:{}".format(repository, reference[:40])

        def operation():
            response = self._request("GET", "/v2/{}/manifests/{}".format(repository, reference), scope, what,
                                     headers={"Accept": ",".join(MANIFEST_ACCEPT)})
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise RegistryError("{} answered HTTP {}: {}.".format(what, response.status_code, error_text(response)))
            return response.content, response.headers.get("Content-Type", "").split(";")[0].strip()

        return self._retry(operation, what)

    def list_referrers(self, repository, digest):
        """The referrers API's descriptors of digest, or None when the registry has no referrers API."""
        index = self.read_json(repository, "referrers/" + digest, "application/vnd.oci.image.index.v1+json",
                               "list referrers of {}".format(digest[:19]), absent_is_none=True)
        return None if not isinstance(index, dict) else [m for m in index.get("manifests") or [] if isinstance(m, dict)]

    def read_json(self, repository, path, accept, what, absent_is_none=True):
        """GET /v2/<repository>/<path> as JSON; None on 404."""
        scope = "repository:{}:pull".format(repository)

        def operation():
            response = self._request("GET", "/v2/{}/{}".format(repository, path), scope, what,
                                     headers={"Accept": accept})
            if response.status_code == 404 and absent_is_none:
                return None
            if response.status_code != 200:
                raise RegistryError("{} answered HTTP {}: {}.".format(what, response.status_code, error_text(response)))
            try:
                return response.json()
            except ValueError:  # an answer cut short: reading again is safe
                raise TransientError("{}: not whole JSON".format(what)) from None

        return self._retry(operation, what)


MANIFEST_ACCEPT = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


def error_codes(response):
    """The error codes of a registry's answer (MANIFEST_BLOB_UNKNOWN, ...)."""
    try:
        return {e.get("code") for e in response.json().get("errors") or [] if isinstance(e, dict)}
    except (ValueError, AttributeError):
        return set()


def error_text(response):
    try:
        errors = response.json().get("errors") or []
        text = "; ".join("{} {}".format(e.get("code", ""), e.get("message", "")).strip() for e in errors)
    except ValueError:
        text = response.text[:200]
    return redact(text or response.reason or "no detail")
