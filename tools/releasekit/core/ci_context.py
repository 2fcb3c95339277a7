"""What the CI engine says of the run it is: the branch and the pull request it builds, from the engine's own
variables (Buildkite, GitHub Actions, GitLab, Jenkins; the first variable set wins)."""

_BRANCH_VARIABLES = ("BUILDKITE_BRANCH", "GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BRANCH_NAME")
_PULL_REQUEST_VARIABLES = ("BUILDKITE_PULL_REQUEST", "CI_MERGE_REQUEST_IID", "CHANGE_ID")


def branch(environ):
    """The branch the engine says it builds, or None."""
    return next((environ[v] for v in _BRANCH_VARIABLES if environ.get(v)), None)


def pull_request(environ):
    """The pull request the engine says the run builds (its number, or 'yes' when the engine gives none), or None."""
    found = next((environ[v] for v in _PULL_REQUEST_VARIABLES if environ.get(v) not in (None, "", "false")), None)
    ref = environ.get("GITHUB_REF", "")
    if not found and ref.startswith("refs/pull/"):
        found = ref.split("/")[2]
    if not found and environ.get("GITHUB_EVENT_NAME", "").startswith("pull_request"):
        found = "yes"
    return found
