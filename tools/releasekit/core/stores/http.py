"""The HTTP store: PUT and GET of whole files (Artifactory, Nexus, Reposilite, nginx or Apache WebDAV), directory
listings from the server's index pages, and the WebDAV MKCOL lock (webdav_lock.py) where the server has collections.

Conditional writes (If-Match, If-None-Match) are sent, and a 412 is a conflict; but servers differ (nginx's WebDAV
ignores them), so writers that must not overwrite each other write under the lock, and read back.
"""

import json
import re
import urllib.parse

from releasekit.core.credentials import store_variables_hint
from releasekit.core.errors import AlreadyPublishedError, AuthError, ConflictError, StoreError
from releasekit.core.http import HttpClient, raise_for_transient, with_retries
from releasekit.core.stores import webdav_lock
from releasekit.core.stores.streaming import FileBody

_WRITTEN = (200, 201, 204)
_DELETED = (200, 202, 204, 404)


class HttpStore:
    conditional_writes = False  # sent, honoured by some servers only

    def __init__(self, destination, policy, credentials, environ=None, http=None):
        self.destination, self.policy, self.credentials = destination, policy, credentials
        self.base = "{}://{}{}".format(destination.scheme, destination.host, destination.path)
        self.http = http or HttpClient.for_destination(destination)
        if credentials.token:
            self.http.headers["Authorization"] = "Bearer " + credentials.token
        elif credentials.has_basic:
            self.http.auth = (credentials.username, credentials.password)

    def with_policy(self, policy):
        """This store, its connections shared, with another retry policy (a lock's short-lived writes)."""
        return HttpStore(self.destination, policy, self.credentials, http=self.http)

    def describe(self, path=""):
        return self.base + "/" + path if path else self.base

    def _url(self, path):
        return self.base + "/" + urllib.parse.quote(path)

    def _call(self, method, url, what, **kwargs):
        def operation():
            response = self.http.request(method, url, timeout=self.policy.timeout, **kwargs)
            raise_for_transient(response, what)
            return response

        response = with_retries(operation, self.policy, what, gives_up_as=StoreError, place=self.describe())
        if response.status_code == 401:
            raise AuthError(
                "{}: the store {} refused the credentials ({}; HTTP 401). Set {}{} or check them.".format(
                    what, self.describe(),
                    self.credentials.source if self.credentials.source != "anonymous" else "none",
                    store_variables_hint(self.destination.kind),
                    ", or the variables of credentials.{} in releasekit.yaml".format(self.destination.host)
                    if getattr(self.destination, "credentials", None) is None else ""))
        return response

    def get(self, path):
        """(content, version) or (None, None) when the file is not there."""
        response = self._call("GET", self._url(path), "read " + path)
        if response.status_code == 404:
            return None, None
        if response.status_code != 200:
            raise StoreError("Reading {} answered HTTP {}.".format(self.describe(path), response.status_code))
        return response.content, response.headers.get("ETag")

    def exists(self, path):
        """Whether the server has path (a collection when it ends in '/'): anything but 404 says it has."""
        response = self._call("HEAD", self._url(path), "look for " + path)
        if response.status_code == 404:
            return False
        if response.status_code < 400 or response.status_code == 403:
            return True  # a listing we may not read is still there
        raise StoreError("Looking for {} answered HTTP {}.".format(self.describe(path), response.status_code))

    def put(self, path, data, if_match=None, if_none_match=False):
        headers = {"Content-Type": "application/octet-stream"}
        if if_match:
            headers["If-Match"] = if_match
        if if_none_match:
            headers["If-None-Match"] = "*"
        self._check_put(path, self._call("PUT", self._url(path), "write " + path, data=data, headers=headers))

    def put_file(self, path, local_path):
        """Streamed from disk: constant memory whatever the size."""
        def body():  # a fresh body for every attempt
            return FileBody(local_path)

        self._check_put(path, self._call("PUT", self._url(path), "write " + path, data=body,
                                         headers={"Content-Type": "application/octet-stream"}))

    def _check_put(self, path, response):
        if response.status_code in _WRITTEN:
            return
        if response.status_code == 412:
            raise ConflictError("{} changed while it was being merged.".format(self.describe(path)))
        if response.status_code in (400, 403, 409):
            raise AlreadyPublishedError(
                "The store refused to write {} (HTTP {}): it is already published and the store does not allow "
                "redeploying it.".format(self.describe(path), response.status_code)
            )
        raise StoreError("Writing {} answered HTTP {}.".format(self.describe(path), response.status_code))

    def delete(self, path):
        """Remove path (a collection and what it holds when it ends in '/'); a path not there is fine."""
        response = self._call("DELETE", self._url(path), "delete " + path)
        if response.status_code not in _DELETED:
            raise StoreError("Deleting {} answered HTTP {}.".format(self.describe(path), response.status_code))

    def list(self, directory):
        """The names in directory, subdirectories ending in '/', from the server's index page (nginx's JSON or
        HTML autoindex, Apache's, Artifactory's); [] when the directory does not exist."""
        url = self.base + "/" + urllib.parse.quote(directory.strip("/") + "/" if directory.strip("/") else "")
        response = self._call("GET", url, "list " + directory, headers={"Accept": "application/json"})
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise StoreError("Listing {} answered HTTP {}: the store must serve directory indexes there (nginx "
                             "`autoindex on`, Apache `Options +Indexes`).".format(self.describe(directory),
                                                                                   response.status_code))
        return _index_names(response.text)

    def make_collection(self, path):
        """WebDAV MKCOL of path (ending in '/'): the HTTP status, 201 when this call created it."""
        return self._call("MKCOL", self._url(path), "create " + path).status_code

    def make_collections(self, directory):
        """MKCOL every collection down to directory, the store's own path included: WebDAV creates one level at a
        time."""
        parts = [p for p in self.destination.path.split("/") if p] + [p for p in directory.split("/") if p]
        origin = "{}://{}".format(self.destination.scheme, self.destination.host)
        for depth in range(1, len(parts) + 1):
            self._call("MKCOL", origin + "/" + urllib.parse.quote("/".join(parts[:depth])) + "/", "create " + directory)

    def lock(self, directory):
        """A WebDAV MKCOL lock directory held as a renewed lease; yields whether it is held (False where the
        server has no MKCOL: conditional writes and read-back have to do)."""
        return webdav_lock.held(self, directory)


def _index_names(text):
    """Names of a directory index: a JSON list of {name, type} (nginx `autoindex_format json`), or HTML links."""
    if text.lstrip().startswith("["):
        try:
            return sorted(e["name"] + ("/" if e.get("type") == "directory" else "") for e in json.loads(text))
        except (ValueError, TypeError, KeyError):
            pass
    names = set()
    for href in re.findall(r'href="([^"?#]+)"', text):
        name = urllib.parse.unquote(href)
        if name not in ("../", "./") and "://" not in name and not name.startswith("/") and "/" not in name.rstrip("/"):
            names.add(name)
    return sorted(names)
