"""Artifact stores: HTTP PUT (Artifactory, Nexus, Reposilite, WebDAV), S3, and a local directory.

Every store reads, writes whole files, lists a directory (what the run history reads) and offers a way to serialise read-merge-write of
metadata: conditional writes where the store has them (S3 If-Match / If-None-Match, HTTP
If-Match), a lock otherwise (a WebDAV MKCOL directory; flock for a directory store).
Writes of artifacts are plain PUTs: callers write files before the metadata that lists them.
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import urllib.parse

from releasekit.core.errors import AlreadyPublishedError, AuthError, ConflictError, ReleasekitError, StoreError, TransientError
from releasekit.core.http import HttpClient, raise_for_transient, with_retries
from releasekit.core.redact import register_secret
from releasekit.core import environment
from releasekit.core.jsonio import staged
from releasekit.publishing import webdav_lock

log = logging.getLogger(__name__)
def store_credentials(kind, environ=None):
    """(username, password, token) from the store kind's variables (environment.STORE_CREDENTIALS)."""
    environ = os.environ if environ is None else environ
    user_variable, password_variable, token_variable = environment.STORE_CREDENTIALS[kind]
    token = token_variable.get(environ)
    username, password = user_variable.get(environ), password_variable.get(environ)
    for secret in (token, password):
        register_secret(secret)
    if bool(username) != bool(password):
        raise AuthError("Only one of {} and {} is set; set both or neither.".format(user_variable, password_variable))
    return username, password, token


def open_store(destination, policy, environ=None):
    environ = os.environ if environ is None else environ
    if destination.scheme in ("http", "https"):
        return HttpStore(destination, policy, environ)
    if destination.scheme == "s3":
        return S3Store(destination, policy, environ)
    return FileStore(destination)


class HttpStore:
    def __init__(self, destination, policy, environ):
        self.destination = destination
        self.policy = policy
        self.base = "{}://{}{}".format(destination.scheme, destination.host, destination.path)
        username, password, token = store_credentials(destination.kind, environ)
        self.http = HttpClient.for_destination(destination)
        if token:
            self.http.headers["Authorization"] = "Bearer " + token
        elif username:
            self.http.auth = (username, password)
        variables = environment.STORE_CREDENTIALS[destination.kind]
        self.credential_source = (str(variables[2]) if token else str(variables[0]) if username else "none")

    def describe(self, path=""):
        return self.base + "/" + path if path else self.base

    def _url(self, path):
        return self.base + "/" + urllib.parse.quote(path)

    def _call(self, method, path, what, policy=None, **kwargs):
        return self._call_url(method, self._url(path), what, policy, **kwargs)

    def _call_url(self, method, url, what, policy=None, **kwargs):
        policy = policy or self.policy

        def operation():
            response = self.http.request(method, url, timeout=policy.timeout, **kwargs)
            raise_for_transient(response, what)
            return response

        try:
            response = with_retries(operation, policy, what)
        except TransientError as error:
            raise StoreError("Could not {} at {}: {}.".format(what, self.describe(), error)) from None
        if response.status_code == 401:
            raise AuthError(
                "{}: the store {} refused the credentials ({}; HTTP 401). Set {} or check them.".format(
                    what, self.describe(), self.credential_source,
                    "{} and {} (or {})".format(*environment.STORE_CREDENTIALS[self.destination.kind]),
                )
            )
        return response

    def get(self, path):
        """(content, version) or (None, None) when the file is not there."""
        response = self._call("GET", path, "read " + path)
        if response.status_code == 404:
            return None, None
        if response.status_code != 200:
            raise StoreError("Reading {} answered HTTP {}.".format(self.describe(path), response.status_code))
        return response.content, response.headers.get("ETag")

    def put(self, path, data, if_match=None, if_none_match=False, policy=None):
        headers = {"Content-Type": "application/octet-stream"}
        if if_match:
            headers["If-Match"] = if_match
        if if_none_match:
            headers["If-None-Match"] = "*"
        self._check_put(path, self._call("PUT", path, "write " + path, policy=policy, data=data, headers=headers))

    def put_file(self, path, local_path):
        """Streamed from disk: constant memory whatever the size."""
        body = lambda: _FileBody(local_path)  # noqa: E731 - a fresh body for every attempt
        self._check_put(path, self._call("PUT", path, "write " + path, data=body,
                                         headers={"Content-Type": "application/octet-stream"}))

    def _check_put(self, path, response):
        if response.status_code in (200, 201, 204):
            return
        if response.status_code == 412:
            raise ConflictError("{} changed while it was being merged.".format(self.describe(path)))
        if response.status_code in (400, 403, 409):
            raise AlreadyPublishedError(
                "The store refused to write {} (HTTP {}): it is already published and the store does not allow "
                "redeploying it.".format(self.describe(path), response.status_code)
            )
        raise StoreError("Writing {} answered HTTP {}.".format(self.describe(path), response.status_code))

    def list(self, directory):
        """The names in directory, subdirectories ending in '/', from the server's index page (nginx's JSON or
        HTML autoindex, Apache's, Artifactory's); [] when the directory does not exist."""
        url = self.base + "/" + urllib.parse.quote(directory.strip("/") + "/" if directory.strip("/") else "")
        response = self._call_url("GET", url, "list " + directory, headers={"Accept": "application/json"})
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise StoreError("Listing {} answered HTTP {}: the store must serve directory indexes there (nginx "
                             "`autoindex on`, Apache `Options +Indexes`).".format(self.describe(directory), response.status_code))
        return _index_names(response.text)

    def make_collections(self, directory):
        """MKCOL every collection down to directory, the store's own path included: WebDAV creates one level at a time."""
        parts = [p for p in self.destination.path.split("/") if p] + [p for p in directory.split("/") if p]
        origin = "{}://{}".format(self.destination.scheme, self.destination.host)
        for depth in range(1, len(parts) + 1):
            self._call_url("MKCOL", origin + "/" + urllib.parse.quote("/".join(parts[:depth])) + "/", "create " + directory)

    def lock(self, directory):
        """A WebDAV MKCOL lock directory held as a renewed lease, where the server supports MKCOL; otherwise no lock.
        Yields whether it holds one."""
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


class _FileBody:
    """A request body streamed from a file in 1 MiB chunks, with a known length."""

    def __init__(self, path):
        self.path = path
        self.size = os.path.getsize(path)

    def __len__(self):
        return self.size

    def __iter__(self):
        with open(self.path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                yield chunk


_TRANSIENT_S3_MARKS = ("(408)", "(429)", "(500)", "(502)", "(503)", "(504)", "SlowDown", "RequestTimeout",
                       "Connection", "timed out", "reset")


class S3Store:
    atomic_conditional_writes = True  # If-Match and If-None-Match hold against every other writer

    def __init__(self, destination, policy, environ):
        try:
            import boto3
            import botocore.config
        except ImportError:
            raise ReleasekitError("An s3:// store needs boto3: pip install boto3.") from None
        self.destination = destination
        self.policy = policy
        self.bucket = destination.host
        self.prefix = destination.path.strip("/")
        endpoint = environment.S3_ENDPOINT_URL.get(environ) or environ.get("AWS_ENDPOINT_URL") or None
        # Our retry policy decides; botocore's own retries are off.
        config = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"},
                                        connect_timeout=policy.timeout, read_timeout=policy.timeout)
        self.client = boto3.client("s3", endpoint_url=endpoint, config=config,
                                   verify=destination.ca_bundle or not destination.insecure)

    def describe(self, path=""):
        return "s3://{}/{}".format(self.bucket, "/".join(p for p in (self.prefix, path) if p))

    def _key(self, path):
        return "/".join(p for p in (self.prefix, path) if p)

    def _call(self, what, function, **kwargs):
        import boto3.exceptions
        import botocore.exceptions

        def operation():
            try:
                return function(**kwargs)
            except boto3.exceptions.S3UploadFailedError as error:
                # upload_file wraps the client error in text; its HTTP status decides as for any other call.
                text = str(error)
                if any(mark in text for mark in _TRANSIENT_S3_MARKS):
                    raise TransientError("{}: {}".format(what, text.rsplit(":", 1)[-1].strip()))
                raise StoreError("{} at {} failed: {}.".format(what, self.describe(), text.rsplit(":", 1)[-1].strip()))
            except botocore.exceptions.ClientError as error:
                status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if status in (408, 429) or status >= 500 or error.response["Error"].get("Code") == "SlowDown":
                    raise TransientError("{}: {}".format(what, error.response["Error"].get("Code")))
                raise
            except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
                    botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError) as error:
                raise TransientError("{}: {}".format(what, type(error).__name__))

        try:
            return with_retries(operation, self.policy, what)
        except TransientError as error:
            raise StoreError("Could not {} at {}: {}.".format(what, self.describe(), error)) from None
        except botocore.exceptions.NoCredentialsError:
            raise AuthError("No AWS credentials for {}: set them the usual AWS ways (environment, profile, role)."
                            .format(self.describe())) from None
        except botocore.exceptions.ClientError as error:
            code = error.response["Error"].get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise ConflictError("{} changed while it was being merged.".format(self.describe(kwargs.get("Key", "")))) from None
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise AuthError("{}: {} refused access ({}).".format(what, self.describe(), code)) from None
            if code == "NoSuchBucket":
                raise StoreError("The bucket of {} does not exist.".format(self.describe())) from None
            raise StoreError("{} at {} failed: {}.".format(what, self.describe(), code)) from None

    def _get_object(self, **kwargs):
        """(content, etag), read whole inside the retried call: a body cut short is retried like any fault."""
        import botocore.exceptions
        import urllib3.exceptions

        try:
            response = self.client.get_object(**kwargs)
            return response["Body"].read(), response.get("ETag")
        except botocore.exceptions.ClientError as error:
            if error.response["Error"].get("Code") in ("NoSuchKey", "404"):
                return None, None
            raise
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError,
                botocore.exceptions.ResponseStreamingError, botocore.exceptions.IncompleteReadError) as error:
            raise TransientError("read {}: {}".format(kwargs.get("Key"), type(error).__name__))

    def get(self, path):
        return self._call("read " + path, self._get_object, Bucket=self.bucket, Key=self._key(path))

    def put(self, path, data, if_match=None, if_none_match=False):
        kwargs = {"Bucket": self.bucket, "Key": self._key(path), "Body": data}
        if if_match:
            kwargs["IfMatch"] = if_match
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        self._call("write " + path, self.client.put_object, **kwargs)

    def put_file(self, path, local_path):
        """Streamed (multipart above boto3's threshold): constant memory whatever the size."""
        self._call("write " + path, self.client.upload_file, Filename=local_path, Bucket=self.bucket, Key=self._key(path))

    def list(self, directory):
        """The names in directory, subdirectories ending in '/': one request per thousand names."""
        prefix = self._key(directory.strip("/"))
        prefix = prefix + "/" if prefix else ""

        def names():
            found = []
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix,
                                                                              Delimiter="/"):
                found += [p["Prefix"][len(prefix):] for p in page.get("CommonPrefixes", [])]
                found += [o["Key"][len(prefix):] for o in page.get("Contents", [])]
            return sorted(found)

        return self._call("list " + (directory or "/"), names)

    @contextlib.contextmanager
    def lock(self, directory):
        yield False  # S3 has conditional writes; no lock needed


class FileStore:
    def __init__(self, destination):
        self.destination = destination
        self.root = destination.path

    def describe(self, path=""):
        return "file://" + os.path.join(self.root, path)

    def _path(self, path):
        return os.path.join(self.root, path)

    def get(self, path):
        try:
            with open(self._path(path), "rb") as handle:
                content = handle.read()
        except FileNotFoundError:
            return None, None
        except OSError as error:
            raise StoreError("Cannot read {}: {}.".format(self.describe(path), error.strerror)) from None
        return content, hashlib.sha256(content).hexdigest()

    def put(self, path, data, if_match=None, if_none_match=False):
        self._write(path, [data], if_match, if_none_match)

    def put_file(self, path, local_path):
        self._write(path, _FileBody(local_path))

    def _write(self, path, chunks, if_match=None, if_none_match=False):
        target = self._path(path)
        try:
            with staged(os.path.dirname(target)) as (handle, tmp):
                for chunk in chunks:
                    handle.write(chunk)
                handle.close()
                if if_match is not None and self.get(path)[1] != if_match:
                    raise ConflictError("{} changed while it was being merged.".format(self.describe(path)))
                if if_none_match:
                    try:
                        os.link(tmp, target)  # atomic create-only
                    except FileExistsError:
                        raise ConflictError("{} appeared while it was being merged.".format(self.describe(path))) from None
                    return
                os.replace(tmp, target)  # readers see the old file or the new one, never half of one
        except OSError as error:
            raise StoreError("Cannot write {}: {}.".format(self.describe(path), error.strerror)) from None

    def list(self, directory):
        """The names in directory, subdirectories ending in '/'; files being staged are left out."""
        try:
            entries = list(os.scandir(self._path(directory)))
        except FileNotFoundError:
            return []
        except OSError as error:
            raise StoreError("Cannot list {}: {}.".format(self.describe(directory), error.strerror)) from None
        return sorted(e.name + ("/" if e.is_dir() else "") for e in entries if not e.name.startswith("."))

    @contextlib.contextmanager
    def lock(self, directory):
        os.makedirs(self._path(directory), exist_ok=True)
        with open(os.path.join(self._path(directory), ".releasekit.lock"), "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
