"""Which values of deploy YAML are image fields, found on the composed YAML nodes (so that pinning can edit the text of
exactly those values).

An image field is the value of any `image` key (every pod-spec location of every workload kind), plus the fields
deploy_release's image_fields declares, as kustomize's field specs write them: `Kind:path/to/field`, `[]` after a list
for every item. One list item is selected by a key the way kustomize's replacements select it (kyaml's list entry
identifier, `[name=value]` as a path element):
`Deployment:spec/template/spec/containers[]/env/[name=RELATED_IMAGE_DB]/value`.
`env[name=RELATED_IMAGE_DB]` is read the same. A `/` inside a name is written `\\/`.
"""

import re

from releasekit.core.errors import DeployInputError
from releasekit.publishing.kube_yaml import STR, field_path

EXAMPLE = ("'ExampleService:spec/sidecars[]/image' or "
           "'Deployment:spec/template/spec/containers[]/env/[name=RELATED_IMAGE_DB]/value'")


def _split(path):
    """Path elements: split at `/`, except an escaped `\\/` or one inside [...] (kustomize's SmarterPathSplitter)."""
    parts, current, depth, index = [], "", 0, 0
    while index < len(path):
        char = path[index]
        if char == "\\" and path[index + 1:index + 2] == "/":
            current, index = current + "/", index + 2
            continue
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "/" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
        index += 1
    return parts + [current]


class FieldSpec:
    """One declared image field: steps of ("key", name), ("each",) for `[]`, ("match", key, value) for `[key=value]`."""

    def __init__(self, text):
        kind, _, path = text.partition(":")
        self.text, self.kind, self.steps = text, kind, []
        for part in _split(path) if path else [""]:
            match = re.match(r"([^\[\]]*)(?:\[(?:([^=\[\]]+)=([^\[\]]*))?\])?\Z", part)
            if not kind or not match or not (match.group(1) or match.group(2)) or (
                    not match.group(1) and part.endswith("[]")):
                raise DeployInputError(
                    "attribute image_fields: '{}' is not a field spec; write Kind:path/to/field, with [] after a list "
                    "for every item or [key=value] for the items whose key has that value, e.g. {}.".format(text,
                                                                                                            EXAMPLE))
            name, key, value = match.groups()
            if name:
                self.steps.append(("key", name))
            if part.endswith("[]"):
                self.steps.append(("each",))
            elif key:
                self.steps.append(("match", key, value))

    def scalars(self, node, path=(), steps=None):
        """(path, scalar node) of every value this spec names below a document node."""
        import yaml

        steps = self.steps if steps is None else steps
        if not steps:
            if isinstance(node, yaml.ScalarNode):
                yield path, node
            return
        step = steps[0]
        if step[0] == "key":
            for key, child in mapping_items(node):
                if key == step[1]:
                    yield from self.scalars(child, path + (key,), steps[1:])
        elif isinstance(node, yaml.SequenceNode):
            for index, element in enumerate(node.value):
                if step[0] == "each" or _scalar_of(element, step[1]) == step[2]:
                    yield from self.scalars(element, path + (index,), steps[1:])


def _scalar_of(node, key):
    for name, child in mapping_items(node):
        if name == key and hasattr(child, "value") and isinstance(child.value, str):
            return child.value
    return None


def mapping_items(node):
    """(key, value node) of a mapping node, merged mappings (<<) included."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return
    for key_node, value in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            merged = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for mapping in merged:
                yield from mapping_items(mapping)
        elif isinstance(key_node, yaml.ScalarNode):
            yield key_node.value, value


def strings(node, path=(), open_collections=()):
    """(path, scalar node) of every string value in a document; an aliased node shows at each of its paths."""
    import yaml

    if isinstance(node, yaml.ScalarNode):
        if node.tag == STR:
            yield path, node
        return
    if id(node) in open_collections:  # an alias of a collection inside itself
        return
    inside = open_collections + (id(node),)
    if isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            yield from strings(child, path + (index,), inside)
    elif isinstance(node, yaml.MappingNode):
        for key, child in mapping_items(node):
            yield from strings(child, path + (key,), inside)


def document_kind(node):
    for key, value in mapping_items(node):
        if key == "kind" and hasattr(value, "value") and isinstance(value.value, str):
            return value.value
    return None


def image_fields(node, specs):
    """{id(scalar node): (path, scalar node)} of every image field of a composed document."""
    fields = {}
    for path, scalar in strings(node):
        if path and path[-1] == "image":
            fields[id(scalar)] = (path, scalar)
    kind = document_kind(node)
    for spec in specs:
        if spec.kind == kind:
            for path, scalar in spec.scalars(node):
                if scalar.tag == STR:
                    fields[id(scalar)] = (path, scalar)
    return fields


def suggested_spec(node, path):
    """The image_fields entry that names path in this document: `[]` for the lists on the way, and the list item
    itself selected by its name when it has one (`env/[name=RELATED_IMAGE_DB]/value`), so that the entry does not
    make every item's value an image field."""
    parts, current, last_list = [], node, max((i for i, part in enumerate(path) if isinstance(part, int)), default=None)
    for position, part in enumerate(path):
        if isinstance(part, int):
            current = current.value[part]
            name = _scalar_of(current, "name")
            if position == last_list and name is not None and "]" not in name:
                parts.append("[name={}]".format(name))
            else:
                parts[-1] += "[]"
        else:
            current = next(child for key, child in mapping_items(current) if key == part)
            parts.append(str(part).replace("/", "\\/"))
    return "{}:{}".format(document_kind(node) or "Kind", "/".join(parts))


def matching_placeholder(image, placeholders):
    for placeholder in placeholders:
        if image == placeholder or image.startswith(placeholder + ":") or image.startswith(placeholder + "@"):
            return placeholder
    return None


def stray_placeholders(display, index, node, fields, placeholders):
    """(message, field spec that would make it an image field) for each placeholder in a string that is not one."""
    found = []
    for path, scalar in strings(node):
        placeholder = matching_placeholder(scalar.value, placeholders)
        if placeholder and id(scalar) not in fields:
            found.append(("{}:{}:{} (document {}): placeholder '{}' stands at {}, which is not an image field".format(
                display, scalar.start_mark.line + 1, scalar.start_mark.column + 1, index, placeholder,
                field_path(path)),
                suggested_spec(node, path)))
    return found
