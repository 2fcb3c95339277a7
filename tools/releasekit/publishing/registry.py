"""A daemonless OCI distribution client: pushes an image plan to a registry.

Order is the invariant that keeps a registry from ever showing half an image:
every blob first (in parallel, bounded), then child manifests, then the root
manifest by digest, then its tags. A run that dies leaves at most unreferenced
blobs behind, which a re-run reuses.
"""

import concurrent.futures
import dataclasses
import hashlib
import logging
import re
import urllib.parse

from releasekit.core.errors import AuthError, ImageError, RegistryError, TLSError, TransientError
from releasekit.publishing.oci import ByteCounter, HashingBody, check_repository, check_tag
from releasekit.core.http import TRANSPORT_ERRORS, HttpClient, raise_for_transient, with_retries
from releasekit.publishing.blob_locator import BlobLocator
from releasekit.publishing.registry_auth import RegistryAuth
from releasekit.publishing.registry_reads import RegistryReads, error_codes, error_text

log = logging.getLogger(__name__)
DEFAULT_CHUNK_SIZE = 64 << 20
# A manifest refused because another push of its blobs at once has not settled yet: pushed again, a few times.
BLOB_RACE_CODES = {"MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN", "DIGEST_INVALID"}
BLOB_RACE_ATTEMPTS = 5
@dataclasses.dataclass
class PushResult:
    repository: str
    digest: str
    tags: list
    bytes_uploaded: int = 0
    blobs_uploaded: int = 0
    blobs_skipped: int = 0
    blobs_mounted: int = 0
    already_there: bool = False  # every blob, the image and each tag were there: nothing was written


class RegistryClient(RegistryReads):
    """Talks to one registry host. Thread-safe: blobs are pushed from several threads."""

    def __init__(self, destination, credentials, policy, workers=4, chunk_size=DEFAULT_CHUNK_SIZE, locator=None):
        self.destination = destination
        self.host = destination.host
        self.base_url = "{}://{}".format(destination.scheme, destination.host)
        self.credentials = credentials
        self.policy = policy
        self.workers = max(1, workers)
        self.chunk_size = chunk_size
        self.locator = locator or BlobLocator()
        self.http = HttpClient.for_destination(destination, pool_size=self.workers + 2)
        self.auth = RegistryAuth(self.host, credentials, self.http, policy)
        self.present = set()  # (repository, digest) of blobs this client pushed or found there: not asked again

    # -- HTTP -----------------------------------------------------------------------------

    def _request(self, method, url, scope, what, body=None, headers=None, allow_statuses=()):
        """One request with authentication; transient statuses raise TransientError for the caller's retry."""
        url = urllib.parse.urljoin(self.base_url, url)
        for attempt in range(3):
            request_headers = dict(headers or {})
            authorization = self.auth.authorization(scope)
            if authorization:
                request_headers["Authorization"] = authorization
            response = self.http.request(method, url, data=body, headers=request_headers, timeout=self.policy.timeout)
            if response.status_code == 401 and response.status_code not in allow_statuses:
                # A fresh token or newly chosen scheme gets one more try; a third 401 is a refusal.
                if attempt < 2 and self.auth.handle_challenge(response, scope, what, authorization):
                    continue
                raise AuthError(
                    "{}: the registry {} refused the credentials from {} (HTTP 401). Check them, or run "
                    "`docker login {}`.".format(what, self.host, self.credentials.source, self.host)
                )
            raise_for_transient(response, what)
            if response.status_code == 403:
                raise AuthError(
                    "{}: the registry {} denied access (HTTP 403); the credentials from {} may lack push "
                    "rights on this repository.".format(what, self.host, self.credentials.source)
                )
            return response
        raise AuthError("{}: the registry {} kept asking for authentication.".format(what, self.host))

    def ping(self):
        def operation():
            response = self._request("GET", "/v2/", "", "registry {}".format(self.host), allow_statuses=(401,))
            if response.status_code == 401:
                self.auth.handle_challenge(response, "", "registry {}".format(self.host))
            elif response.status_code == 404:
                raise RegistryError(
                    "{} does not speak the OCI distribution API (GET /v2/ answered 404). Check the registry "
                    "address in releasekit.yaml.".format(self.base_url)
                )
            return response

        return self._retry(operation, "reach registry {}".format(self.host))

    def _retry(self, operation, what, progress=None, requests=1):
        """Retry an operation whole; one of `requests` requests gets the tries each request is allowed."""
        policy = self.policy if requests == 1 else dataclasses.replace(self.policy,
                                                                       attempts=self.policy.attempts * requests)
        try:
            # The address as connected to, port included: a refused or unresolved connection names where it went.
            return with_retries(operation, policy, what, progress, gives_up_as=RegistryError,
                                place="the registry " + self.destination.address())
        except TLSError as error:
            raise TLSError("{} (the registry {})".format(error, self.destination.address())) from None

    # -- blobs ----------------------------------------------------------------------------

    def blob_exists(self, repository, digest, scope):
        response = self._request("HEAD", "/v2/{}/blobs/{}".format(repository, digest), scope,
                                 "check blob " + digest[:19])
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise RegistryError("Checking blob {} answered HTTP {}.".format(digest, response.status_code))

    def push_blob(self, repository, blob, location, counter=None):
        """Returns 'skipped', 'mounted' or 'uploaded'."""
        digest = blob["digest"]
        if (repository, digest) in self.present:
            return "skipped"
        scope = _push_scope(repository)
        counter = counter or ByteCounter()
        resume = {}

        def operation():
            if self.blob_exists(repository, digest, scope):
                return "skipped"
            for source in self.locator.candidates(self.host, digest, repository):
                mount_scope = scope + " repository:{}:pull".format(source)
                response = self._request(
                    "POST",
                    "/v2/{}/blobs/uploads/?mount={}&from={}".format(repository, digest, urllib.parse.quote(source)),
                    mount_scope, "mount blob " + digest[:19],
                )
                if response.status_code == 201:
                    return "mounted"
                if response.status_code == 202:
                    # Not mounted; the registry opened an upload session instead. Close it.
                    self._cancel(response.headers.get("Location"), scope)
            self._upload(repository, blob, location, scope, counter, resume)
            return "uploaded"

        # Three requests (check, open, commit): each fault anywhere costs the whole operation a try.
        outcome = self._retry(operation, "push blob {} to {}".format(digest[:19], repository),
                              progress=lambda: resume.get("progress", 0), requests=3)
        self.locator.remember(self.host, digest, repository)
        self.present.add((repository, digest))
        return outcome

    def _push_listed_blob(self, repository, blob, location, counter):
        try:
            return self.push_blob(repository, blob, location, counter)
        finally:
            location.done()

    def _cancel(self, upload_url, scope):
        if upload_url:
            try:
                self._request("DELETE", upload_url, scope, "cancel upload")
            except (*TRANSPORT_ERRORS, TransientError, RegistryError):
                pass

    def _upload(self, repository, blob, location, scope, counter, resume):
        """Upload one blob. `resume` carries a chunked upload's progress from a failed attempt to the next."""
        digest, size = blob["digest"], blob["size"]
        upload_url, offset = self._resume_point(resume, scope, size)
        if upload_url is None:
            response = self._request("POST", "/v2/{}/blobs/uploads/".format(repository), scope,
                                     "start upload " + digest[:19])
            if response.status_code != 202:
                raise RegistryError("Starting the upload of {} answered HTTP {}.".format(digest, response.status_code))
            upload_url, offset, hasher = _location(response), 0, location.new_hasher()
        else:
            # The registry holds the first `offset` bytes: rebuild the running hash from disk, not the network.
            hasher = location.new_hasher()
            for chunk in location.chunks(0, offset):
                hasher.update(chunk)
            log.info("resuming the upload of %s at byte %d of %d", digest[:19], offset, size)
        if size <= self.chunk_size:
            body = HashingBody(location, 0, size, hasher, counter)
            response = self._request(
                "PUT", _with_digest(upload_url, digest), scope, "upload blob " + digest[:19],
                body=body, headers={"Content-Type": "application/octet-stream"},
            )
            self._check_committed(response, digest, hasher, location)
            return
        while offset < size:
            resume["url"] = upload_url
            end = min(size, offset + self.chunk_size)
            body = HashingBody(location, offset, end, hasher, counter)
            response = self._request(
                "PATCH", upload_url, scope, "upload chunk of " + digest[:19], body=body,
                headers={"Content-Type": "application/octet-stream", "Content-Range": "{}-{}".format(offset, end - 1)},
            )
            if response.status_code != 202:
                raise RegistryError("Uploading a chunk of {} answered HTTP {}.".format(digest, response.status_code))
            upload_url, offset = _location(response), end
            resume["progress"] = max(resume.get("progress", 0), offset)
        resume.pop("url", None)
        if "sha256:" + hasher.hexdigest() != digest:
            self._cancel(upload_url, scope)
            raise location.mismatch(digest, "sha256:" + hasher.hexdigest())
        response = self._request("PUT", _with_digest(upload_url, digest), scope, "commit blob " + digest[:19],
                                 headers={"Content-Length": "0"})
        self._check_committed(response, digest, hasher, location)

    def _resume_point(self, resume, scope, size):
        """After a failed chunked upload, ask the registry how much of it arrived (GET on the upload URL)."""
        url = resume.get("url")
        if not url:
            return None, 0
        try:
            response = self._request("GET", url, scope, "resume upload")
        except (*TRANSPORT_ERRORS, TransientError):
            return None, 0
        match = re.match(r"^0-(\d+)$", response.headers.get("Range", "")) if response.status_code == 204 else None
        # "0-0" is ambiguous (nothing, or one byte); any answer but a 204 means the session is gone (a registry
        # cancels a session resumed with a stale state, as after a chunk whose answer was lost).
        if not match or not 0 < int(match.group(1)) + 1 < size or match.group(1) == "0":
            return None, 0
        return response.headers.get("Location") or url, int(match.group(1)) + 1

    def _check_committed(self, response, digest, hasher, location):
        if response.status_code == 201:
            return
        if response.status_code == 400 and "sha256:" + hasher.hexdigest() != digest:
            raise location.mismatch(digest, "sha256:" + hasher.hexdigest())
        raise RegistryError("Committing blob {} answered HTTP {}: {}.".format(digest, response.status_code,
                                                                              error_text(response)))

    # -- manifests ------------------------------------------------------------------------

    def put_manifest(self, repository, reference, media_type, content):
        scope = _push_scope(repository)

        def operation():
            response = self._request(
                "PUT", "/v2/{}/manifests/{}".format(repository, reference), scope, "put manifest " + reference[:19],
                body=content, headers={"Content-Type": media_type},
            )
            if response.status_code not in (200, 201):
                error = RegistryError(
                    "The registry refused manifest {} for {} (HTTP {}: {}).".format(
                        reference, repository, response.status_code, error_text(response)
                    )
                )
                error.codes = error_codes(response)
                raise error
            return response

        return self._retry(operation, "put manifest {} to {}".format(reference[:19], repository))

    def push(self, repository, plan, tags, tagged_already=None):
        """Push an ImagePlan: blobs, then manifests children first, then tags. tagged_already: the tags that, when no
        blob was sent and each names the image already, make this a re-run that writes no manifest (default: tags)."""
        check_repository(repository)
        for tag in tags:
            check_tag(tag)
        manifests = []
        for manifest in plan.manifests:  # every manifest checked before the first request
            content = plan.manifest_bytes(manifest)
            if "sha256:" + hashlib.sha256(content).hexdigest() != manifest["digest"]:
                raise ImageError("Manifest {} of the image does not match its digest; rebuild the image.".format(
                    manifest["digest"]))
            manifests.append((manifest, content))
        self.ping()
        if self.auth.uses_token_challenge:
            # One token for the push scope before the uploads start, not one per racing thread.
            self._retry(lambda: self.auth.fetch_token(_push_scope(repository), "authenticate"), "authenticate")
        result = PushResult(repository=repository, digest=plan.root["digest"], tags=list(tags))
        counter = ByteCounter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = {
                pool.submit(self._push_listed_blob, repository, blob, plan.location(blob), counter): blob
                for blob in plan.blobs
            }
            failures = []
            for future in concurrent.futures.as_completed(futures):
                try:
                    outcome = future.result()
                except Exception as error:  # collected; the first is raised after all finish
                    failures.append(error)
                    for other in futures:
                        other.cancel()
                    continue
                if outcome == "uploaded":
                    result.blobs_uploaded += 1
                elif outcome == "mounted":
                    result.blobs_mounted += 1
                else:
                    result.blobs_skipped += 1
        result.bytes_uploaded = counter.value
        self.locator.save()
        if failures:
            raise failures[0]
        scope = _push_scope(repository)
        tagged_already = tags if tagged_already is None else tagged_already
        if not (result.blobs_uploaded or result.blobs_mounted) and tagged_already and all(
                self._tag_digest(repository, tag) == plan.root["digest"] for tag in tagged_already):
            # A re-run: every tag names this image already (one HEAD each, only when no blob was sent).
            result.already_there = True
            return result
        self._put_manifests(repository, plan, manifests, scope)
        self.tag(repository, plan, tags)
        return result

    def _put_manifests(self, repository, plan, manifests, scope):
        """The manifests by digest, children first. A registry may refuse one whose blobs another push of them at
        once has not committed yet (MANIFEST_BLOB_UNKNOWN, DIGEST_INVALID): the blobs are pushed again, a few times."""
        for attempt in range(BLOB_RACE_ATTEMPTS):
            try:
                for manifest, content in manifests:
                    is_root = manifest["digest"] == plan.root["digest"]
                    if is_root or not self._retry(
                            lambda m=manifest: self.manifest_exists(repository, m["digest"], scope), "check manifest"):
                        self.put_manifest(repository, manifest["digest"], manifest["mediaType"], content)
                return
            except RegistryError as error:
                if not getattr(error, "codes", set()) & BLOB_RACE_CODES or attempt == BLOB_RACE_ATTEMPTS - 1:
                    raise
                self.present = {(r, d) for r, d in self.present if r != repository}
                for blob in plan.blobs:
                    self.push_blob(repository, blob, plan.location(blob))

    def tag(self, repository, plan, tags):
        """Point each tag at the image's root manifest (already pushed by digest)."""
        root = next(m for m in plan.manifests if m["digest"] == plan.root["digest"])
        content = plan.manifest_bytes(root)
        for tag in tags:
            check_tag(tag)
            self.put_manifest(repository, tag, plan.root["mediaType"], content)


def _push_scope(repository):
    return "repository:{}:pull,push".format(repository)


def _location(response):
    location = response.headers.get("Location")
    if not location:
        raise RegistryError("The registry answered an upload without a Location header.")
    return location


def _with_digest(url, digest):
    return "{}{}digest={}".format(url, "&" if "?" in url else "?", urllib.parse.quote(digest))
