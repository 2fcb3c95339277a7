"""Deploy YAML: checked at build time, published only after every image it references, pinned by digest.

An image field is the value of any `image` key (every pod-spec location of every workload kind),
plus the fields deploy_release's image_fields declares for custom kinds, as `Kind:path/to/field`
with `[]` after a list (kustomize's field specs: `ExampleService:spec/sidecars[]/image`). A
placeholder (a key of deploy_release's images) matches the value itself, or the value with a
:tag or @digest. A placeholder in any other string value is an error: it would reach the CD
system unresolved.

Pinning edits the reviewed text in place: only the characters of each image value change, so
comments, anchors, quoting, key order and document separators are published as written.
"""

import json
import logging
import sys

from releasekit.core.errors import DeployError, DeployInputError, ImmutableVersionError

log = logging.getLogger(__name__)
PINNED_MARK = "@sha256:"


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


class FieldSpec:
    """One declared image field of a custom kind: `Kind:path/to/field`, `[]` after a list."""

    def __init__(self, text):
        kind, _, path = text.partition(":")
        parts = [part for part in path.split("/")]
        if not kind or not path or any(not part or part == "[]" for part in parts):
            raise DeployInputError(
                "attribute image_fields: '{}' is not a field spec; write Kind:path/to/field, with [] after a list, "
                "e.g. 'ExampleService:spec/sidecars[]/image'.".format(text))
        self.text, self.kind, self.parts = text, kind, parts

    def scalars(self, node, path=(), parts=None):
        """(path, scalar node) of every value this spec names below a document node."""
        import yaml

        parts = self.parts if parts is None else parts
        if not parts:
            if isinstance(node, yaml.ScalarNode):
                yield path, node
            return
        name, many = (parts[0][:-2], True) if parts[0].endswith("[]") else (parts[0], False)
        for key, child in _mapping_items(node):
            if key != name:
                continue
            if not many:
                yield from self.scalars(child, path + (key,), parts[1:])
            elif isinstance(child, yaml.SequenceNode):
                for index, element in enumerate(child.value):
                    yield from self.scalars(element, path + (key, index), parts[1:])


def _mapping_items(node):
    """(key, value node) of a mapping node, merged mappings (<<) included."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return
    for key_node, value in node.value:
        if key_node.value == "<<":
            merged = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for mapping in merged:
                yield from _mapping_items(mapping)
        elif isinstance(key_node, yaml.ScalarNode):
            yield key_node.value, value


def _strings(node, path=(), open_collections=()):
    """(path, scalar node) of every string value in a document; an aliased node shows at each of its paths."""
    import yaml

    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:str":
            yield path, node
        return
    if id(node) in open_collections:  # an alias of a collection inside itself
        return
    inside = open_collections + (id(node),)
    if isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            yield from _strings(child, path + (index,), inside)
    elif isinstance(node, yaml.MappingNode):
        for key, child in _mapping_items(node):
            yield from _strings(child, path + (key,), inside)


def _document_kind(node):
    for key, value in _mapping_items(node):
        if key == "kind" and hasattr(value, "value") and isinstance(value.value, str):
            return value.value
    return None


def image_fields(node, specs):
    """{id(scalar node): (path, scalar node)} of every image field of a composed document."""
    fields = {}
    for path, scalar in _strings(node):
        if path and path[-1] == "image":
            fields[id(scalar)] = (path, scalar)
    kind = _document_kind(node)
    for spec in specs:
        if spec.kind == kind:
            for path, scalar in spec.scalars(node):
                if scalar.tag == "tag:yaml.org,2002:str":
                    fields[id(scalar)] = (path, scalar)
    return fields


def _compose(text, display):
    """The composed document nodes of a YAML text (empty documents left out)."""
    import yaml

    try:
        return [node for node in yaml.compose_all(text, Loader=yaml.SafeLoader) if node is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = "{}:{}".format(display, mark.line + 1) if mark else display
        raise DeployInputError("{}: attribute manifests: not valid YAML ({}).".format(
            where, getattr(error, "problem", None) or error)) from None


def _dotted(path):
    return ".".join(str(p) for p in path) or "the top level"


def _as_field_spec(kind, path):
    """The image_fields entry that names path in documents of kind: list indexes become []."""
    parts = []
    for part in path:
        if isinstance(part, int):
            parts[-1] += "[]"
        else:
            parts.append(str(part))
    return "{}:{}".format(kind or "Kind", "/".join(parts))


def _stray_placeholders(display, index, node, fields, placeholders):
    """(message, field spec that would make it an image field) for each placeholder in a string that is not one."""
    found = []
    for path, scalar in _strings(node):
        placeholder = matching_placeholder(scalar.value, placeholders)
        if placeholder and id(scalar) not in fields:
            found.append(("{}:{} (document {}): placeholder '{}' stands at {}, which is not an image field".format(
                display, scalar.start_mark.line + 1, index, placeholder, _dotted(path)),
                _as_field_spec(_document_kind(node), path)))
    return found


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


def check(files, placeholders, platform, kubernetes_version, label, field_specs=(), crd_files=(), schema=None):
    """Build-time checks. files and crd_files: [(display path, text)]; placeholders: {placeholder: image label};
    schema: (display path, JSON Schema) of platform "generic"."""
    from releasekit.publishing.custom_resources import CRD_API_VERSION, CrdSchemas, validate

    specs = [FieldSpec(text) for text in field_specs]
    used = set()
    documents_checked = 0
    crds = CrdSchemas()
    parsed = {display: load_documents(text, display) for display, text in list(crd_files) + list(files)}
    for display, text in list(crd_files) + list(files):
        for index, (document, line) in enumerate(parsed[display], 1):
            is_crd = isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition"
            if (display, text) in crd_files or (is_crd and document.get("apiVersion") == CRD_API_VERSION):
                crds.add(document if isinstance(document, dict) else {}, "{}:{} (document {})".format(display, line, index))
    for display, text in files:
        documents = parsed[display]
        for index, (node, (document, line)) in enumerate(zip(_compose(text, display), documents), 1):
            where = "{}:{} (document {}, {})".format(display, line, index, _describe(document))
            fields = image_fields(node, specs)
            for path, scalar in sorted(fields.values(), key=lambda item: item[1].start_mark.index):
                image = scalar.value
                placeholder = matching_placeholder(image, placeholders)
                if placeholder:
                    if scalar.style in ("|", ">"):
                        raise DeployInputError("{}: attribute manifests: image '{}' at {} is a block scalar; write it on "
                                               "one line so it can be pinned in place.".format(where, image, _dotted(path)))
                    used.add(placeholder)
                elif PINNED_MARK not in image:
                    raise DeployInputError(
                        "{}: attribute manifests: image '{}' at {} is neither a key of attribute images nor pinned by "
                        "digest. Map it to a container_release in images, or pin it (name@sha256:...).".format(
                            where, image, _dotted(path))
                    )
            stray = _stray_placeholders(display, index, node, fields, placeholders)
            if stray:
                raise DeployInputError(
                    "{}: attribute manifests: {}; it would be published unresolved. Declare such fields in attribute "
                    "image_fields ({}), or rename the placeholder.".format(
                        label, "; ".join(message for message, _ in stray),
                        ", ".join(sorted(set('"{}"'.format(spec) for _, spec in stray)))))
            custom = crds.schema_for(document, where) if platform == "kubernetes" and isinstance(document, dict) else None
            if custom is not None:
                validate(document, custom, where, "its CustomResourceDefinition")
            elif platform == "kubernetes":
                _validate_kubernetes(document, kubernetes_version, where)
            elif schema is not None:
                validate(document, schema[1], where, "the schema " + schema[0])
            documents_checked += 1
    unused = sorted(set(placeholders) - used)
    if unused:
        raise DeployInputError(
            "{}: attribute images: {} never appear as an image in {}. Use them in an `image:` field (or a field of "
            "image_fields), or remove them from images.".format(
                label, ", ".join("'{}' ({})".format(p, placeholders[p]) for p in unused),
                ", ".join(display for display, _ in files))
        )
    return {"documents": documents_checked, "placeholders": sorted(used),
            "custom_kinds": sorted("{}/{}".format(group, kind) for group, kind in crds.kinds),
            "cel_rules_not_checked": crds.unchecked_rules}


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
        raise DeployInputError("{}: attribute manifests: no Kubernetes {} schema for apiVersion '{}' kind '{}'. A custom "
                               "kind is checked against its CustomResourceDefinition: list the CRD's file in attribute "
                               "crds, or include the CRD in manifests.".format(
                                   where, version, document.get("apiVersion"), document.get("kind"))) from None
    except kubernetes_validate.ValidationError as error:
        at = ".".join(str(p) for p in error.path) or "the top level"
        raise DeployInputError("{}: attribute manifests: invalid for Kubernetes {}: {} (at {}).".format(
            where, version, error.message, at)) from None


def pin_images(text, references, field_specs, display):
    """The YAML text with every placeholder image field replaced by its pinned reference, nothing else changed.

    The result is parsed again: an image field left unpinned, or a placeholder left in any string value,
    refuses the release (DeployError naming file, line and field), so nothing unresolved is published.
    """
    import yaml

    specs = [FieldSpec(spec) for spec in field_specs]
    # A node's span starts at its anchor or tag; the scalar's own characters start at its token.
    token_starts = {token.end_mark.index: token.start_mark.index
                    for token in yaml.scan(text, Loader=yaml.SafeLoader) if isinstance(token, yaml.ScalarToken)}
    edits = {}
    for node in _compose(text, display):
        for path, scalar in image_fields(node, specs).values():
            placeholder = matching_placeholder(scalar.value, references)
            if placeholder:
                end = scalar.end_mark.index
                edits[end] = (token_starts[end], _scalar_text(references[placeholder], scalar.style))
    pinned = text
    for end in sorted(edits, reverse=True):
        start, replacement = edits[end]
        pinned = pinned[:start] + replacement + pinned[end:]
    problems = []
    for index, node in enumerate(_compose(pinned, display), 1):
        fields = image_fields(node, specs)
        for path, scalar in fields.values():
            if PINNED_MARK not in scalar.value:
                problems.append("{}:{} (document {}): image '{}' at {} is not pinned by digest (a tag is not a pin)".format(
                    display, scalar.start_mark.line + 1, index, scalar.value, _dotted(path)))
        problems += [message for message, _ in _stray_placeholders(display, index, node, {}, references)]
    if problems:
        raise DeployError("{}; nothing was published.".format("; ".join(problems)))
    return pinned


def _scalar_text(value, style):
    """A YAML scalar holding value, in the quoting style of the one it replaces."""
    if style == "'":
        return "'{}'".format(value.replace("'", "''"))
    if style == '"':
        return json.dumps(value)
    return value


def publish_files(store, directory, files, pointer_path, version, immutable, dry_run=False, move_pointer=None):
    """Write the YAML files of one version, then the pointer to it. Returns (status, bytes written).

    immutable: a version already there with other content is refused (CI); otherwise replaced (dev).
    dry_run: read and check as a run would, refusing alike, and write nothing.
    move_pointer(what the pointer holds now): whether it may move to this version (pointers.py); None: it may.
    """
    existing = {}
    for name, content in files:
        existing[name] = store.get("{}/{}".format(directory, name))[0]
    if immutable:
        differing = [name for name, content in files if existing[name] is not None and existing[name] != content]
        if differing:
            raise ImmutableVersionError(
                "{} is already published with different content ({}); a CI deploy version is immutable, so nothing "
                "was written.".format(store.describe(directory), ", ".join(differing)))
    if dry_run:
        pending = [name for name, content in files if existing[name] != content]
        return ("would publish " + ", ".join(pending) if pending else "already published"), 0
    written = 0
    for name, content in files:
        if existing[name] != content:
            store.put("{}/{}".format(directory, name), content)
            written += len(content)
    pointer = (version + "\n").encode("utf-8")
    current = store.get(pointer_path)[0]
    if current != pointer and (move_pointer is None or move_pointer(current)):
        store.put(pointer_path, pointer)
        written += len(pointer)
    if written == 0:
        return "already published", 0
    return ("published" if all(existing[name] is None for name, _ in files) else "completed"), written


def release_summary(record):
    return json.dumps(record, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def check_files(paths, displays, placeholders, platform, kubernetes_version, label, image_fields, out, crds=(),
                crd_displays=(), schema=None, schema_display=None):
    """The deploy-check build action: check the YAML files (see check) and write what was checked."""
    from releasekit.core.jsonio import write_json_atomic
    from releasekit.publishing.custom_resources import load_json_schema

    def read(pairs):
        texts = []
        for path, display in pairs:
            with open(path, encoding="utf-8") as handle:
                texts.append((display, handle.read()))
        return texts

    json_schema = (schema_display, load_json_schema(schema, schema_display)) if schema else None
    result = check(read(zip(paths, displays)), placeholders, platform, kubernetes_version, label, image_fields,
                   read(zip(crds, crd_displays)), json_schema)
    write_json_atomic(out, dict(result, label=label))
    return result
