"""Every RELEASEKIT_* environment variable, in one table: name, meaning, default.

Library code reads a variable through its entry here, and names it in messages through the entry too, so each
name is spelled once. docs/configuration.md's table of variables is checked against this one by the tests.
"""

import os


class Variable:
    __slots__ = ("name", "meaning", "default", "secret")

    def __init__(self, name, meaning, default="unset", secret=False):
        self.name, self.meaning, self.default, self.secret = name, meaning, default, secret

    def __str__(self):
        return self.name

    def get(self, environ, default=None):
        """The value, or default when the variable is unset or empty."""
        return environ.get(self.name) or default

    def is_true(self, environ):
        return environ.get(self.name, "").lower() == "true"


def _variable(*args, **kwargs):
    variable = Variable(*args, **kwargs)
    VARIABLES.append(variable)
    return variable


VARIABLES = []

# Not a variable: the directory at the workspace root where a run keeps its logs, reports and build events unless
# --logs says otherwise (dispatch writes it; the committed-inputs check knows it for releasekit's own).
DEFAULT_LOGS_DIRECTORY = "releasekit-logs"

CONFIG = _variable("RELEASEKIT_CONFIG", "the releasekit.yaml to use", "releasekit.yaml at the workspace root")
RESOLVED_CONFIG = _variable(
    "RELEASEKIT_RESOLVED_CONFIG", "the destinations a run resolved once, as JSON, handed to each of its releases "
    "(set by dispatch)")
COMMIT = _variable("RELEASEKIT_COMMIT", "the commit being released (full SHA)", "`git rev-parse HEAD`")
DIRTY = _variable("RELEASEKIT_DIRTY", "`true` or `false`: whether the working tree has uncommitted changes",
                  "`git status --porcelain --untracked-files=no`")
USER = _variable("RELEASEKIT_USER", "the user a dev tag names", "`USER`, `LOGNAME`, the account name")
VERSION = _variable("RELEASEKIT_VERSION", "the release version of jars without one in their coordinates, of "
                    "deploy YAML and of files", "the commit SHA (deploy and file releases, CI); required for such "
                    "jars")
ALLOW_DIRTY = _variable("RELEASEKIT_ALLOW_DIRTY", "`true` lets a CI release run from a tree with uncommitted changes",
                        "`false`")
DRY_RUN = _variable("RELEASEKIT_DRY_RUN", "`true` checks what a release would do and writes nothing", "`false`")
REPORT = _variable("RELEASEKIT_REPORT", "the file a release writes its record to (set by dispatch)")
BAZEL = _variable("RELEASEKIT_BAZEL", "the Bazel command", "`bazel` on `PATH`")
PYTHON = _variable("RELEASEKIT_PYTHON", "the python3 release targets run the publisher with", "`python3` on `PATH`")
STARTED_FD = _variable("RELEASEKIT_STARTED_FD", "the descriptor a release signals start-up on (set by dispatch)")
RETRY_ATTEMPTS = _variable("RELEASEKIT_RETRY_ATTEMPTS", "tries of each transient HTTP failure", "6")
RETRY_TOTAL_SECONDS = _variable("RELEASEKIT_RETRY_TOTAL_SECONDS", "time within which a request's retries end", "300")
HTTP_TIMEOUT = _variable("RELEASEKIT_HTTP_TIMEOUT", "seconds each HTTP request may take to connect or read", "60")
REGISTRY_USERNAME = _variable("RELEASEKIT_REGISTRY_USERNAME", "registry user, with the registry password",
                              "the Docker config's credentials")
REGISTRY_PASSWORD = _variable("RELEASEKIT_REGISTRY_PASSWORD", "registry password", secret=True)
REGISTRY_TOKEN = _variable("RELEASEKIT_REGISTRY_TOKEN", "a registry bearer token, sent as is", secret=True)
REGISTRY_NAMED = _variable(
    "RELEASEKIT_REGISTRY_<NAME>_USERNAME", "a mirror registry's user, with `RELEASEKIT_REGISTRY_<NAME>_PASSWORD` "
    "(or `RELEASEKIT_REGISTRY_<NAME>_TOKEN`); NAME is the mirror's `name`, upper case", "the Docker config's "
    "credentials for its host")
REMOTE_CACHE = _variable("RELEASEKIT_REMOTE_CACHE", "the HTTP or gRPC remote cache a CI release streams image blobs "
                         "from (set by dispatch from the build's `--remote_cache`)", "unset: blobs are read from disk",
                         secret=True)
REMOTE_CACHE_HEADERS = _variable("RELEASEKIT_REMOTE_CACHE_HEADERS", "the headers sent to it, a JSON list of "
                                 "`Name=value` (set by dispatch from `--remote_header` and `--remote_cache_header`)",
                                 secret=True)
REMOTE_CACHE_CA = _variable("RELEASEKIT_REMOTE_CACHE_CA", "the CA bundle of an HTTPS or grpcs remote cache (set by "
                            "dispatch from `--tls_certificate`)")
REMOTE_CACHE_INSTANCE = _variable("RELEASEKIT_REMOTE_CACHE_INSTANCE", "the instance name of a gRPC remote cache (set "
                                  "by dispatch from `--remote_instance_name`)", "no instance name")
S3_ENDPOINT_URL = _variable("RELEASEKIT_S3_ENDPOINT_URL", "the S3 endpoint of s3:// stores", "`AWS_ENDPOINT_URL`, "
                            "then AWS's own")
SIGNING_KEY = _variable("RELEASEKIT_SIGNING_KEY", "the PEM private key (Ed25519 or ECDSA P-256) CI releases sign "
                        "their provenance with", "`RELEASEKIT_SIGNING_KEY_FILE`, else unsigned", secret=True)
SIGNING_KEY_FILE = _variable("RELEASEKIT_SIGNING_KEY_FILE", "a file holding the CI signing key", "unset")
DEV_SIGNING_KEY = _variable("RELEASEKIT_DEV_SIGNING_KEY", "the PEM private key dev releases sign their provenance "
                            "with; never the CI key", "`RELEASEKIT_DEV_SIGNING_KEY_FILE`, else unsigned", secret=True)
DEV_SIGNING_KEY_FILE = _variable("RELEASEKIT_DEV_SIGNING_KEY_FILE", "a file holding the dev signing key", "unset")
SELECTION = _variable("RELEASEKIT_SELECTION", "what chose a release, as JSON, for its provenance (set by dispatch)")
PREVIOUS_BUILD = _variable("RELEASEKIT_PREVIOUS_BUILD", "in a generated Buildkite pipeline: the build before "
                           "this one, whose reports order its shards and whose meta-data names the last passed commit "
                           "(its base)")


def _store_credentials(kind):
    upper = kind.upper()
    return (_variable("RELEASEKIT_{}_USERNAME".format(upper), "{} store user, with its password".format(kind)),
            _variable("RELEASEKIT_{}_PASSWORD".format(upper), "{} store password".format(kind), secret=True),
            _variable("RELEASEKIT_{}_TOKEN".format(upper), "a {} store bearer token".format(kind), secret=True))


STORE_CREDENTIALS = {kind: _store_credentials(kind)
                     for kind in ("maven", "deploy", "files", "history", "target_graphs")}

SECRETS = [variable.name for variable in VARIABLES if variable.secret]


def registry_credential_variables(name):
    """(username, password, token) variable names of the mirror registry called `name` in releasekit.yaml."""
    upper = "".join(c if c.isalnum() else "_" for c in name.upper())
    return tuple("RELEASEKIT_REGISTRY_{}_{}".format(upper, part) for part in ("USERNAME", "PASSWORD", "TOKEN"))


def cache_directory():
    """releasekit's directory in the user's cache (XDG_CACHE_HOME, else ~/.cache): what an agent keeps between runs."""
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
                        "releasekit")


def is_secret(name):
    """Whether the environment variable `name` carries a credential: the table's secrets, and every mirror
    registry's password and token."""
    return name in SECRETS or (name.startswith("RELEASEKIT_REGISTRY_") and name.endswith(("_PASSWORD", "_TOKEN")))


def markdown_table():
    """docs/configuration.md's table of variables."""
    lines = ["| variable | meaning | default |", "|---|---|---|"]
    lines += ["| `{}` | {} | {} |".format(v.name, v.meaning, v.default) for v in VARIABLES]
    return "\n".join(lines)
