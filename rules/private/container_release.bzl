"""The container_release macro."""

load(":container.bzl", "container_artifact")
load(":macros.bzl", "check_attributes", "check_image_tags", "check_name", "check_repository", "release_pair", "where")

def container_release(name, image = None, repository = None, remote_tags = [], tags = [], visibility = None, **kwargs):
    """Publishes an image to the registry of a channel.

    Declares `<name>` (the checked image; deploy_release lists it in images), `<name>.ci`
    (kind artifact_ci_release) and `<name>.dev` (kind artifact_dev_release); `bazel run`
    either variant to publish. The image goes to `<channel registry>/<repository>`.

    Args:
      name: base name.
      image: an OCI image layout directory (oci_image, image_layout) or a docker-save .tar.
      repository: repository below the channel's registry, e.g. "payments/api".
      remote_tags: image tags the CI variant pushes after the commit SHA (e.g. "stable").
      tags: Bazel tags of the three targets (e.g. "no-ci", "owner:payments"); never pushed.
      visibility: visibility of the three targets.
      **kwargs: common attributes (testonly, target_compatible_with, ...) of the three targets.
    """
    check_name(name)
    check_attributes(name, "container_release", ["name", "image", "repository", "remote_tags", "tags", "visibility"], kwargs, {"image": image, "repository": repository})
    if type(image) == "string" and image.lstrip(":") == name:
        fail("{0}: attribute image '{1}' names this container_release itself: a target and a directory of one name make Bazel see a cycle. Give the release another name (e.g. name = \"{2}_release\"), and list the layout's files: filegroup(name = \"{2}_files\", srcs = glob([\"{2}/**\"])) with image = \":{2}_files\".".format(where(name), image, name))
    check_repository(name, repository)
    check_image_tags(name, remote_tags)
    container_artifact(
        name = name,
        image = image,
        repository = repository,
        remote_tags = remote_tags,
        tags = tags,
        visibility = visibility,
        **kwargs
    )
    release_pair(name, ":" + name, tags, visibility, **kwargs)
