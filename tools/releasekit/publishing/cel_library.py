"""The Kubernetes CEL library for rules evaluated offline, on top of cel-python's standard CEL.

What the API server adds to CEL (apiserver/pkg/cel/library and the cel-go extensions it enables): the strings
extension (charAt, indexOf, lastIndexOf, lowerAscii, upperAscii, replace, split, substring, trim, join, strings.quote),
lists (isSorted, sum, min, max, indexOf, lastIndexOf), regex (find, findAll), sets (sets.contains, sets.equivalent,
sets.intersects), URLs (url, isURL, getScheme, getHost, getHostname, getPort, getEscapedPath, getQuery), quantity
(quantity, isQuantity, compareTo, isGreaterThan, isLessThan, add, sub, asInteger, isInteger, asApproximateFloat, sign),
IP and CIDR (ip, isIP, family, isUnspecified, isLoopback, isLinkLocalMulticast, isLinkLocalUnicast, isGlobalUnicast,
cidr, isCIDR, containsIP, containsCIDR, masked, prefixLength), optionals (optional.of, optional.none,
optional.ofNonZeroValue, hasValue, value, orValue, or), cross-type numeric comparison and heterogeneous equality
(1 == 1.0 is true, 1 == 'a' is false), and Go's duration syntax. FUNCTIONS maps each name to its implementation;
NAMESPACES are the variables that carry namespaced functions (sets.contains).
"""

import ipaddress
import json
import urllib.parse
from fractions import Fraction

from releasekit.publishing import cel_values, kube_formats
from releasekit.publishing.cel_values import CIDR, IP, URL, Quantity, cel_error


class Namespace:
    def __init__(self, name):
        self.name = name


class Optional:
    """optional_type: a value, or none."""

    def __init__(self, value=None, present=False):
        self.value, self.present = value, present

    def __eq__(self, other):
        return isinstance(other, Optional) and (self.present, self.value) == (other.present, other.value)


NAMESPACES = {name: Namespace(name) for name in ("optional", "sets", "strings")}


def _types():
    from celpy import celtypes

    return celtypes


def _number(value):
    t = _types()
    return isinstance(value, (int, float)) and not isinstance(value, (bool, t.BoolType))


def _kind(value):
    t = _types()
    for kind in (t.BoolType, t.StringType, t.BytesType, t.ListType, t.MapType, t.TimestampType, t.DurationType):
        if isinstance(value, kind):
            return kind
    return type(value)


def _native(number):
    return float(number) if isinstance(number, float) else int(number)


def _equal(left, right):
    """CEL equality as cel-go has it since heterogeneous equality: numbers compare by value (1 == 1.0), other kinds
    never equal each other (1 == 'a' is false), lists and maps element by element."""
    t = _types()
    if _number(left) and _number(right):
        return _native(left) == _native(right)  # Python compares int with float exactly
    if left is None or right is None or _kind(left) is not _kind(right):
        return left is None and right is None
    if isinstance(left, t.ListType):
        return len(left) == len(right) and all(_equal(a, b) for a, b in zip(left, right))
    if isinstance(left, t.MapType):
        return len(left) == len(right) and all(any(_equal(k, other) and _equal(v, right[other]) for other in right)
                                               for k, v in left.items())
    return left == right


def _errors_first(function):
    from celpy.evaluation import CELEvalError

    def checked(*args):
        for arg in args:
            if isinstance(arg, CELEvalError):
                return arg
        return function(*args)
    return checked


def _compare(python_operator, base):
    def compare(left, right):
        if _number(left) and _number(right):  # cross-type numeric comparison: 1 < 1.5
            return _types().BoolType(python_operator(_native(left), _native(right)))
        if isinstance(left, Quantity) or isinstance(right, Quantity):
            return cel_error("no such overload")
        return base(left, right)
    return _errors_first(compare)


def _code_points(text, start, end=None):
    if start < 0 or start > len(text) or (end is not None and (end < start or end > len(text))):
        return cel_error("index out of range: {}".format(end if end is not None and start <= len(text) else start))
    return _types().StringType(text[start:end])


def _index_of(target, item, offset=0, last=False):
    t = _types()
    if isinstance(target, t.StringType):
        if offset < 0 or offset > len(target):
            return cel_error("index out of range: {}".format(offset))
        found = target.rfind(item, 0, offset + len(item)) if last and offset else (
            target.rfind(item) if last else target.find(item, offset))
        return t.IntType(found)
    positions = [i for i, element in enumerate(target) if _equal(element, item)]
    return t.IntType((positions[-1] if last else positions[0]) if positions else -1)


def _split(text, separator, limit=-1):
    t = _types()
    if limit == 0:
        return t.ListType([])
    parts = list(text) if separator == "" else text.split(separator, limit - 1 if limit > 0 else -1)
    if separator == "" and limit > 0 and len(parts) > limit:
        parts = parts[:limit - 1] + ["".join(parts[limit - 1:])]
    return t.ListType([t.StringType(part) for part in parts])


def _replace(text, old, new, limit=-1):
    return _types().StringType(text.replace(old, new, limit if limit >= 0 else -1))


def _join(items, separator=""):
    return _types().StringType(separator.join(items))


def _is_sorted(items):
    greater = _compare(lambda a, b: a > b, _base("_>_"))
    for left, right in zip(items, items[1:]):
        answer = greater(left, right)
        if not isinstance(answer, int):
            return answer  # an error: items that do not compare
        if answer:
            return _types().BoolType(False)
    return _types().BoolType(True)


def _sum(items):
    t = _types()
    if not items:
        return t.IntType(0)
    total = items[0]
    for item in items[1:]:
        total = total + item
    return t.DoubleType(total) if isinstance(total, float) and not isinstance(total, t.DoubleType) else total


def _extreme(items, pick):
    if not items:
        return cel_error("{} called on empty list".format(pick.__name__))
    return pick(items)


def _find(text, expression, limit=None):
    t = _types()
    try:
        pattern = kube_formats.re2_compile(expression)
    except Exception as error:  # re2.error
        return cel_error("invalid regex {!r}: {}".format(expression, error))
    if limit is None:
        match = pattern.search(text)
        return t.StringType(match.group(0) if match else "")
    found = [t.StringType(m.group(0)) for m in pattern.finditer(text)]
    return t.ListType(found if limit < 0 else found[:limit])


def _convert(factory):
    def convert(text):
        try:
            return factory(text)
        except ValueError as error:
            return cel_error(str(error))
    return convert


def _is(factory):
    def check(text):
        try:
            factory(text)
        except ValueError:
            return _types().BoolType(False)
        return _types().BoolType(True)
    return check


def _quantity_operand(value):
    return value.value if isinstance(value, Quantity) else Fraction(int(value))


def _as_integer(quantity):
    value = quantity.value
    if value.denominator != 1 or not -2 ** 63 <= value < 2 ** 63:
        return cel_error("cannot convert value to integer")
    return _types().IntType(int(value))


def _query(url):
    t = _types()
    values = {}
    for key, value in urllib.parse.parse_qsl(url.parts.query, keep_blank_values=True):
        values.setdefault(key, []).append(value)
    return t.MapType({t.StringType(k): t.ListType([t.StringType(v) for v in vs]) for k, vs in values.items()})


def _contains_ip(cidr, address):
    address = address if isinstance(address, IP) else IP(address)
    return _types().BoolType(address.address in cidr.network)


def _contains_cidr(cidr, other):
    other = other if isinstance(other, CIDR) else CIDR(other)
    return _types().BoolType(other.network.version == cidr.network.version and other.network.subnet_of(cidr.network)
                             and other.length >= cidr.length)


def _ip(target):
    if isinstance(target, CIDR):
        return target.ip
    return _convert(IP)(target)


def _masked(cidr):
    return CIDR("{}/{}".format(cidr.network.network_address, cidr.length))


def _string(value, base):
    if isinstance(value, (IP, CIDR)):
        return _types().StringType(str(value))
    return base(value)


def _duration(text):
    if not isinstance(text, str):
        return cel_error("no such overload")
    try:
        return cel_values.duration(kube_formats.parse_duration(text))
    except ValueError:
        return cel_error("invalid duration {!r}".format(text))


def _sets(function):
    """sets.*(left, right): function(whether each of left is in right, whether each of right is in left)."""
    def on_namespace(namespace, left, right):
        return _types().BoolType(function([any(_equal(a, b) for b in right) for a in left],
                                          [any(_equal(b, a) for a in left) for b in right]))
    return on_namespace


def _dispatch(name, base, **by_namespace):
    """A function whose first argument picks its meaning: a namespace (sets.contains), else the base function."""
    def call(target, *args):
        if isinstance(target, Namespace):
            if target.name not in by_namespace:
                return cel_error("undeclared reference to '{}.{}'".format(target.name, name))
            return by_namespace[target.name](target, *args)
        return base(target, *args)
    return call


def _base(name):
    from celpy.evaluation import base_functions

    return base_functions[name]


def _functions():
    """Every function of the Kubernetes CEL library, and the standard operators it overloads, by name."""
    import operator

    t = _types()
    table = {
        "_==_": _errors_first(lambda a, b: t.BoolType(_equal(a, b))),
        "_!=_": _errors_first(lambda a, b: t.BoolType(not _equal(a, b))),
        "_<_": _compare(operator.lt, _base("_<_")), "_<=_": _compare(operator.le, _base("_<=_")),
        "_>_": _compare(operator.gt, _base("_>_")), "_>=_": _compare(operator.ge, _base("_>=_")),
        "string": lambda value: _string(value, _base("string")),
        "duration": _duration,
    }
    for part in (_string_functions(t), _url_functions(t), _quantity_functions(t), _network_functions(t),
                 _optional_functions(t), _set_functions()):
        table.update(part)
    return {name: function if name.startswith("_") else _errors_first(function) for name, function in table.items()}


def _string_functions(t):
    def quote(namespace, text):  # strings.quote
        return t.StringType(json.dumps(text, ensure_ascii=False))

    return {
        "charAt": lambda s, i: _code_points(s, i, i + 1) if i < len(s) else _code_points(s, i, i),
        "indexOf": lambda target, item, offset=0: _index_of(target, item, offset),
        "lastIndexOf": lambda target, item, offset=None: _index_of(target, item, offset or 0, last=True),
        "lowerAscii": lambda s: t.StringType("".join(c.lower() if c.isascii() else c for c in s)),
        "upperAscii": lambda s: t.StringType("".join(c.upper() if c.isascii() else c for c in s)),
        "replace": _replace, "split": _split, "substring": lambda s, start, end=None: _code_points(s, start, end),
        "trim": lambda s: t.StringType(s.strip()), "join": _join,
        "quote": quote,
        "isSorted": _is_sorted, "sum": _sum, "max": lambda items: _extreme(items, max),
        "find": lambda text, expression: _find(text, expression),
        "findAll": lambda text, expression, limit=-1: _find(text, expression, limit),
    }


def _url_functions(t):
    return {
        "url": _convert(URL), "isURL": _is(URL),
        "getScheme": lambda url: t.StringType(url.parts.scheme), "getHost": lambda url: t.StringType(url.host()),
        "getHostname": lambda url: t.StringType(url.hostname()), "getPort": lambda url: t.StringType(url.port()),
        "getEscapedPath": lambda url: t.StringType(urllib.parse.quote(urllib.parse.unquote(url.parts.path), safe="/")),
        "getQuery": _query,
    }


def _quantity_functions(t):
    return {
        "quantity": _convert(Quantity.parse), "isQuantity": _is(Quantity.parse),
        "compareTo": lambda q, other: t.IntType((q.value > other.value) - (q.value < other.value)),
        "isGreaterThan": lambda q, other: t.BoolType(q.value > other.value),
        "isLessThan": lambda q, other: t.BoolType(q.value < other.value),
        "add": lambda q, other: Quantity(q.value + _quantity_operand(other)),
        "sub": lambda q, other: Quantity(q.value - _quantity_operand(other)),
        "asInteger": _as_integer,
        "isInteger": lambda q: t.BoolType(q.value.denominator == 1 and -2 ** 63 <= q.value < 2 ** 63),
        "asApproximateFloat": lambda q: t.DoubleType(float(q.value)),
        "sign": lambda q: t.IntType((q.value > 0) - (q.value < 0)),
    }


def _network_functions(t):
    return {
        "ip": _ip, "isIP": _is(IP), "family": lambda ip: t.IntType(ip.address.version),
        "isUnspecified": lambda ip: t.BoolType(ip.address.is_unspecified),
        "isLoopback": lambda ip: t.BoolType(ip.address.is_loopback),
        "isLinkLocalMulticast": lambda ip: t.BoolType(ip.address in ipaddress.ip_network(
            "224.0.0.0/24" if ip.address.version == 4 else "ff02::/16")),
        "isLinkLocalUnicast": lambda ip: t.BoolType(ip.address.is_link_local and not ip.address.is_multicast),
        "isGlobalUnicast": lambda ip: t.BoolType(not (ip.address.is_unspecified or ip.address.is_loopback or
                                                      ip.address.is_multicast or ip.address.is_link_local or
                                                      (ip.address.version == 4 and ip.address == ipaddress.ip_address(
                                                          "255.255.255.255")))),
        "cidr": _convert(CIDR), "isCIDR": _is(CIDR), "containsIP": _contains_ip, "containsCIDR": _contains_cidr,
        "masked": _masked, "prefixLength": lambda cidr: t.IntType(cidr.length),
    }


def _optional_functions(t):
    return {
        "of": lambda namespace, value: Optional(value, True),
        "none": lambda namespace: Optional(),
        "ofNonZeroValue": lambda namespace, value: Optional(value, value not in (None, 0, "", b"", False) and not (
            isinstance(value, (list, dict)) and not value)),
        "hasValue": lambda opt: t.BoolType(opt.present),
        "value": lambda opt: opt.value if opt.present else cel_error("optional.none() dereference"),
        "orValue": lambda opt, other: opt.value if opt.present else other,
        "or": lambda opt, other: opt if opt.present else other,
    }


def _set_functions():
    def only_sets(*args):
        return cel_error("no such overload")

    return {
        "contains": _dispatch("contains", _base("contains"), sets=_sets(lambda _, found: all(found))),
        "equivalent": _dispatch("equivalent", only_sets, sets=_sets(lambda a, b: all(a) and all(b))),
        "intersects": _dispatch("intersects", only_sets, sets=_sets(lambda found, _: any(found))),
    }


_FUNCTIONS = []


def functions():
    """{name: implementation} of every function the rules may call beyond cel-python's own."""
    if not _FUNCTIONS:
        _FUNCTIONS.append(_functions())
    return _FUNCTIONS[0]


# Names cel-python evaluates itself: its standard functions and the macros.
BUILTIN = {"has", "all", "exists", "exists_one", "map", "filter", "size", "contains", "startsWith", "endsWith",
           "matches", "int", "uint", "double", "string", "bytes", "bool", "dyn", "type", "timestamp", "duration",
           "min", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getFullYear", "getMonth", "getHours",
           "getMilliseconds", "getMinutes", "getSeconds", "list", "null_type"}
