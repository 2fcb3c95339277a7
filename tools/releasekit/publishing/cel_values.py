"""Values for CEL rules as the API server binds them: `self` built from a custom resource and its structural schema,
and the Kubernetes library's own types (Quantity, URL, IP, CIDR) with the behaviour of their Go originals.

Binding follows the API server (apiserver/pkg/cel/common): an integer field is an int, a number field a double even
when written 3; a string of format date or date-time is a timestamp, of duration a duration, of byte bytes; an
int-or-string is whichever it holds; property names are escaped (`x-y` is `x__dash__y`, `namespace` is
`__namespace__`, a name that cannot be escaped is not visible); a resource's metadata shows only name and generateName.
"""

import datetime
import ipaddress
import re
import urllib.parse
from fractions import Fraction

from releasekit.publishing import kube_formats

_RESERVED = {"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
             "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}


def escape(name):
    """A property name as CEL sees it (apiserver/pkg/cel.Escape), or None when it cannot be written in CEL."""
    if not name or name[0].isdigit():
        return None
    if name in _RESERVED:
        return "__{}__".format(name)
    if re.search(r"[^a-zA-Z0-9_./-]", name):
        return None
    return re.sub(r"__|[./-]", lambda m: {"__": "__underscores__", ".": "__dot__", "-": "__dash__",
                                          "/": "__slash__"}[m.group(0)], name)


def cel_error(message):
    from celpy.evaluation import CELEvalError

    return CELEvalError(message, ValueError, (message,))


def to_cel(value, schema, resource=False):
    """value (JSON) as CEL sees it at a node of schema; resource: the node is a resource (the root, or embedded)."""
    from celpy import celtypes, json_to_cel

    schema = schema or {}
    if value is None:
        return None
    if schema.get("x-kubernetes-int-or-string"):
        return celtypes.StringType(value) if isinstance(value, str) else celtypes.IntType(value)
    kind = schema.get("type")
    if kind == "object" and isinstance(value, dict):
        properties = dict(schema.get("properties") or {})
        if resource or schema.get("x-kubernetes-embedded-resource"):
            properties.update(apiVersion={"type": "string"}, kind={"type": "string"}, metadata={
                "type": "object", "properties": {"name": {"type": "string"}, "generateName": {"type": "string"}}})
        if properties:
            fields = {}
            for key, item in value.items():
                name = escape(key)
                if key in properties and name is not None:
                    fields[celtypes.StringType(name)] = to_cel(item, properties[key])
            return celtypes.MapType(fields)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return celtypes.MapType({celtypes.StringType(k): to_cel(v, extra) for k, v in value.items()})
        return json_to_cel(value)
    if kind == "array" and isinstance(value, list):
        return celtypes.ListType([to_cel(item, schema.get("items")) for item in value])
    if kind == "string" and isinstance(value, str):
        return _formatted(value, schema.get("format"))
    if kind == "number" and not isinstance(value, bool) and isinstance(value, (int, float)):
        return celtypes.DoubleType(value)
    return json_to_cel(value)


def _formatted(text, string_format):
    from celpy import celtypes

    try:
        if string_format == "duration":
            return duration(kube_formats.parse_duration(text))
        if string_format == "date":
            if not kube_formats.is_date(text):
                raise ValueError("not a full-date")
            return celtypes.TimestampType(datetime.datetime.strptime(text, "%Y-%m-%d").replace(
                tzinfo=datetime.timezone.utc))
        if string_format == "date-time":
            if not kube_formats.is_date_time(text):
                raise ValueError("not an RFC 3339 date-time")
            return celtypes.TimestampType(datetime.datetime.fromisoformat(re.sub("[zZ]$", "+00:00", text.replace(
                "t", "T"))))
        if string_format == "byte":
            return celtypes.BytesType(kube_formats.decode_byte(text))
    except ValueError as error:  # the schema check reports the value; a rule reading it fails, as in the API server
        return cel_error("invalid {} formatted string {}: {}".format(string_format, text, error))
    return celtypes.StringType(text)


def duration(nanoseconds):
    """A CEL duration (microsecond precision: the CEL implementation keeps a timedelta)."""
    from celpy import celtypes

    return celtypes.DurationType(datetime.timedelta(microseconds=nanoseconds / 1000))


class Quantity:
    """resource.Quantity: 1.5Gi, 500m, 1e3. Kept as an exact fraction."""

    _SUFFIXES = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
                 "n": Fraction(1, 10 ** 9), "u": Fraction(1, 10 ** 6), "m": Fraction(1, 1000), "": 1, "k": 10 ** 3,
                 "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18}

    def __init__(self, value):
        self.value = value

    @classmethod
    def parse(cls, text):
        match = re.match(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
                         r"(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?\Z", text)
        if not match:
            raise ValueError("quantities must match the regular expression "
                             "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
        number, suffix = match.group(1), match.group(2) or ""
        scale = Fraction(10) ** int(suffix[1:]) if suffix[:1] in ("e", "E") else cls._SUFFIXES[suffix]
        return cls(Fraction(number) * scale)

    def __eq__(self, other):
        return isinstance(other, Quantity) and self.value == other.value

    def __hash__(self):
        return hash(self.value)


class URL:
    """A URL as Go's url.ParseRequestURI reads it: an absolute URI, or an absolute path."""

    def __init__(self, text):
        if not kube_formats.valid("uri", text):
            raise ValueError("URL parse error during conversion from string: {!r} is not an absolute URI or an "
                             "absolute path".format(text))
        self.text = text
        self.parts = urllib.parse.urlsplit(text, allow_fragments=False)

    def __eq__(self, other):
        return isinstance(other, URL) and self.text == other.text

    def __hash__(self):
        return hash(self.text)

    def host(self):
        return self.parts.netloc.rpartition("@")[2]

    def hostname(self):
        host = self.host()
        if host.startswith("["):
            return host[1:host.index("]")]
        return host.rpartition(":")[0] if ":" in host else host

    def port(self):
        host = self.host()
        tail = host[host.index("]") + 1:] if host.startswith("[") else host
        return tail.rpartition(":")[2] if ":" in tail else ""


class IP:
    """netip.Addr as the Kubernetes IP library takes it: no zone, no IPv4-mapped IPv6, no leading zeros."""

    def __init__(self, text):
        if "%" in text:
            raise ValueError("IP address {!r} with zone value is not allowed".format(text))
        try:
            self.address = ipaddress.ip_address(text)
        except ValueError as error:
            raise ValueError("IP Address {!r} parse error during conversion from string: {}".format(text, error)) \
                from None
        if self.address.version == 6 and self.address.ipv4_mapped is not None:
            raise ValueError("IPv4-mapped IPv6 address {!r} is not allowed".format(text))

    def __eq__(self, other):
        return isinstance(other, IP) and self.address == other.address

    def __hash__(self):
        return hash(self.address)

    def __str__(self):
        return str(self.address)


class CIDR:
    """netip.Prefix: an address and a prefix length; masked() clears the host bits."""

    def __init__(self, text):
        address, slash, length = text.partition("/")
        if not slash or not re.match(r"[0-9]+\Z", length):
            raise ValueError("network address parse error during conversion from string: {!r}".format(text))
        self.ip = IP(address)
        self.length = int(length)
        if self.length > self.ip.address.max_prefixlen:
            raise ValueError("network address parse error during conversion from string: {!r}".format(text))
        self.network = ipaddress.ip_network("{}/{}".format(self.ip.address, self.length), strict=False)

    def __eq__(self, other):
        return isinstance(other, CIDR) and (self.ip, self.length) == (other.ip, other.length)

    def __hash__(self):
        return hash((self.ip, self.length))

    def __str__(self):
        return "{}/{}".format(self.ip, self.length)
