"""The S3 store (AWS, or an S3-compatible endpoint): boto3 with the standard AWS credential chain. Writes are
conditional where asked (If-Match, If-None-Match), so it needs no lock."""

import contextlib

from releasekit.core import environment
from releasekit.core.errors import AuthError, ConflictError, ReleasekitError, StoreError, TransientError
from releasekit.core.http import with_retries

_TRANSIENT_MARKS = ("(408)", "(429)", "(500)", "(502)", "(503)", "(504)", "SlowDown", "RequestTimeout",
                    "Connection", "timed out", "reset")
_CONFLICTS = ("PreconditionFailed", "ConditionalRequestConflict")
_REFUSALS = ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch")


class S3Store:
    conditional_writes = True

    def __init__(self, destination, policy, credentials=None, environ=None, client=None):
        """credentials: unused; S3 takes AWS's own chain (environment, profile, role)."""
        self.destination, self.policy, self.environ = destination, policy, environ or {}
        self.bucket = destination.host
        self.prefix = destination.path.strip("/")
        self.client = client or _client(destination, policy, self.environ)

    def with_policy(self, policy):
        return S3Store(self.destination, policy, environ=self.environ, client=self.client)

    def describe(self, path=""):
        return "s3://{}/{}".format(self.bucket, "/".join(p for p in (self.prefix, path) if p))

    def _key(self, path):
        return "/".join(p for p in (self.prefix, path) if p)

    def _call(self, what, function, **kwargs):
        import botocore.exceptions

        try:
            return with_retries(lambda: _transient_as_such(what, self.describe(), function, kwargs), self.policy, what,
                                gives_up_as=StoreError, place=self.describe())
        except botocore.exceptions.NoCredentialsError:
            raise AuthError("No AWS credentials for {}: set them the usual AWS ways (environment, profile, role)."
                            .format(self.describe())) from None
        except botocore.exceptions.ClientError as error:
            code = error.response["Error"].get("Code")
            if code in _CONFLICTS:
                raise ConflictError("{} changed while it was being merged.".format(
                    self.describe(kwargs.get("Key", "")))) from None
            if code in _REFUSALS:
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
            raise TransientError("read {}: {}".format(kwargs.get("Key"), type(error).__name__)) from None

    def _head_object(self, **kwargs):
        import botocore.exceptions

        try:
            self.client.head_object(**kwargs)
            return True
        except botocore.exceptions.ClientError as error:
            if error.response["Error"].get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise

    def get(self, path):
        return self._call("read " + path, self._get_object, Bucket=self.bucket, Key=self._key(path))

    def exists(self, path):
        return self._call("look for " + path, self._head_object, Bucket=self.bucket, Key=self._key(path))

    def put(self, path, data, if_match=None, if_none_match=False):
        kwargs = {"Bucket": self.bucket, "Key": self._key(path), "Body": data}
        if if_match:
            kwargs["IfMatch"] = if_match
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        self._call("write " + path, self.client.put_object, **kwargs)

    def put_file(self, path, local_path):
        """Streamed (multipart above boto3's threshold): constant memory whatever the size."""
        self._call("write " + path, self.client.upload_file, Filename=local_path, Bucket=self.bucket,
                   Key=self._key(path))

    def delete(self, path):
        self._call("delete " + path, self.client.delete_object, Bucket=self.bucket, Key=self._key(path))

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
        yield False  # conditional writes serialise its writers


def _client(destination, policy, environ):
    try:
        import boto3
        import botocore.config
    except ImportError:
        raise ReleasekitError("An s3:// store needs boto3: pip install boto3.") from None
    endpoint = environment.S3_ENDPOINT_URL.get(environ) or environ.get("AWS_ENDPOINT_URL") or None
    # Our retry policy decides; botocore's own retries are off.
    config = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"},
                                    connect_timeout=policy.timeout, read_timeout=policy.timeout)
    return boto3.client("s3", endpoint_url=endpoint, config=config,
                        verify=destination.ca_bundle or not destination.insecure)


def _transient_as_such(what, place, function, kwargs):
    """function(**kwargs), its transient failures raised as TransientError for the retry loop."""
    import boto3.exceptions
    import botocore.exceptions

    try:
        return function(**kwargs)
    except boto3.exceptions.S3UploadFailedError as error:
        # upload_file wraps the client error in text; its HTTP status decides as for any other call.
        text = str(error)
        if any(mark in text for mark in _TRANSIENT_MARKS):
            raise TransientError("{}: {}".format(what, text.rsplit(":", 1)[-1].strip())) from None
        raise StoreError("{} at {} failed: {}.".format(what, place, text.rsplit(":", 1)[-1].strip())) from None
    except botocore.exceptions.ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if status in (408, 429) or status >= 500 or error.response["Error"].get("Code") == "SlowDown":
            raise TransientError("{}: {}".format(what, error.response["Error"].get("Code"))) from None
        raise
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError) as error:
        raise TransientError("{}: {}".format(what, type(error).__name__)) from None
