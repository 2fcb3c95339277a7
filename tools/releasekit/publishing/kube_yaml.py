"""YAML read as Kubernetes reads it, with the line and column of every field.

kubectl, the API server and the CD tools built on them turn YAML into JSON with sigs.k8s.io/yaml: go-yaml v2 reads
the YAML (YAML 1.1 scalars, into untyped values), and the result is converted to JSON. Where that differs from
PyYAML's resolver, this reader follows Kubernetes:
- a timestamp stays the text written: `day: 2024-01-01` is the string "2024-01-01" (PyYAML: a date);
- `y`, `Y`, `n` and `N` are booleans, like yes/no/on/off (PyYAML: only the long forms are);
- `1e3` and `08` are numbers and `0o17` is 15 (PyYAML: strings); `1:30` is a string (PyYAML: the sexagesimal 90);
- keys become the strings JSON needs (`1: a` is the key "1", `true: a` the key "true"); a null key is an error;
- a float without a fraction is an integer, as the JSON round trip makes it; NaN and infinities are errors.
The composed nodes carry the same tags, so the check and the pinning agree on which values are strings.
"""

import base64
import re

from releasekit.core.errors import DeployInputError

STR, INT, FLOAT, BOOL, NULL, MERGE = ("tag:yaml.org,2002:" + name for name in ("str", "int", "float", "bool", "null",
                                                                                "merge"))
_WORDS = dict([(word, (BOOL, True)) for word in "y Y yes Yes YES true True TRUE on On ON".split()] +
              [(word, (BOOL, False)) for word in "n N no No NO false False FALSE off Off OFF".split()] +
              [(word, (NULL, None)) for word in ("", "~", "null", "Null", "NULL")] +
              [(word, (FLOAT, float("nan"))) for word in (".nan", ".NaN", ".NAN")] +
              [(sign + word, (FLOAT, float(sign + "inf")))
               for sign in ("", "+", "-") for word in (".inf", ".Inf", ".INF")]
              + [("<<", (MERGE, "<<"))])
# Go's strconv.ParseInt(s, 0, 64), after go-yaml drops underscores: 0x, 0o and 0b prefixes, and C-style octal.
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)\Z")
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")  # go-yaml's yamlStyleFloat


def _go_int(plain):
    """The integer go-yaml v2 reads (int64, or uint64 without a sign), or None."""
    match = _GO_INT.match(plain)
    if not match:
        return None
    sign, digits = match.groups()
    if digits[:2].lower() in ("0x", "0o", "0b"):
        number = int(digits[2:], {"x": 16, "o": 8, "b": 2}[digits[1].lower()])
    else:
        number = int(digits, 8 if digits.startswith("0") else 10)
    number = -number if sign == "-" else number
    return number if -2 ** 63 <= number < 2 ** 63 or (not sign and number < 2 ** 64) else None


def resolve_plain(text):
    """(tag, value) of a plain scalar, as go-yaml v2 resolves it."""
    if text in _WORDS:
        return _WORDS[text]
    if text[0] == "." and re.match(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?\Z", text):
        return FLOAT, float(text)
    if text[0] in "+-0123456789":  # timestamps fall through to strings: go-yaml v2 keeps their text
        plain = text.replace("_", "")
        number = _go_int(plain)
        if number is not None:
            return INT, number
        if _GO_FLOAT.match(plain) and abs(float(plain)) != float("inf"):  # out of range: ParseFloat fails
            return FLOAT, float(plain)
    return STR, text


def _loader_class(fast):
    import yaml

    class KubernetesResolver(yaml.resolver.BaseResolver):
        def resolve(self, kind, value, implicit):
            if kind is yaml.ScalarNode and implicit[0]:
                return resolve_plain(value)[0]
            return super().resolve(kind, value, implicit)

    if fast and getattr(yaml, "__with_libyaml__", False):
        class FastLoader(yaml.cyaml.CParser, KubernetesResolver):
            def __init__(self, stream):
                yaml.cyaml.CParser.__init__(self, stream)
                KubernetesResolver.__init__(self)
        return FastLoader

    class Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer,
                 KubernetesResolver):
        def __init__(self, stream):
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            KubernetesResolver.__init__(self)
    return Loader


_LOADERS = {}


def compose(text, display, fast=False, attribute="manifests"):
    """The composed, non-empty documents of a YAML text: [node]. Scalar tags are the ones Kubernetes resolves.
    fast: with libyaml, for large files that are only read (CRDs); the pure-Python parser's marks are the ones
    pinning edits the text by. attribute: the rule attribute the file came from, for errors."""
    import yaml

    if fast not in _LOADERS:
        _LOADERS[fast] = _loader_class(fast)
    loader = _LOADERS[fast](text)
    nodes = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if not (isinstance(node, yaml.ScalarNode) and node.tag == NULL):  # kubectl skips empty documents
                nodes.append(node)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = "{}:{}:{}".format(display, mark.line + 1, mark.column + 1) if mark else display
        raise DeployInputError("{}: attribute {}: not valid YAML ({}).".format(
            where, attribute, getattr(error, "problem", None) or error)) from None
    finally:
        loader.dispose()
    return nodes


class Document:
    """One YAML document as JSON (value) with where each field was written: positions maps a path (a tuple of keys and
    list indexes) to the 1-based (line, column) of its key, or of the item in a list."""

    def __init__(self, node, display, attribute="manifests"):
        self.node, self.display, self.attribute = node, display, attribute
        self.line = node.start_mark.line + 1
        self.positions = {(): (self.line, node.start_mark.column + 1)}
        self._converted = 0
        self.value = self._convert(node, (), ())

    def where(self, path):
        """(line, column) of path, or of the nearest part of it that was written (a default was not)."""
        path = tuple(path)
        while path not in self.positions:
            path = path[:-1]
        return self.positions[path]

    def _fail(self, node, message):
        raise DeployInputError("{}:{}:{}: attribute {}: {}".format(
            self.display, node.start_mark.line + 1, node.start_mark.column + 1, self.attribute, message))

    def _convert(self, node, path, open_nodes):
        import yaml

        self._converted += 1
        if self._converted > 1000000 or id(node) in open_nodes:
            self._fail(node, "an alias expands without end (or too far); Kubernetes refuses such YAML.")
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        inside = open_nodes + (id(node),)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, child in enumerate(node.value):
                self.positions[path + (index,)] = (child.start_mark.line + 1, child.start_mark.column + 1)
                items.append(self._convert(child, path + (index,), inside))
            return items
        mapping = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE:
                self._merge(value_node, path, inside, mapping)
                continue
            key = self._key(key_node)
            self.positions[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            mapping[key] = self._convert(value_node, path + (key,), inside)
        return mapping

    def _merge(self, node, path, open_nodes, mapping):
        """`<<: *base` as go-yaml v2 merges: into the mapping as it stands; of a list, earlier mappings win."""
        import yaml

        sources = list(reversed(node.value)) if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self._fail(source, "a merge key (<<) takes a mapping or a list of mappings.")
            mapping.update(self._convert(source, path, open_nodes))

    def _key(self, node):
        import yaml

        if not isinstance(node, yaml.ScalarNode):
            self._fail(node, "a mapping key must be a scalar; JSON (and so Kubernetes) has no other keys.")
        key = self._scalar(node)
        if key is None:
            self._fail(node, "a null mapping key; JSON (and so Kubernetes) has none. Quote it, or remove it.")
        if isinstance(key, bool):
            return "true" if key else "false"
        if isinstance(key, float):
            return _go_float32_text(key)
        return str(key)

    def _scalar(self, node):
        tag, text = node.tag, node.value
        if tag == "tag:yaml.org,2002:binary":
            try:
                return base64.b64decode("".join(text.split()), validate=True).decode("utf-8", "replace")
            except ValueError:
                self._fail(node, "!!binary value contains invalid base64 data.")
        if tag not in (INT, FLOAT, BOOL, NULL):
            return text  # strings, timestamps (their text) and unknown tags, as go-yaml v2 reads them
        resolved, value = resolve_plain(text)
        if tag == FLOAT and resolved == INT:
            resolved, value = FLOAT, float(value)
        if resolved != tag:
            self._fail(node, "cannot read `{}` as !!{}.".format(text, tag.rpartition(":")[2]))
        if resolved == FLOAT:
            if value != value or abs(value) == float("inf"):
                self._fail(node, "`{}` has no JSON form (NaN and infinities are not JSON numbers), so Kubernetes "
                                 "refuses it. Quote it if a string is meant.".format(text))
            if value == int(value) and abs(value) < 1e21 and -2 ** 63 <= value < 2 ** 63:
                return int(value)  # JSON writes 3.0 as 3, which Kubernetes reads back as an integer
        return value


def _go_float32_text(number):
    """A float key as sigs.k8s.io/yaml writes it: the shortest text of its float32 value."""
    import struct

    single = struct.unpack("f", struct.pack("f", number))[0]
    for digits in range(1, 10):
        text = "%.*g" % (digits, single)
        if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
            return text
    return repr(single)


def read(text, display, fast=False, attribute="manifests"):
    """[Document] of a multi-document YAML text, empty documents left out."""
    return [Document(node, display, attribute) for node in compose(text, display, fast, attribute)]


def field_path(path):
    """A path as Kubernetes prints it: spec.containers[0].image, metadata.annotations[example.com/owner]."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += "[{}]".format(part)
        elif re.match(r"[A-Za-z_$][A-Za-z0-9_$-]*\Z", part):
            text += ("." if text else "") + part
        else:
            text += "[{}]".format(part)
    return text or "<root>"
