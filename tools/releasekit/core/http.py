"""HTTP for every network operation: one requests session factory, and one retry policy.

Retries cover transient failures only: connection errors and resets, timeouts,
408, 429 and 5xx, honouring Retry-After, with exponential backoff and full jitter,
bounded both in attempts and in total time. Anything else is a real answer and is
raised at once. Callers wrap whole operations (not bare requests), so that a step
that is not idempotent can be redone safely from its start. requests' own retries are
off: with_retries() decides, per operation.

requests does what a client must get right and this project does not write by hand:
proxies from the environment with NO_PROXY rules and credentials in the proxy's URL,
redirects with credentials dropped when the host, port or scheme changes, and pooled,
thread-safe connections. TLS is verified against the system's trust store
(SSL_CERT_FILE and SSL_CERT_DIR apply), a destination's own CA bundle, or not at all
where releasekit.yaml says `insecure: true`.
"""

import dataclasses
import email.utils
import logging
import os
import random
import ssl
import time
import urllib.parse

import requests
import requests.adapters

from releasekit import __version__
from releasekit.core import environment
from releasekit.core.errors import ReleasekitError, TLSError, TransientError
from releasekit.core.redact import redact, register_secret

log = logging.getLogger(__name__)
TRANSIENT_STATUS = frozenset([408, 429, 500, 502, 503, 504])
USER_AGENT = "releasekit/{}".format(__version__)

# What a request raises when the connection or the answer fails on the way (not an HTTP status).
TRANSPORT_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
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


def with_retries(operation, policy, what, progress=None, gives_up_as=None, place=None):
    """Run operation() until it succeeds, raises a non-transient error, or the policy runs out.

    progress, if given, returns how far the operation got (bytes a registry holds, say): a failure after
    progress starts the backoff over, so a long upload is not punished for faults it already got past. The
    total time stays bounded. When the policy runs out: TransientError, or gives_up_as (a ReleasekitError class)
    saying "Could not <what>[ at <place>]: <the last failure>."
    """
    try:
        return _retried(operation, policy, what, progress)
    except TransientError as error:
        if gives_up_as is None:
            raise
        raise gives_up_as("Could not {}{}: {}.".format(what, " at " + place if place else "", error)) from None


def _retried(operation, policy, what, progress):
    started = time.monotonic()
    attempt = 0
    reached = progress() if progress else None
    while True:
        try:
            return operation()
        except requests.exceptions.SSLError as error:
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
    if "timed out" in text.lower() or isinstance(error, requests.exceptions.Timeout):
        return "timed out"
    return type(error).__name__


def system_trust_store():
    """The CA file or directory OpenSSL uses by default (SSL_CERT_FILE and SSL_CERT_DIR apply), or True for
    requests' own bundle when the system has none."""
    paths = ssl.get_default_verify_paths()
    for path in (paths.cafile, paths.capath):
        if path and os.path.exists(path):
            return path
    return True


def make_session(verify=True, pool_size=8):
    """The one session factory. verify: True (the system trust store), a CA bundle path, or False."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    if verify is False:
        import urllib3

        # The destination says `insecure: true`; repeating that warning on every request helps nobody.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    session.verify = system_trust_store() if verify is True else verify
    for proxy in requests.utils.get_environ_proxies("http://releasekit.invalid").values():
        password = urllib.parse.urlsplit(proxy).password
        register_secret(password)  # a proxy's credentials never show in a message
        register_secret(urllib.parse.unquote(password or ""))
    return session


class HttpClient:
    """Pooled, thread-safe HTTP for one destination, on a session from make_session(). Redirects are followed
    for GET and HEAD only, unless a request says otherwise."""

    @classmethod
    def for_destination(cls, destination, pool_size=8):
        """A client that verifies TLS as the destination says: its own CA bundle, or none if insecure."""
        verify = destination.ca_bundle or not (destination.insecure and destination.scheme == "https")
        return cls(pool_size=pool_size, verify=verify)

    def __init__(self, pool_size=8, verify=True):
        self.session = make_session(verify, pool_size)
        # Given with each request: requests lets REQUESTS_CA_BUNDLE override a session's own verify setting.
        self.verify = self.session.verify
        self.headers = self.session.headers
        self.auth = None  # (username, password): sent as Basic unless a request sets Authorization

    def get(self, url, **options):
        return self.request("GET", url, **options)

    def request(self, method, url, data=None, headers=None, params=None, auth=None, timeout=None,
                allow_redirects=None):
        """data: bytes, str, an iterable of bytes with a length (streamed, not chunked), or a function returning one
        of those, called for each request so that a retried operation sends a fresh body."""
        if callable(data):
            data = data()
        headers = dict(headers or {})
        credentials = auth or self.auth
        if credentials and any(key.lower() == "authorization" for key in list(headers) + list(self.headers)):
            credentials = None  # a request's own Authorization (a token) wins
        if allow_redirects is None:
            allow_redirects = method in ("GET", "HEAD")
        try:
            response = self.session.request(method, url, data=data, headers=headers, params=params, auth=credentials,
                                            timeout=timeout, allow_redirects=allow_redirects, verify=self.verify)
        except requests.exceptions.TooManyRedirects:
            raise ReleasekitError("{} {}: too many redirects.".format(method, origin(url))) from None
        if response.encoding is None:
            response.encoding = "utf-8"  # no charset guessing: answers here are JSON, XML or plain text
        return response


def basic_authorization(username, password):
    import base64

    return "Basic " + base64.b64encode("{}:{}".format(username, password).encode("utf-8")).decode("ascii")


def origin(url):
    """scheme://host[:port] of a URL, without any user information."""
    parsed = urllib.parse.urlsplit(url)
    return "{}://{}".format(parsed.scheme, parsed.netloc.rsplit("@", 1)[-1]).lower()
