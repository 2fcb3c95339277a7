"""String formats and patterns as the Kubernetes API server checks them in CRD schemas (kube-openapi's strfmt).

A format applies to string values of a `type: string` (or int-or-string, or untyped) node; the API server drops a
format it does not know, so an unknown one checks nothing. Names compare without dashes (`date-time` is `datetime`).
`pattern` is a Go regular expression, RE2: `$` matches only at the end of the text, never before a final newline as
Python's re does, so patterns are matched with RE2 itself (google-re2), unanchored as Go's MatchString is.
"""

import base64
import datetime
import ipaddress
import re

# Regular expressions copied in meaning from kube-openapi's strfmt and govalidator; RE2 syntax (\p{S}, \p{L}).
_RE2_FORMATS = {
    "hostname": r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9-\p{S}"
                r"\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z\p{L}]){2,63})$",
    "uuid": r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
    "uuid3": r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
    "uuid4": r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
    "uuid5": r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
    "hexcolor": r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$",
    "rgbcolor": r"^rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*"
                r"(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)$",
    "byte": r"^(?:[A-Za-z0-9+\/]{4})*(?:[A-Za-z0-9+\/]{2}==|[A-Za-z0-9+\/]{3}=|[A-Za-z0-9+\/]{4})$",
    "bsonobjectid": r"^[0-9a-fA-F]{24}$",
    "k8s-short-name": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    "k8s-long-name": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}
# What each format wants, for the error message.
WANTS = {
    "datetime": "an RFC 3339 date-time, e.g. 2006-01-02T15:04:05Z",
    "date": "an RFC 3339 full-date, e.g. 2006-01-02",
    "byte": "base64-encoded data (standard alphabet, padded)",
    "duration": "a duration Go's time.ParseDuration reads (300ms, 1h30m) or its long form (5 minutes)",
    "uri": "an absolute URI or an absolute path (Go's url.ParseRequestURI)",
    "email": "an e-mail address (Go's net/mail.ParseAddress)",
    "hostname": "an RFC 1034 host name",
    "ipv4": "an IPv4 address", "ipv6": "an IPv6 address", "cidr": "a CIDR, e.g. 10.0.0.0/8",
    "mac": "a MAC address, e.g. 00:00:5e:00:53:01", "uuid": "a UUID", "uuid3": "a version 3 UUID",
    "uuid4": "a version 4 UUID", "uuid5": "a version 5 UUID", "isbn": "an ISBN-10 or ISBN-13", "isbn10": "an ISBN-10",
    "isbn13": "an ISBN-13", "creditcard": "a credit card number", "ssn": "a U.S. social security number (123-45-6789)",
    "hexcolor": "a hex color, e.g. #ffffff", "rgbcolor": "an rgb(r, g, b) color", "bsonobjectid": "a BSON ObjectId",
    "k8sshortname": "a lower-case RFC 1123 label of at most 63 characters",
    "k8slongname": "lower-case RFC 1123 labels joined by dots, at most 253 characters",
}
_ALWAYS = {"bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3", "uuid4", "uuid5",
           "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor", "byte", "password", "date",
           "duration", "datetime"}
_SINCE_1_34 = {"k8sshortname", "k8slongname"}
_DURATION_UNITS = (("ns", "nano"), ("us", "µs", "micro"), ("ms", "milli"), ("s", "sec"), ("m", "min"),
                   ("h", "hr", "hour"), ("d", "day"), ("w", "wk", "week"))
_compiled = {}


def re2_compile(pattern):
    """The compiled RE2 expression; re2.error for one Go's regexp would refuse too."""
    import re2

    if pattern not in _compiled:
        options = re2.Options()
        options.log_errors = False
        _compiled[pattern] = re2.compile(pattern, options)
    return _compiled[pattern]


def matches(pattern, text):
    """Whether text matches pattern as Go's regexp.MatchString does (RE2, unanchored)."""
    return re2_compile(pattern).search(text) is not None


def known(name, kubernetes_version):
    """The normalized format name when the API server of that version checks it, else None."""
    normalized = name.replace("-", "")
    minor = tuple(int(part) for part in re.findall(r"\d+", kubernetes_version)[:2] or (1, 30))
    if normalized in _ALWAYS or (normalized in _SINCE_1_34 and minor >= (1, 34)):
        return normalized
    return None


def valid(normalized, text):
    """Whether text is valid for a known (normalized) format."""
    check = _CHECKS.get(normalized)
    if check is not None:
        return check(text)
    pattern = next(p for name, p in _RE2_FORMATS.items() if name.replace("-", "") == normalized)
    ok = matches(pattern, text)
    if normalized == "hostname":
        ok = ok and len(text) <= 255 and all(len(label) <= 63 for label in text.split("."))
    if normalized == "k8sshortname":
        ok = ok and len(text) <= 63
    if normalized == "k8slongname":
        ok = ok and len(text) <= 253
    return ok


def is_date(text):
    try:
        datetime.datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return re.match(r"\d{4}-\d{2}-\d{2}\Z", text) is not None


def is_date_time(text):
    """strfmt.IsDateTime: a full-date, "t", then hh:mm:ss[.frac] and z or an offset (case-insensitive)."""
    parts = text.lower().split("t")
    if len(text) < 4 or len(parts) < 2 or not is_date(parts[0]):
        return False
    match = re2_compile(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$").search(parts[1])
    return bool(match) and match.group(1) <= "23" and match.group(2) <= "59" and match.group(3) <= "59"


def parse_duration(text):
    """A duration as kube-openapi reads it, in nanoseconds: Go's time.ParseDuration, else its long forms
    ("5 minutes", "1 day"). ValueError when it is neither."""
    match = re.match(r"[-+]?((?:[0-9]*(?:\.[0-9]*)?[a-zµμ]+)+|0)\Z", text)
    if match and text not in ("", "+", "-"):
        units = {"ns": 1, "us": 10 ** 3, "µs": 10 ** 3, "μs": 10 ** 3, "ms": 10 ** 6, "s": 10 ** 9, "m": 6 * 10 ** 10,
                 "h": 36 * 10 ** 11}
        total, ok = 0, True
        for number, unit in re.findall(r"([0-9]*(?:\.[0-9]*)?)([a-zµμ]+)", match.group(1)):
            if unit not in units or number in ("", "."):
                ok = False
                break
            total += float(number) * units[unit]
        if ok:
            return int(-total if text.startswith("-") else total)
    total, found = 0, False
    multipliers = (1, 10 ** 3, 10 ** 6, 10 ** 9, 6 * 10 ** 10, 36 * 10 ** 11, 864 * 10 ** 11, 6048 * 10 ** 11)
    for _, count, unit in re.findall(r"((\d+)\s*([A-Za-zµ]+))", text):
        unit = unit.strip().lower()
        for variants, multiplier in zip(_DURATION_UNITS, multipliers):
            for index, variant in enumerate(variants):
                if (index == len(variants) - 1 and unit.startswith(variant)) or variant == unit:
                    found = True
                    total += int(count) * multiplier
    if not found:
        raise ValueError("unable to parse {} as duration".format(text))
    return total


def _is_duration(text):
    try:
        parse_duration(text)
    except ValueError:
        return False
    return True


def _ip(text):
    """Go's net.ParseIP, tolerating leading zeros in IPv4 as Kubernetes' ParseIPSloppy does; None if invalid."""
    if re.match(r"\d{1,3}(\.\d{1,3}){3}\Z", text):
        octets = [int(part) for part in text.split(".")]
        return ipaddress.IPv4Address(".".join(map(str, octets))) if all(o < 256 for o in octets) else None
    if ":" in text and "%" not in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    return None


def _is_cidr(text):
    address, slash, prefix = text.partition("/")
    if not slash or not re.match(r"\d{1,3}\Z", prefix) or _ip(address) is None:
        return False
    return int(prefix) <= (32 if "." in address and ":" not in address else 128)


def _is_mac(text):
    if re.match(r"[0-9A-Fa-f]{4}(\.[0-9A-Fa-f]{4}){2,9}\Z", text):
        return len(text.split(".")) in (3, 4, 10)
    for separator in ":-":
        groups = text.split(separator)
        if len(groups) in (6, 8, 20) and all(re.match(r"[0-9A-Fa-f]{2}\Z", group) for group in groups):
            return True
    return False


def _is_request_uri(text):
    """Go's url.ParseRequestURI: an absolute URI whose rest starts with "/", or an absolute path."""
    if not text or re.search(r"[\x00-\x1f\x7f]", text) or re.search(r"%(?![0-9A-Fa-f]{2})", text):
        return False
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", text)
    rest = text[scheme.end():] if scheme else text
    if not rest.startswith("/"):
        return False
    if scheme and rest.startswith("//"):
        authority = rest[2:].split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
        host, _, port = authority.rpartition(":") if not authority.endswith("]") else (authority, "", "")
        if " " in authority or (host and port and not port.isdigit()) or (
                authority.startswith("[") and _ip(authority.split("]")[0][1:]) is None):
            return False
    return True


def _is_email(text):
    """An approximation of Go's net/mail.ParseAddress: an addr-spec, or a display name and <addr-spec>."""
    match = re.match(r'(?:(?:"[^"]*"|[^<>"]*)\s*<([^<>]+)>|([^<>\s]+))\Z', text.strip())
    address = match and (match.group(1) or match.group(2))
    return bool(address) and re.match(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\Z",
                                      address) is not None and ".." not in address.split("@")[0]


def _is_isbn(text, version):
    digits = re.sub(r"[\s-]+", "", text)
    if version == 10 and re.match(r"(?:[0-9]{9}X|[0-9]{10})\Z", digits):
        check_digit = 10 if digits[9] == "X" else int(digits[9])
        total = sum((i + 1) * int(d) for i, d in enumerate(digits[:9])) + 10 * check_digit
        return total % 11 == 0
    if version == 13 and re.match(r"[0-9]{13}\Z", digits):
        total = sum((1, 3)[i % 2] * int(d) for i, d in enumerate(digits[:12]))
        return int(digits[12]) == (10 - total % 10) % 10
    return False


def _is_credit_card(text):
    digits = re.sub(r"[^0-9]+", "", text)
    if not re2_compile(r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|"
                       r"3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35\d{3})\d{11})$").search(digits):
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value >= 10 else value
    return total % 10 == 0


_CHECKS = {
    "date": is_date, "datetime": is_date_time, "duration": _is_duration, "password": lambda text: True,
    "ipv4": lambda text: _ip(text) is not None and "." in text,
    "ipv6": lambda text: _ip(text) is not None and ":" in text,
    "cidr": _is_cidr, "mac": _is_mac, "uri": _is_request_uri, "email": _is_email,
    "isbn": lambda text: _is_isbn(text, 10) or _is_isbn(text, 13), "isbn10": lambda text: _is_isbn(text, 10),
    "isbn13": lambda text: _is_isbn(text, 13), "creditcard": _is_credit_card,
    "ssn": lambda text: len(text) == 11 and re.match(r"\d{3}[- ]?\d{2}[- ]?\d{4}\Z", text) is not None,
}


def decode_byte(text):
    """The bytes of a `format: byte` value (standard base64)."""
    return base64.b64decode(text, validate=True)
