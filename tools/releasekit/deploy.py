"""Deploy YAML: checked at build time, published only after every image it references, pinned by digest.

An image reference in the YAML is a value of an `image` key. A placeholder (a key of
deploy_release's images) matches the value itself, or the value with a :tag or @digest.
"""

import json
import logging
import sys

from .errors import ReleasekitError, UsageError

log = logging.getLogger(__name__)
PINNED_MARK = "@sha256:"


class DeployError(ReleasekitError):
    """Deploy YAML is invalid, or cannot be published safely."""


class DeployInputError(UsageError):
    """A deploy_release input is wrong; the message names the file, line and attribute."""


def load_documents(text, display):
    """[(document, line)] of a multi-document YAML text; line is where each document starts."""
    import yaml

    documents = []
    try:
        loader = yaml.SafeLoader(text)
        try:
            while loader.check_node():
                node = loader.get_node()
                documents.append((loader.construct_document(node), node.start_mark.line + 1))
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = "{}:{}".format(display, mark.line + 1) if mark else display
        raise DeployInputError("{}: attribute manifests: not valid YAML ({}).".format(
            where, getattr(error, "problem", None) or error)) from None
    return [(doc, line) for doc, line in documents if doc is not None]


def image_references(value, path=()):
    """(path, image) for every string under an `image` key."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "image" and isinstance(child, str):
                yield path + (key,), child
            else:
                yield from image_references(child, path + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from image_references(child, path + (index,))


def matching_placeholder(image, placeholders):
    for placeholder in placeholders:
        if image == placeholder or image.startswith(placeholder + ":") or image.startswith(placeholder + "@"):
            return placeholder
    return None


def _describe(document):
    if isinstance(document, dict):
        kind = document.get("kind", "document")
        name = (document.get("metadata") or {}).get("name", "") if isinstance(document.get("metadata"), dict) else ""
        return "{} {}".format(kind, name).strip()
    return "document"


def check(files, placeholders, platform, kubernetes_version, label):
    """Build-time checks. files: [(display path, text)]; placeholders: {placeholder: image label}."""
    used = set()
    documents_checked = 0
    for display, text in files:
        for index, (document, line) in enumerate(load_documents(text, display), 1):
            where = "{}:{} (document {}, {})".format(display, line, index, _describe(document))
            for path, image in image_references(document):
                placeholder = matching_placeholder(image, placeholders)
                if placeholder:
                    used.add(placeholder)
                elif PINNED_MARK not in image:
                    raise DeployInputError(
                        "{}: attribute manifests: image '{}' at {} is neither a key of attribute images nor pinned by "
                        "digest. Map it to a container_release in images, or pin it (name@sha256:...).".format(
                            where, image, ".".join(str(p) for p in path))
                    )
            if platform == "kubernetes":
                _validate_kubernetes(document, kubernetes_version, where)
            documents_checked += 1
    unused = sorted(set(placeholders) - used)
    if unused:
        raise DeployInputError(
            "{}: attribute images: {} never appear as an image in {}. Use them in an `image:` field, or remove them "
            "from images.".format(label, ", ".join("'{}' ({})".format(p, placeholders[p]) for p in unused),
                                  ", ".join(display for display, _ in files))
        )
    return {"documents": documents_checked, "placeholders": sorted(used)}


def _validate_kubernetes(document, version, where):
    try:
        import kubernetes_validate
        from kubernetes_validate.utils import VersionNotSupportedError
    except ImportError as error:
        raise DeployInputError(
            "{}: validating Kubernetes YAML needs the kubernetes-validate package in the python3 Bazel actions run "
            "({}; {}): pip install kubernetes-validate, or set platform to 'generic'.".format(where, sys.executable, error)
        ) from None
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except VersionNotSupportedError:
        raise DeployInputError("{}: attribute kubernetes_version: '{}' is not a version kubernetes-validate knows; "
                               "latest is {}.".format(where, version, kubernetes_validate.latest_version())) from None
    except kubernetes_validate.SchemaNotFoundError:
        raise DeployInputError("{}: attribute manifests: no Kubernetes {} schema for apiVersion '{}' kind '{}'.".format(
            where, version, document.get("apiVersion"), document.get("kind"))) from None
    except kubernetes_validate.ValidationError as error:
        at = ".".join(str(p) for p in error.path) or "the top level"
        raise DeployInputError("{}: attribute manifests: invalid for Kubernetes {}: {} (at {}).".format(
            where, version, error.message, at)) from None


def rewrite(documents, references):
    """Replace every placeholder image with its pinned reference, in place. Returns the count."""
    count = 0

    def walk(value):
        nonlocal count
        if isinstance(value, dict):
            for key, child in value.items():
                if key == "image" and isinstance(child, str):
                    placeholder = matching_placeholder(child, references)
                    if placeholder:
                        value[key] = references[placeholder]
                        count += 1
                else:
                    walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    for document in documents:
        walk(document)
    return count


def unpinned(documents):
    return [image for document in documents for _, image in image_references(document) if PINNED_MARK not in image]


def render(documents):
    import yaml

    return yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False).encode("utf-8")


def publish_files(store, directory, files, pointer_path, version, immutable):
    """Write the YAML files of one version, then the pointer to it. Returns (status, bytes written).

    immutable: a version already there with other content is refused (CI); otherwise replaced (dev).
    """
    existing = {}
    for name, content in files:
        existing[name] = store.get("{}/{}".format(directory, name))[0]
    if immutable:
        differing = [name for name, content in files if existing[name] is not None and existing[name] != content]
        if differing:
            raise DeployError(
                "{} is already published with different content ({}); a CI deploy version is immutable, so nothing "
                "was written.".format(store.describe(directory), ", ".join(differing)))
    written = 0
    for name, content in files:
        if existing[name] != content:
            store.put("{}/{}".format(directory, name), content)
            written += len(content)
    pointer = (version + "\n").encode("utf-8")
    if store.get(pointer_path)[0] != pointer:
        store.put(pointer_path, pointer)
        written += len(pointer)
    if written == 0:
        return "already published", 0
    return ("published" if all(existing[name] is None for name, _ in files) else "completed"), written


def release_summary(record):
    return json.dumps(record, indent=2, sort_keys=True).encode("utf-8") + b"\n"
