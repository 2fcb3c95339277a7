"""Typed errors. Each message names the input at fault and says how to fix it."""


class ReleasekitError(Exception):
    """Base of every error releasekit reports without a traceback."""

    exit_code = 1


class UsageError(ReleasekitError):
    """A command line, config file or manifest is wrong."""

    exit_code = 2


class ConfigError(UsageError):
    """releasekit.yaml is missing, malformed or unsafe."""


class ImageError(ReleasekitError):
    """An image input is not a valid OCI layout or docker-save tarball."""


class RefusedError(ReleasekitError):
    """A release was refused before anything was published."""

    exit_code = 3


class VersionError(ReleasekitError):
    """The commit or user a release is tagged with cannot be determined."""


class RegistryError(ReleasekitError):
    """The registry refused or failed an operation."""


class AuthError(RegistryError):
    """The registry refused the credentials (or asked for ones we do not have)."""


class TLSError(ReleasekitError):
    """TLS failed: a server that speaks plain HTTP, or a certificate we do not trust."""


class TransientError(ReleasekitError):
    """A failure that may pass on retry: connection trouble, 408, 429 or 5xx."""

    def __init__(self, message, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after
