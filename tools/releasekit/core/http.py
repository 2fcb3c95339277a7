"""One small HTTP client and one retry policy for every network operation.

Retries cover transient failures only: connection errors and resets, timeouts,
408, 429 and 5xx, honouring Retry-After, with exponential backoff and full jitter,
bounded both in attempts and in total time. Anything else is a real answer and is
raised at once. Callers wrap whole operations (not bare requests), so that a step
that is not idempotent can be redone safely from its start.

The client sits on urllib3, the transport requests itself uses: a release is a short
process, and requests' own layer (charset detection, cookies, hooks) costs each one about
40 ms of start-up for nothing the publisher uses.
"""

import base64
import dataclasses
import email.utils
import json
import logging
import os
import random
import time
import urllib.parse

import urllib3

from releasekit import __version__
from releasekit.core.errors import ReleasekitError, TLSError, TransientError
from releasekit.core.redact import redact, register_secret
from releasekit.core import environment

log = logging.getLogger(__name__)
TRANSIENT_STATUS = frozenset([408, 429, 500, 502, 503, 504])
USER_AGENT = "releasekit/{}".format(__version__)

# What a request raises when the connection or the answer fails on the way (not an HTTP status).
TRANSPORT_ERRORS = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.ProxyError,
    urllib3.exceptions.DecodeError,
    ConnectionError,
)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """attempts: tries per operation; total_seconds: give up once this much time has passed."""

    attempts: int = 6
    total_seconds: float = 300.0
    base_delay: float = 0.5
    max_delay: float = 30.0
    timeout: float = 60.0

    @classmethod
    def from_environment(cls, environ=None):
        environ = os.environ if environ is None else environ
        policy = cls()
        overrides = {}
        for field, name, kind in (
            ("attempts", environment.RETRY_ATTEMPTS, int),
            ("total_seconds", environment.RETRY_TOTAL_SECONDS, float),
            ("timeout", environment.HTTP_TIMEOUT, float),
        ):
            if name.get(environ):
                try:
                    overrides[field] = kind(name.get(environ))
                except ValueError:
                    raise ReleasekitError("{}='{}' is not a number.".format(name, name.get(environ))) from None
        return dataclasses.replace(policy, **overrides)

    def delay(self, attempt, retry_after=None):
        backoff = min(self.max_delay, self.base_delay * (2 ** attempt))
        delay = random.uniform(0, backoff)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_delay))
        return delay


def parse_retry_after(value):
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def raise_for_transient(response, what):
    """Turn a transient status into TransientError so the retry loop sees it."""
    if response.status_code in TRANSIENT_STATUS:
        raise TransientError(
            "{}: HTTP {}".format(what, response.status_code),
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )


def with_retries(operation, policy, what, progress=None):
    """Run operation() until it succeeds, raises a non-transient error, or the policy runs out.

    progress, if given, returns how far the operation got (bytes a registry holds, say): a failure after
    progress starts the backoff over, so a long upload is not punished for faults it already got past. The
    total time stays bounded.
    """
    started = time.monotonic()
    attempt = 0
    reached = progress() if progress else None
    while True:
        try:
            return operation()
        except urllib3.exceptions.SSLError as error:
            # A TLS failure does not pass with time: wrong scheme, or an untrusted certificate.
            raise TLSError(
                "{}: TLS failed ({}). If the server speaks plain HTTP, write http:// in releasekit.yaml "
                "(loopback, or with insecure: true); if its certificate is signed by a private CA, set "
                "ca_bundle for that destination.".format(what, _describe_tls_error(error))
            ) from None
        except TRANSPORT_ERRORS as error:
            failure = TransientError("{}: {}".format(what, _describe_connection_error(error)))
        except TransientError as error:
            failure = error
        attempt += 1
        if progress is not None and progress() > reached:
            reached, attempt = progress(), 1
        elapsed = time.monotonic() - started
        delay = policy.delay(attempt - 1, failure.retry_after)
        if attempt >= policy.attempts or elapsed + delay > policy.total_seconds:
            raise TransientError(
                "{} (gave up after {} attempts in {:.1f}s; the limits are {} and {})".format(
                    redact(str(failure)), attempt, elapsed, environment.RETRY_ATTEMPTS, environment.RETRY_TOTAL_SECONDS)
            ) from None
        log.info("retrying in %.1fs: %s", delay, redact(str(failure)))
        time.sleep(delay)


def _describe_tls_error(error):
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "certificate not trusted"
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return "the server did not answer TLS"
    if "hostname" in text.lower() and "match" in text.lower():
        return "certificate does not match the host name"
    return "handshake failed"


def _describe_connection_error(error):
    text = str(error)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text or "Failed to resolve" in text:
        return "host name does not resolve"
    if "reset" in text.lower():
        return "connection reset"
    if "timed out" in text.lower() or isinstance(error, urllib3.exceptions.TimeoutError):
        return "timed out"
    return type(error).__name__


class Response:
    """A whole answer: status, case-insensitive headers, and the body (answers here are small)."""

    __slots__ = ("status_code", "reason", "headers", "content")

    def __init__(self, answer):
        self.status_code, self.reason, self.headers, self.content = answer.status, answer.reason, answer.headers, answer.data

    @property
    def text(self):
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.content)


class HttpClient:
    """Pooled, thread-safe HTTP for one destination.

    TLS is verified against the system's trust store (SSL_CERT_FILE and SSL_CERT_DIR apply),
    unless `verify` names a CA bundle or is False. Proxies come from HTTP_PROXY, HTTPS_PROXY,
    ALL_PROXY and NO_PROXY, with any credentials in the proxy's URL. Redirects are followed for GET and HEAD only, and an Authorization
    header never follows one to another origin. urllib3's own retries are off: with_retries()
    decides, per operation.
    """

    _REDIRECTS = (301, 302, 303, 307, 308)

    @classmethod
    def for_destination(cls, destination, pool_size=8):
        """A client that verifies TLS as the destination says: its own CA bundle, or none if insecure."""
        verify = destination.ca_bundle or not (destination.insecure and destination.scheme == "https")
        return cls(pool_size=pool_size, verify=verify)

    def __init__(self, pool_size=8, verify=True):
        self.headers = {"User-Agent": USER_AGENT}
        self.auth = None  # (username, password): sent as Basic unless a request sets Authorization
        if verify is False:
            # The destination says `insecure: true`; repeating that warning on every request helps nobody.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            self._tls = {"cert_reqs": "CERT_NONE"}
        else:
            self._tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": verify if isinstance(verify, str) else None}
        self._pool_size = pool_size
        self._direct = urllib3.PoolManager(num_pools=4, maxsize=pool_size, **self._tls)
        self._proxies = _environment_proxies()
        self._proxy_managers = {}

    def get(self, url, **options):
        return self.request("GET", url, **options)

    def request(self, method, url, data=None, headers=None, params=None, auth=None, timeout=None,
                allow_redirects=None):
        """data: bytes, str, an iterable of bytes with a length (streamed), or a function returning one of
        those, called for each request so that a retried operation sends a fresh body."""
        if callable(data):
            data = data()
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        all_headers = dict(self.headers, **(headers or {}))
        credentials = auth or self.auth
        if credentials and not any(key.lower() == "authorization" for key in all_headers):
            all_headers["Authorization"] = basic_authorization(*credentials)
        body = data
        if data is not None and not isinstance(data, (bytes, str)):
            # A streamed body of known length: sent as is, not chunked.
            all_headers.setdefault("Content-Length", str(len(data)))
            body = iter(data)
        if allow_redirects is None:
            allow_redirects = method in ("GET", "HEAD")
        for _ in range(10):
            answer = self._manager(url).urlopen(method, url, body=body, headers=all_headers, retries=False,
                                                redirect=False, timeout=timeout, preload_content=True)
            location = answer.headers.get("Location")
            if not (allow_redirects and answer.status in self._REDIRECTS and location):
                return Response(answer)
            target = urllib.parse.urljoin(url, location)
            if origin(target) != origin(url):
                all_headers = {k: v for k, v in all_headers.items() if k.lower() != "authorization"}
            url = target
        raise ReleasekitError("{} {}: more than 10 redirects.".format(method, origin(url)))

    def _manager(self, url):
        if not self._proxies:
            return self._direct
        parsed = urllib.parse.urlsplit(url)
        proxy = self._proxies.get(parsed.scheme) or self._proxies.get("all")
        if not proxy or _bypasses_proxy(parsed.hostname or "", self._proxies):
            return self._direct
        if proxy not in self._proxy_managers:
            self._proxy_managers[proxy] = urllib3.ProxyManager(
                proxy, num_pools=4, maxsize=self._pool_size, proxy_headers=_proxy_authorization(proxy), **self._tls)
        return self._proxy_managers[proxy]


def basic_authorization(username, password):
    return "Basic " + base64.b64encode("{}:{}".format(username, password).encode("utf-8")).decode("ascii")


def origin(url):
    """scheme://host[:port] of a URL, without any user information."""
    parsed = urllib.parse.urlsplit(url)
    return "{}://{}".format(parsed.scheme, parsed.netloc.rsplit("@", 1)[-1]).lower()


def _environment_proxies():
    # urllib.request is heavy to import, and most runs have no proxy at all.
    if not any(key.lower().endswith("_proxy") for key in os.environ):
        return {}
    import urllib.request

    return urllib.request.getproxies_environment()


def _proxy_authorization(proxy):
    """Credentials written in the proxy's URL (http://user:password@proxy:3128), as a header; never logged."""
    parsed = urllib.parse.urlsplit(proxy)
    if parsed.username is None:
        return None
    username, password = urllib.parse.unquote(parsed.username), urllib.parse.unquote(parsed.password or "")
    register_secret(password)
    register_secret(parsed.password)
    return urllib3.make_headers(proxy_basic_auth="{}:{}".format(username, password))


def _bypasses_proxy(host, proxies):
    import urllib.request

    return bool(urllib.request.proxy_bypass_environment(host, proxies))
