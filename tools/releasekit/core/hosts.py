"""Host names as the places they reach: default ports, loopback aliases, and names that resolve to the same addresses.
What the dev/CI overlap check compares hosts by (destinations.py, stores/schemes.py)."""

import functools
import ipaddress
import socket

DEFAULT_PORTS = {"http": 80, "https": 443}


def split_host_port(host):
    """('host', port or None) of 'host[:port]' or '[v6]:port'."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") else None
    name, _, port = host.partition(":")
    return name, int(port) if port else None


def network_location(scheme, host):
    """(lower-case host, port or None when it is the scheme's default): http and https of one server share their
    data; an explicit port names another server."""
    name, port = split_host_port(host)
    return name.lower().rstrip("."), None if port in (None, DEFAULT_PORTS.get(scheme)) else port


def same_host(a, b):
    """True when two host names reach one machine: equal, both loopback, or sharing an address."""
    if a == b:
        return True
    mine, theirs = _addresses(a), _addresses(b)
    if _all_loopback(mine) and _all_loopback(theirs):
        return True
    return bool(mine & theirs)


def _all_loopback(addresses):
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


@functools.lru_cache(maxsize=64)
def _addresses(host):
    """The addresses a host name reaches; empty when it does not resolve here."""
    if host == "localhost":
        return frozenset({"127.0.0.1", "::1"})
    try:
        return frozenset({str(ipaddress.ip_address(host))})
    except ValueError:
        pass
    try:
        return frozenset(str(ipaddress.ip_address(info[4][0].split("%")[0])) for info in socket.getaddrinfo(host, None))
    except (OSError, UnicodeError, ValueError):
        return frozenset()


def is_loopback(host):
    """True for 'localhost', 127.0.0.0/8 and ::1, with or without a port."""
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1 : host.index("]")]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
