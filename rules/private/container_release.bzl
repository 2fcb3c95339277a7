"""The container_release macro."""

load(":container.bzl", "container_artifact")
load(":macros.bzl", "check_attributes", "check_image_tags", "check_name", "check_repository", "image_tags_of", "release_pair", "where")

def container_release(name, image = None, repository = None, tags = [], visibility = None, **kwargs):
    """Publishes an image to the registry of a channel.

    Declares `<name>` (the checked image; deploy_release lists it in images), `<name>.ci`
    (kind artifact_ci_release) and `<name>.dev` (kind artifact_dev_release); `bazel run`
    either variant to publish. The image goes to `<channel registry>/<repository>`.

    Args:
      name: base name.
      image: an OCI image layout directory (oci_image, image_layout) or a docker-save .tar.
      repository: repository below the channel's registry, e.g. "payments/api".
      tags: Bazel tags for both variants (e.g. "no-ci"). Those that are not Bazel or CI
        control tags (manual, no-*, requires-*, supports-*, block-*, local, exclusive,
        external, flaky, cpu:*, resources:*) are also the image tags the CI variant
        pushes after the commit SHA.
      visibility: visibility of the three targets.
      **kwargs: common attributes passed to both variants (testonly, target_compatible_with, ...).
    """
    check_name(name)
    check_attributes(name, "container_release", ["name", "image", "repository", "tags", "visibility"], kwargs, {"image": image, "repository": repository})
    if type(image) == "string" and image.lstrip(":") == name:
        fail("{0}: attribute image '{1}' names this container_release itself: a target and a directory of one name make Bazel see a cycle. Give the release another name (e.g. name = \"{2}_release\"), and list the layout's files: filegroup(name = \"{2}_files\", srcs = glob([\"{2}/**\"])) with image = \":{2}_files\".".format(where(name), image, name))
    check_repository(name, repository)
    image_tags = image_tags_of(tags)
    check_image_tags(name, image_tags)
    container_artifact(
        name = name,
        image = image,
        repository = repository,
        remote_tags = image_tags,
        tags = tags,
        visibility = visibility,
        testonly = kwargs.get("testonly", False),
    )
    release_pair(name, ":" + name, tags, visibility, **kwargs)
