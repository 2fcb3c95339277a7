"""The file_release macro, written against release_lib (lib.bzl) alone, as a rule set of another repository would
write its own kind's macro."""

load(":file.bzl", "file_artifact")
load(":lib.bzl", "release_lib")

def file_release(name, src = None, file_name = None, tags = [], visibility = None, **kwargs):
    """Publishes one file or tarball (a deploy bundle for a VM fleet, a CLI binary) to the `files` store of a channel.

    Declares `<name>` (the file), `<name>.ci` and `<name>.dev`. A release writes, under
    `<package>/<name>/<version>/`: the file, then `<file name>.sha256`, then `release.json`;
    then it points `<package>/<name>/latest` at the version. A CI version (RELEASEKIT_VERSION,
    else the commit SHA) is immutable: the same version with other content is refused.

    Args:
      name: base name.
      src: the one file to publish.
      file_name: the name it is published under (default: its own).
      tags: Bazel tags of the three targets (e.g. "no-ci").
      visibility: visibility of the three targets.
      **kwargs: common attributes (testonly, target_compatible_with, ...) of the three targets.
    """
    release_lib.check_name(name)
    release_lib.check_attributes(name, "file_release", ["name", "src", "file_name", "tags", "visibility"], kwargs, {"src": src})
    file_artifact(
        name = name,
        src = src,
        file_name = file_name,
        tags = tags,
        visibility = visibility,
        **kwargs
    )
    release_lib.release_pair(name, ":" + name, tags, visibility, **kwargs)
