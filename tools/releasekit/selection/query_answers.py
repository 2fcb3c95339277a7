"""Reading `bazel query` answers: the proto output for selection, the XML output for rule definitions."""

import re

from releasekit.core.errors import ReleasekitError

# Attributes that move when unrelated lines of a BUILD file move; they say nothing of what a target is.
_POSITIONAL_ATTRIBUTES = frozenset(["generator_location"])


class Target:
    """One query result. kind is a rule class, "source file", "generated file" or "package group".

    A plain class, not a dataclass: every collect run starts a fresh interpreter, and importing
    dataclasses would cost it more than the class saves.
    """

    __slots__ = ("label", "kind", "tags", "inputs", "definition", "test_suite_tests", "constrained", "toolchain")

    def __init__(self, label, kind, tags=(), inputs=(), definition="", test_suite_tests=(), constrained=False,
                 toolchain=()):
        self.label, self.kind, self.tags, self.inputs = label, kind, tags, inputs
        self.definition, self.test_suite_tests = definition, test_suite_tests
        self.constrained = constrained  # sets target_compatible_with: it may be incompatible with the platform
        # A toolchain() rule: (the implementation it names, its toolchain type). Neither is an edge query follows: a
        # rule resolves its toolchain at analysis time.
        self.toolchain = toolchain

    def _fields(self):
        return (self.label, self.kind, self.tags, self.inputs, self.definition, self.test_suite_tests, self.constrained,
                self.toolchain)

    def __eq__(self, other):
        return isinstance(other, Target) and self._fields() == other._fields()

    def __repr__(self):
        return "Target{}".format(self._fields())

    @property
    def is_rule(self):
        return self.kind not in ("source file", "generated file", "package group")

    @property
    def is_test(self):
        return self.is_rule and self.kind.endswith("_test")


# Bazel's build.proto (src/main/protobuf/build.proto), stable since Bazel 1: the fields selection reads.
# QueryResult.target = 1; Target.type = 1 (a varint), then one of rule = 2, source_file = 3,
# generated_file = 4, package_group = 5; Rule.name = 1, rule_class = 2, attribute = 4, rule_input = 5;
# Attribute.name = 1, string_value = 5, string_list_value = 6; GeneratedFile.name = 1, generating_rule = 2; *.name = 1.
# Field keys are read inline rather than through _varint(): the loops run once per field of thousands
# of targets, and a call per field would cost a third of the time.
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5
# A toolchain() rule's implementation and type, in this order: Attribute.string_value = 5 (a label's text).
_TOOLCHAIN_ATTRIBUTES = ("toolchain", "toolchain_type")


class _ProtoError(Exception):
    pass


def _varint(data, position):
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7


def _length(data, position):
    length = data[position]
    return (length, position + 1) if length < 0x80 else _varint(data, position)


def _skip(data, position, wire_type):
    if wire_type == _VARINT:
        while data[position] >= 0x80:
            position += 1
        return position + 1
    if wire_type == _LENGTH_DELIMITED:
        length, position = _length(data, position)
        return position + length
    if wire_type == _FIXED64:
        return position + 8
    if wire_type == _FIXED32:
        return position + 4
    raise _ProtoError("wire type {}".format(wire_type))


def _strings(data, position, end, number):
    """Every string field `number` of the message at data[position:end]."""
    found = []
    while position < end:
        key = data[position]
        position += 1
        if key >= 0x80:  # fields numbered 16 and up have two-byte keys
            key, position = _varint(data, position - 1)
        if key >> 3 == number and key & 7 == _LENGTH_DELIMITED:
            length, position = _length(data, position)
            found.append(data[position:position + length].decode("utf-8"))
            position += length
        else:
            position = _skip(data, position, key & 7)
    if position != end:
        raise _ProtoError("a field runs past its message")
    return found


def _attribute_name(data, position, end):
    if data[position] == 0x0A and data[position + 1] < 0x80:  # name (field 1) first, as Bazel writes it
        return data[position + 2:position + 2 + data[position + 1]].decode("utf-8")
    names = _strings(data, position, end, 1)
    return names[0] if names else ""


def _rule(data, position, end, external_inputs=False):
    name = kind = None
    tags = tests = ()
    constrained = False
    toolchain = {}
    inputs = []
    while position < end:
        key = data[position]
        position += 1
        if key >= 0x80:  # fields numbered 16 and up have two-byte keys
            key, position = _varint(data, position - 1)
        if key & 7 != _LENGTH_DELIMITED:
            position = _skip(data, position, key & 7)
            continue
        length, position = _length(data, position)
        stop = position + length
        number = key >> 3
        if number == 5:
            if external_inputs or data[position] != 0x40:  # "@": another repository's, unless asked for
                inputs.append(data[position:stop].decode("utf-8"))
        elif number == 1:
            name = data[position:stop].decode("utf-8")
        elif number == 2:
            kind = data[position:stop].decode("utf-8")
        elif number == 4:
            attribute = _attribute_name(data, position, stop)
            if attribute == "tags":
                tags = tuple(_strings(data, position, stop, 6))
            elif attribute == "tests":
                tests = tuple(_strings(data, position, stop, 6))
            elif attribute == "target_compatible_with":
                constrained = bool(_strings(data, position, stop, 6))
            elif attribute in _TOOLCHAIN_ATTRIBUTES:
                toolchain[attribute] = (_strings(data, position, stop, 5) or [""])[0]  # Attribute.string_value
        position = stop
    if position != end or name is None or kind is None:
        raise _ProtoError("a rule without name or class")
    return Target(name, kind, tags, tuple(inputs), "", tests, constrained, _toolchain_of(kind, toolchain))


def _toolchain_of(kind, attributes):
    if kind != "toolchain" or not all(attributes.get(name) for name in _TOOLCHAIN_ATTRIBUTES):
        return ()
    return tuple(attributes[name] for name in _TOOLCHAIN_ATTRIBUTES)


def _target(data, position, end, external_inputs=False):
    target = None
    while position < end:
        key = data[position]
        position += 1
        if key >= 0x80:  # fields numbered 16 and up have two-byte keys
            key, position = _varint(data, position - 1)
        if key & 7 != _LENGTH_DELIMITED:
            position = _skip(data, position, key & 7)  # Target.type: the field that follows says the same
            continue
        length, position = _length(data, position)
        stop = position + length
        number = key >> 3
        if number == 2:
            target = _rule(data, position, stop, external_inputs)
        elif number == 4:
            generating_rule = _strings(data, position, stop, 2)
            target = Target(_strings(data, position, stop, 1)[0], "generated file", inputs=tuple(generating_rule[:1]))
        elif number in (3, 5):
            target = Target(_strings(data, position, stop, 1)[0], "source file" if number == 3 else "package group")
        position = stop
    if position != end:
        raise _ProtoError("a field runs past its message")
    return target


def decode_query_proto(data, external_inputs=False):
    """Targets by label from `bazel query --output=proto`: class, tags, test_suite tests and rule inputs
    (those in this repository, unless external_inputs: only a WORKSPACE-level change follows other repositories).

    A small reader of the protobuf wire format for the few fields selection needs (see above), so
    that releasekit needs no protobuf package; the tests compare it with a full read of the XML output.
    """
    targets = {}
    position, end = 0, len(data)
    try:
        while position < end:
            key = data[position]
            position += 1
            if key >= 0x80:  # fields numbered 16 and up have two-byte keys
                key, position = _varint(data, position - 1)
            if key != 0x0A:  # QueryResult.target, length-delimited
                position = _skip(data, position, key & 7)
                continue
            length, position = _length(data, position)
            target = _target(data, position, position + length, external_inputs)
            if target is not None:
                targets[target.label] = target
            position += length
        if position != end:
            raise _ProtoError("the answer ends inside a target")
    except (_ProtoError, IndexError, UnicodeDecodeError) as error:
        raise ReleasekitError("Could not read bazel query's proto output ({}). Rerun the command; if it "
                              "persists, report it with the output of `bazel version`.".format(error)) from None
    return targets


def _xml_root(text):
    import xml.etree.ElementTree as ElementTree  # here: only a BUILD file change needs it

    # Bazel declares XML 1.1, which expat does not accept; the content is 1.0-compatible.
    text = re.sub(r"^<\?xml[^>]*\?>", "", text.lstrip(), count=1)
    if not text.strip():
        return ()
    try:
        return ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise ReleasekitError("Could not read bazel query's XML output ({}).".format(error)) from None


def parse_query_xml_tree(text, definitions=False):
    """A full XML parse: slower, and the only one that yields definitions."""
    targets = {}
    root = _xml_root(text)
    for element in root:
        label = element.get("name")
        if element.tag == "rule":
            tags, tests, inputs, constrained, toolchain = (), (), [], False, {}
            for child in element:
                if child.tag == "label" and child.get("name") in _TOOLCHAIN_ATTRIBUTES:
                    toolchain[child.get("name")] = child.get("value")
                elif child.tag == "list" and child.get("name") == "tags":
                    tags = tuple(item.get("value") for item in child)
                elif child.tag == "list" and child.get("name") == "tests":
                    tests = tuple(item.get("value") for item in child)
                elif child.tag == "list" and child.get("name") == "target_compatible_with":
                    constrained = len(child) > 0
                elif child.tag == "rule-input":
                    inputs.append(child.get("name"))
            definition = _definition(element) if definitions else ""
            targets[label] = Target(label, element.get("class"), tags, tuple(inputs), definition, tests, constrained,
                                    _toolchain_of(element.get("class"), toolchain))
        elif element.tag == "generated-file":
            targets[label] = Target(label, "generated file", inputs=(element.get("generating-rule"),))
        elif element.tag == "source-file":
            targets[label] = Target(label, "source file")
        elif element.tag == "package-group":
            targets[label] = Target(label, "package group")
    return targets


def definitions_by_label(text):
    """{label: (kind, definition, location)} of an XML answer: rules by class and canonical definition, other
    targets by kind alone ("source file", "generated file", ...); location is the BUILD file's path."""
    found = {}
    for element in _xml_root(text):
        if element.tag == "rule":
            found[element.get("name")] = (element.get("class"), _definition(element), element.get("location"))
        else:
            found[element.get("name")] = (element.tag.replace("-", " "), "", element.get("location"))
    return found


def _definition(element):
    """A canonical text of a rule's definition: its class and attributes, not where it stands in the file."""
    import xml.etree.ElementTree as ElementTree  # see parse_query_xml_tree

    parts = [element.get("class")]
    for child in sorted(element, key=lambda c: (c.tag, c.get("name") or "")):
        if child.tag == "rule-input" or child.get("name") in _POSITIONAL_ATTRIBUTES:
            continue
        parts.append(ElementTree.tostring(child, encoding="unicode").strip())
    return "\n".join(parts)
