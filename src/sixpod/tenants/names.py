"""Validation of tenant names: app names, hostnames (IDNA 2008, wildcards), endpoints."""

from __future__ import annotations

import re
from ipaddress import IPv6Address

import idna

from sixpod import addr
from sixpod.tenants.errors import InvalidInput

_APP = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_LDH = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
MAX_HOSTNAME = 253


def is_app_name(text: object) -> bool:
    """Whether ``text`` can name an app: one lower-case DNS label (``<app>.<route zone>``)."""
    return isinstance(text, str) and _APP.fullmatch(text) is not None


def app_name(text: str) -> str:
    """A new app's name: one DNS label (Razor serves ``<app>.<route zone>``), lower case,
    and not a reserved LDH label (RFC 5891 §4.2.3.1: ``--`` in positions 3-4 is kept for
    IDNA's ``xn--`` and future prefixes; ``xn--zz`` would be read as a broken A-label).

    Only creation applies the reserved-LDH rule: an app stored before it still reads,
    updates and deletes by name (:func:`is_app_name`)."""
    if not is_app_name(text):
        raise InvalidInput(
            f"app name {text!r}: expected 1-63 lower-case letters, digits and inner hyphens"
        )
    if text[2:4] == "--":
        raise InvalidInput(
            f"app name {text!r}: '--' in positions 3-4 is reserved in DNS labels "
            "(RFC 5891, 'xn--' is IDNA's); use another name, such as "
            f"{text[:2] + '-' + text[4:]!r}"
        )
    return text


def hostname(text: str) -> str:
    """The canonical form of a customer hostname: lower-case A-labels, no trailing dot.

    Unicode names are converted with IDNA 2008 (UTS 46 mapping). A wildcard is allowed only
    as the whole leftmost label (``*.example.com``) and covers one or more labels below it,
    never the bare parent; it needs at least two labels after it.
    """
    if not isinstance(text, str) or not text:
        raise InvalidInput("hostname: empty")
    name = text[:-1] if text.endswith(".") else text
    wildcard = name.startswith("*.")
    rest = name[2:] if wildcard else name
    if "*" in rest:
        raise InvalidInput(f"hostname {text!r}: '*' is allowed only as the whole leftmost label")
    try:
        ascii_name = idna.encode(rest, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as e:
        raise InvalidInput(f"hostname {text!r}: {e}") from None
    labels = ascii_name.split(".")
    for label in labels:
        if not _LDH.fullmatch(label):
            raise InvalidInput(f"hostname {text!r}: label {label!r} is not a valid DNS label")
    if len(labels) < 2:
        raise InvalidInput(f"hostname {text!r}: needs at least two labels")
    if labels[-1].isdigit():
        raise InvalidInput(f"hostname {text!r}: the top-level label cannot be all digits")
    result = ("*." if wildcard else "") + ascii_name
    if len(result) > MAX_HOSTNAME:
        raise InvalidInput(f"hostname {text!r}: longer than {MAX_HOSTNAME} characters")
    return result


def container_address(text: str) -> IPv6Address:
    """A container's address: IPv6 text without zone, canonicalised by the address module."""
    return container_ip(ipv6_address(text))


def ipv6_address(text: str) -> IPv6Address:
    """An endpoint's address text as IPv6 (containers are IPv6-only), without zone."""
    try:
        ip = addr.parse_ip(text)
    except addr.AddressError as e:
        raise InvalidInput(f"endpoint address: {e}") from None
    if not isinstance(ip, IPv6Address):
        raise InvalidInput(f"endpoint address {text!r}: containers are IPv6-only")
    return ip


def container_ip(ip: IPv6Address) -> IPv6Address:
    """``ip`` if a container may have it: neither the unspecified address nor its /64's
    Subnet-Router anycast address."""
    if ip.is_unspecified:
        raise InvalidInput("endpoint address ::: the unspecified address, never a container's")
    if addr.is_subnet_router_anycast(ip, prefixlen=64):
        raise InvalidInput(
            f"endpoint address {addr.format_ip(ip)}: the Subnet-Router anycast address of its "
            "/64 (all-zero host part, RFC 4291 §2.6.1) belongs to the node's router, never "
            "to a container; use another address of the /64"
        )
    return ip
