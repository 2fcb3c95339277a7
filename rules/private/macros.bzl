"""Helpers for the public macros: naming and early checks."""

load(":release.bzl", "artifact_ci_release", "artifact_dev_release")

_REPOSITORY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789._-/"

def where(name):
    """The label a macro error names: //package:name.

    Args:
      name: the macro's name.

    Returns:
      `//<package>:<name>` of the package being loaded.
    """
    return "//{}:{}".format(native.package_name(), name)

def check_name(name):
    """Fails on a macro name the .ci/.dev suffixes would make ambiguous.

    Args:
      name: the macro's name.
    """
    if not name or name.endswith(".ci") or name.endswith(".dev"):
        fail("{}: name must not be empty or end in .ci/.dev; the macro adds those suffixes itself.".format(where(name)))

def check_repository(name, repository):
    """Fails at loading time on a repository that no registry would accept.

    Args:
      name: the macro's name, for the error message.
      repository: the repository attribute to check.
    """
    problem = None
    if not repository:
        problem = "is empty"
    else:
        for char in repository.elems():
            if char not in _REPOSITORY_CHARS:
                problem = "contains '{}' (use lowercase letters, digits, '.', '_', '-' and '/')".format(char)
                break
    if not problem:
        for part in repository.split("/"):
            if not part or part in (".", "..") or part[0] in "._-" or part[-1] in "._-":
                problem = "has the path part '{}' (parts start and end with a letter or digit; no '..' or empty parts)".format(part)
                break
    if problem:
        fail("{}: attribute repository '{}' {}.".format(where(name), repository, problem))

def check_image_tags(name, tags):
    """Fails at loading time on an image tag that no registry would accept.

    Args:
      name: the macro's name, for the error message.
      tags: the image tags to check.
    """
    for tag in tags:
        ok = len(tag) > 0 and len(tag) <= 128 and tag[0] not in ".-"
        for char in tag.elems():
            if not (char.isalnum() or char in "_.-"):
                ok = False
        if not ok:
            fail("{}: attribute remote_tags: '{}' is not a valid image tag (up to 128 letters, digits, '_', '.', '-'; not starting with '.' or '-'). Bazel tags, such as owner:payments, go in tags.".format(where(name), tag))

# Attributes every rule takes, which the macros pass on to the targets they declare.
COMMON_ATTRIBUTES = [
    "compatible_with",
    "deprecation",
    "exec_compatible_with",
    "exec_properties",
    "features",
    "restricted_to",
    "target_compatible_with",
    "testonly",
]

def _distance(a, b):
    """Edit distance between two short attribute names."""
    previous = list(range(len(b) + 1))
    for i in range(len(a)):
        current = [i + 1]
        for j in range(len(b)):
            current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (0 if a[i] == b[j] else 1)))
        previous = current
    return previous[len(b)]

def check_attributes(name, macro, own, kwargs, required):
    """Fails on an attribute the macro does not know (naming the one it probably meant) or a missing one.

    Args:
      name: the macro's name, for the error message.
      macro: the macro's own name, e.g. "container_release".
      own: the macro's own attribute names.
      kwargs: the extra keyword arguments the macro was called with.
      required: {attribute: value} of the macro's required attributes.
    """
    for key in kwargs:
        if key in COMMON_ATTRIBUTES:
            continue
        known = own + COMMON_ATTRIBUTES
        closest = sorted([(_distance(key, candidate), candidate) for candidate in known])[0]
        hint = " Did you mean '{}'?".format(closest[1]) if closest[0] <= 2 else ""
        fail("{}: {} has no attribute '{}'.{} Its attributes are {}.".format(where(name), macro, key, hint, ", ".join(own)))
    for attribute, value in required.items():
        if value == None:
            fail("{}: {} needs attribute {}.".format(where(name), macro, attribute))

def release_pair(name, artifact, tags, visibility, release_deps_ci = [], release_deps_dev = [], **kwargs):
    """Declares <name>.ci (artifact_ci_release) and <name>.dev (artifact_dev_release) over one artifact target.

    Args:
      name: the macro's name; the targets are <name>.ci and <name>.dev.
      artifact: the label of the target that provides ReleaseArtifactInfo.
      tags: Bazel tags of both targets.
      visibility: visibility of both targets.
      release_deps_ci: CI releases that publish before <name>.ci (a deploy's images).
      release_deps_dev: dev releases that publish before <name>.dev.
      **kwargs: common attributes (common_attributes) of both targets.
    """
    artifact_ci_release(
        name = name + ".ci",
        artifact = artifact,
        release_deps = release_deps_ci,
        tags = tags,
        visibility = visibility,
        **kwargs
    )
    artifact_dev_release(
        name = name + ".dev",
        artifact = artifact,
        release_deps = release_deps_dev,
        tags = tags,
        visibility = visibility,
        **kwargs
    )
