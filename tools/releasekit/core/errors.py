"""The one error tree. Each message names the input at fault and says how to fix it.

ReleasekitError (exit 1)
  UsageError (exit 2): ConfigError, BazelError, GitError, DeployInputError
  RefusedError (exit 3): ImmutableVersionError, DestinationOwnedError, UncommittedInputsError, ProvenanceError,
    CacheIntegrityError
  ImageError: BlobNotInCacheError; VersionError, TLSError, TransientError
  AuthError: a destination (registry or store) refused the credentials
  RegistryError; StoreError: AlreadyPublishedError, ConflictError; MavenError; DeployError
"""


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


class BlobNotInCacheError(ImageError):
    """A blob the release streams from Bazel's remote cache is not there (evicted since the build) nor on disk."""

    def __init__(self, message, digests=()):
        super().__init__(message)
        self.digests = list(digests)


class RefusedError(ReleasekitError):
    """A release was refused before anything was published."""

    exit_code = 3


class VersionError(ReleasekitError):
    """The commit or user a release is tagged with cannot be determined."""


class ImmutableVersionError(RefusedError):
    """A CI version (jar, deploy YAML, file, an image's commit tag) is already published with other content: refused,
    nothing written."""


class UnpublishedDependencyError(RefusedError):
    """A CI jar's pom would name a dependency version its Maven store does not hold."""


class DestinationOwnedError(RefusedError):
    """A CI release would publish where another release publishes (its repository, coordinates or path)."""


class UncommittedInputsError(RefusedError):
    """A CI release would publish files that no commit has (untracked or ignored by git)."""


class CacheIntegrityError(RefusedError):
    """Bazel's remote cache served bytes that do not match the digest they were asked for: nothing was committed."""


class ProvenanceError(RefusedError):
    """Provenance is missing, unsigned, signed by another key, or says something else than what it is attached to."""


class AuthError(ReleasekitError):
    """A destination refused the credentials (or asked for ones we do not have)."""


class RegistryError(ReleasekitError):
    """The registry refused or failed an operation."""


class StoreError(ReleasekitError):
    """A store (HTTP, S3, directory) failed or refused an operation."""


class AlreadyPublishedError(StoreError):
    """The store refused to overwrite a file (400/403/409 on redeploy)."""


class ConflictError(StoreError):
    """A conditional write lost a race; the caller re-reads and tries again."""


class MavenError(ReleasekitError):
    """A Maven release cannot be published as asked."""


class DeployError(ReleasekitError):
    """Deploy YAML is invalid, or cannot be published safely."""


class DeployInputError(UsageError):
    """A deploy_release input is wrong; the message names the file, line and attribute."""


class BazelError(UsageError):
    """Bazel is missing, or a query failed (the workspace does not load, a bad label, ...)."""


class GitError(UsageError):
    """git is missing, the directory is not a repository, or a revision does not resolve."""


class TLSError(ReleasekitError):
    """TLS failed: a server that speaks plain HTTP, or a certificate we do not trust."""


class TransientError(ReleasekitError):
    """A failure that may pass on retry: connection trouble, 408, 429 or 5xx."""

    def __init__(self, message, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after
