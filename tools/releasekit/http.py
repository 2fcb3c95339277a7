"""One HTTP session factory and one retry policy for every network operation.

Retries cover transient failures only: connection errors and resets, timeouts,
408, 429 and 5xx, honouring Retry-After, with exponential backoff and full jitter,
bounded both in attempts and in total time. Anything else is a real answer and is
raised at once. Callers wrap whole operations (not bare requests), so that a step
that is not idempotent can be redone safely from its start.
"""

import dataclasses
import email.utils
import logging
import os
import random
import time

import requests
import requests.adapters

from . import __version__
from .errors import ReleasekitError, TLSError, TransientError
from .redact import redact

log = logging.getLogger(__name__)
TRANSIENT_STATUS = frozenset([408, 429, 500, 502, 503, 504])
USER_AGENT = "releasekit/{}".format(__version__)


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
            ("attempts", "RELEASEKIT_RETRY_ATTEMPTS", int),
            ("total_seconds", "RELEASEKIT_RETRY_TOTAL_SECONDS", float),
            ("timeout", "RELEASEKIT_HTTP_TIMEOUT", float),
        ):
            if environ.get(name):
                try:
                    overrides[field] = kind(environ[name])
                except ValueError:
                    raise ReleasekitError("{}='{}' is not a number.".format(name, environ[name])) from None
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
        except requests.exceptions.SSLError as error:
            # A TLS failure does not pass with time: wrong scheme, or an untrusted certificate.
            raise TLSError(
                "{}: TLS failed ({}). If the server speaks plain HTTP, write http:// in releasekit.yaml "
                "(loopback, or with insecure: true); if its certificate is signed by a private CA, set "
                "ca_bundle for that destination.".format(what, _describe_tls_error(error))
            ) from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
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
                "{} (gave up after {} attempts in {:.1f}s; the limits are RELEASEKIT_RETRY_ATTEMPTS and "
                "RELEASEKIT_RETRY_TOTAL_SECONDS)".format(redact(str(failure)), attempt, elapsed)
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
    if "timed out" in text.lower() or isinstance(error, requests.Timeout):
        return "timed out"
    if "reset" in text.lower():
        return "connection reset"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "host name does not resolve"
    return type(error).__name__


class _Session(requests.Session):
    """Applies its own `verify` to every request: requests would otherwise let REQUESTS_CA_BUNDLE or
    CURL_CA_BUNDLE from the environment replace a configured CA bundle, or undo `insecure: true`."""

    def request(self, method, url, **kwargs):
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, **kwargs)


def make_session(pool_size=8, verify=True):
    """A requests session: versioned User-Agent, a pool sized for parallel uploads, TLS verified by default.

    urllib3's own retries are off: with_retries() decides, per operation.
    """
    session = _Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.verify = verify
    if verify is False:
        # The destination says `insecure: true`; repeating that warning on every request helps nobody.
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return session
