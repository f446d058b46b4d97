"""The one address module: every address, prefix and host:port string passes through here.

Pure and I/O-free. ``parse_*`` take text and return typed values (``ipaddress`` objects and
frozen dataclasses) or raise :class:`AddressError`, whose message quotes the input and says
what is wrong. ``format_*`` and the per-consumer ``for_*`` functions turn values back into
text. Mirrored pairs: ``parse_address``/``format_address``, ``parse_prefix``/``format_prefix``,
``parse_endpoint``/``format_endpoint``, ``parse_url``/``format_url``.

Rules (see DESIGN.md, "One address module"):

* Input is RFC 4291 text (any compression, any case, embedded IPv4), IPv4 dotted quads,
  ``[v6]`` brackets, ``[v6]:port`` / ``v4:port`` endpoints and URLs (RFC 3986 / RFC 6874).
* Output is canonical RFC 5952: lowercase, leading zeros dropped, ``::`` for the longest run
  of two or more zero groups (the first on a tie). Mixed notation (``::ffff:192.0.2.1``) is
  used for addresses in the well-known embedding prefixes ``::ffff:0:0/96`` (mapped, RFC 4291),
  ``::ffff:0:0:0/96`` (translated, RFC 2765, named in RFC 5952 §5) and ``64:ff9b::/96``
  (RFC 6052 §2.4). A prefix or interface there is written mixed only if its IPv4 part
  means something (length > 96 or low 32 bits set): ``64:ff9b::/96``, ``::ffff:192.0.2.0/120``.
* Strictness: surrounding whitespace is rejected, never stripped; IPv4 octets and ports with
  leading zeros are rejected (ambiguous: octal?); ports are decimal 1-65535 (port 0 is not an
  endpoint); prefix lengths are decimal without leading zeros; service names are rejected.
* Zone ids (``fe80::1%eth0``) are IPv6 only, RFC 6874 "unreserved" characters
  (``A-Z a-z 0-9 - . _ ~``), accepted only with ``allow_zone=True``, and kept in a separate
  field. Outside URLs ``%`` is literal (``fe80::1%25`` is zone ``25``); in URLs the
  delimiter is ``%25``. A zone id is never written into a URL or any consumer format that
  feeds one (RFC 9844): asking for that raises :class:`AddressError`.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import Final, Literal, TypeAlias, get_args

from sixpod.errors import SixpodError

__all__ = [
    "CONSUMERS",
    "URL",
    "Address",
    "AddressError",
    "Consumer",
    "Endpoint",
    "IPAddress",
    "IPInterface",
    "IPNetwork",
    "SpecialBlock",
    "Value",
    "describe_space",
    "documentation_space",
    "for_exabgp",
    "for_nginx",
    "for_prometheus",
    "for_redis",
    "format_address",
    "format_endpoint",
    "format_for",
    "format_ip",
    "format_prefix",
    "format_url",
    "format_value",
    "is_subnet_router_anycast",
    "parse_address",
    "parse_any",
    "parse_endpoint",
    "parse_interface",
    "parse_ip",
    "parse_prefix",
    "parse_url",
    "unreachable_space",
    "url_authority",
]

IPAddress: TypeAlias = IPv4Address | IPv6Address
IPNetwork: TypeAlias = IPv4Network | IPv6Network
IPInterface: TypeAlias = IPv4Interface | IPv6Interface


@dataclass(frozen=True, slots=True)
class SpecialBlock:
    """A special-purpose block (RFC 6890 and the IANA registries it set up), for messages:
    ``name`` is what an operator calls it (``"link-local space"``), ``ref`` the RFC or a
    remark (may be empty), ``global_parts`` the carve-outs that are globally reachable
    (the IANA registry's "Globally Reachable: True" entries inside the block)."""

    block: IPNetwork
    name: str
    ref: str = ""
    global_parts: tuple[IPNetwork, ...] = ()

    def hit_by(self, net: IPNetwork) -> bool:
        """Whether ``net`` has an address in the block outside every global carve-out."""
        if net.version != self.block.version:
            return False
        lo, hi = max(_first(net), _first(self.block)), min(_last(net), _last(self.block))
        for part in sorted(self.global_parts, key=_first):  # disjoint, walked in order
            if _first(part) <= lo <= _last(part):
                lo = _last(part) + 1
        return lo <= hi  # lo is now an address of both that no carve-out holds


def _first(net: IPNetwork) -> int:
    return int(net.network_address)


def _last(net: IPNetwork) -> int:
    return int(net.broadcast_address)


def _within(net: IPNetwork, block: IPNetwork) -> bool:
    return net.version == block.version and _first(block) <= _first(net) <= _last(net) <= _last(
        block
    )


def _v6(text: str) -> IPv6Network:
    return IPv6Network(text)


def _v4(text: str) -> IPv4Network:
    return IPv4Network(text)


# Special-purpose space that clients on the Internet can never reach: anycast VIPs and upstream
# links must not use it. The more specific blocks come first, so a message names them.
UNREACHABLE_SPACE: Final[tuple[SpecialBlock, ...]] = (
    SpecialBlock(_v6("::/128"), "the unspecified address", "RFC 4291"),
    SpecialBlock(_v6("::1/128"), "the loopback address", "RFC 4291"),
    SpecialBlock(_v6("::ffff:0:0/96"), "IPv4-mapped space", "RFC 4291"),
    SpecialBlock(_v6("100::/64"), "discard-only space", "RFC 6666"),
    SpecialBlock(_v6("2001::/32"), "Teredo space", "RFC 4380"),
    SpecialBlock(_v6("2001:2::/48"), "benchmarking space", "RFC 5180"),
    SpecialBlock(_v6("2001:10::/28"), "ORCHID space", "deprecated, RFC 4843"),
    SpecialBlock(
        _v6("2001::/23"),
        "IETF protocol assignment space",
        "RFC 2928",
        # PCP, TURN and DNS-SD SRP anycast, AMT, AS112-v6, ORCHIDv2, Drone Remote ID
        tuple(
            _v6(t)
            for t in (
                "2001:1::1/128",
                "2001:1::2/128",
                "2001:1::3/128",
                "2001:3::/32",
                "2001:4:112::/48",
                "2001:20::/28",
                "2001:30::/28",
            )
        ),
    ),
    SpecialBlock(_v6("fec0::/10"), "site-local space", "deprecated, RFC 3879"),
    SpecialBlock(_v6("fe80::/10"), "link-local space", "RFC 4291"),
    SpecialBlock(_v6("ff00::/8"), "multicast space", "RFC 4291"),
    SpecialBlock(_v6("fc00::/7"), "unique local (ULA) space", "private, RFC 4193"),
    SpecialBlock(_v4("0.0.0.0/8"), "'this network' space", "RFC 791"),
    SpecialBlock(_v4("127.0.0.0/8"), "loopback space", "RFC 1122"),
    SpecialBlock(_v4("169.254.0.0/16"), "link-local space", "RFC 3927"),
    SpecialBlock(_v4("224.0.0.0/4"), "multicast space", "RFC 5771"),
    SpecialBlock(_v4("240.0.0.0/4"), "reserved space", "RFC 1112"),
    SpecialBlock(_v4("10.0.0.0/8"), "private space", "RFC 1918"),
    SpecialBlock(_v4("172.16.0.0/12"), "private space", "RFC 1918"),
    SpecialBlock(_v4("192.168.0.0/16"), "private space", "RFC 1918"),
    SpecialBlock(_v4("100.64.0.0/10"), "shared address space", "carrier-grade NAT, RFC 6598"),
    SpecialBlock(_v4("198.18.0.0/15"), "benchmarking space", "RFC 2544"),
    SpecialBlock(
        _v4("192.0.0.0/24"),
        "IETF protocol assignment space",
        "RFC 6890",
        (_v4("192.0.0.9/32"), _v4("192.0.0.10/32")),  # PCP and TURN anycast
    ),
)

# Documentation space: fine for labs and examples, routed nowhere.
DOCUMENTATION_SPACE: Final[tuple[SpecialBlock, ...]] = (
    SpecialBlock(_v4("192.0.2.0/24"), "documentation space", "RFC 5737"),
    SpecialBlock(_v4("198.51.100.0/24"), "documentation space", "RFC 5737"),
    SpecialBlock(_v4("203.0.113.0/24"), "documentation space", "RFC 5737"),
    SpecialBlock(_v6("2001:db8::/32"), "documentation space", "RFC 3849"),
    SpecialBlock(_v6("3fff::/20"), "documentation space", "RFC 9637"),
)


def unreachable_space(net: IPNetwork) -> SpecialBlock | None:
    """The first block of :data:`UNREACHABLE_SPACE` that ``net`` reaches into (outside the
    block's global carve-outs), or None if ``net`` avoids them all."""
    return next((b for b in UNREACHABLE_SPACE if b.hit_by(net)), None)


def documentation_space(net: IPNetwork) -> SpecialBlock | None:
    """The documentation block ``net`` overlaps, or None."""
    return next((b for b in DOCUMENTATION_SPACE if b.hit_by(net)), None)


def describe_space(net: IPNetwork, found: SpecialBlock) -> str:
    """How ``net`` relates to a special block, for messages: ``is in link-local space
    (fe80::/10, RFC 4291)``, ``overlaps the unspecified address (::/128, RFC 4291)``."""
    verb = "is in" if _within(net, found.block) else "overlaps"
    if net == found.block and found.block.num_addresses == 1:
        verb = "is"
    ref = f", {found.ref}" if found.ref else ""
    return f"{verb} {found.name} ({format_prefix(found.block)}{ref})"


def is_subnet_router_anycast(ip: IPv6Address, *, prefixlen: int = 64) -> bool:
    """Whether ``ip`` is the Subnet-Router anycast address of its ``/prefixlen`` (RFC 4291
    §2.6.1: the subnet prefix with an all-zero host part). Routers answer it: it is never a
    host's, so no VIP, endpoint or link is ever given one."""
    if not 0 <= prefixlen <= 128:
        raise ValueError(f"prefix length {prefixlen}: expected 0-128")
    return int(ip) & ((1 << (128 - prefixlen)) - 1) == 0


class AddressError(SixpodError, ValueError):
    """Malformed address text, or a value that cannot be written for a consumer.

    ``text`` is the offending input (or the value's plain text when formatting), ``reason``
    says what is wrong. ``str(err)`` is ``'<text>': <reason>`` with the text repr-quoted.
    Whose fault: the input's (exit code 1 on the command line, HTTP 400/422 in an API).
    """

    exit_code = 1

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        shown = repr(text) if len(text) <= 100 else repr(text[:97]) + "..."
        super().__init__(f"{shown}: {reason}")


# --- values -----------------------------------------------------------------------------------

_ZONE_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _zone_problem(zone: str) -> str | None:
    if not zone:
        return "empty zone id after '%'"
    if len(zone) > 64:
        return "zone id longer than 64 characters"
    bad = next((c for c in zone if c not in _ZONE_CHARS), None)
    if bad is not None:
        return f"invalid character {bad!r} in zone id (allowed: letters, digits, '-._~')"
    return None


def _check_ip(ip: object) -> None:
    if type(ip) is IPv6Address:
        if ip.scope_id is not None:
            raise AddressError(str(ip), "zone id inside the ip object; put it in the zone field")
    elif type(ip) is not IPv4Address:
        raise TypeError(f"expected IPv4Address or IPv6Address, got {type(ip).__name__}")


def _check_zone(ip: IPAddress, zone: str | None) -> None:
    if zone is None:
        return
    if ip.version == 4:
        raise AddressError(f"{ip}%{zone}", "a zone id is only valid on an IPv6 address")
    problem = _zone_problem(zone)
    if problem:
        raise AddressError(zone, problem)


@dataclass(frozen=True, slots=True)
class Address:
    """An IP address and, for IPv6, an optional zone id (interface name or index)."""

    ip: IPAddress
    zone: str | None = None

    def __post_init__(self) -> None:
        _check_ip(self.ip)
        _check_zone(self.ip, self.zone)

    def __str__(self) -> str:
        return format_address(self)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An address and a TCP/UDP port (1-65535), with an optional IPv6 zone id."""

    ip: IPAddress
    port: int
    zone: str | None = None

    def __post_init__(self) -> None:
        _check_ip(self.ip)
        _check_zone(self.ip, self.zone)
        if type(self.port) is not int or not 1 <= self.port <= 65535:
            raise AddressError(str(self.port), "port must be an integer in 1-65535")

    def __str__(self) -> str:
        return format_endpoint(self)


@dataclass(frozen=True, slots=True)
class URL:
    """A URL split around its host: ``scheme://host[:port]path``.

    ``scheme`` is lowercase; ``host`` is an :class:`Address` or a lowercase DNS name;
    ``path`` is everything after the authority (path, query and fragment), verbatim.
    """

    scheme: str
    host: Address | str
    port: int | None = None
    path: str = ""

    def __post_init__(self) -> None:
        if not _SCHEME.fullmatch(self.scheme) or self.scheme != self.scheme.lower():
            raise AddressError(self.scheme, "invalid URL scheme")
        if isinstance(self.host, str):
            problem = _hostname_problem(self.host)
            if problem:
                raise AddressError(self.host, problem)
        elif not isinstance(self.host, Address):
            raise TypeError(f"URL host must be Address or str, got {type(self.host).__name__}")
        if self.port is not None and (type(self.port) is not int or not 1 <= self.port <= 65535):
            raise AddressError(str(self.port), "port must be an integer in 1-65535")
        if self.path and (self.path[0] not in "/?#" or _BAD_PATH.search(self.path)):
            raise AddressError(self.path, "URL path must start with '/', '?' or '#'; no spaces")


Value: TypeAlias = Address | Endpoint | IPNetwork | IPInterface | URL
"""Anything :func:`parse_any` returns."""

_new = object.__new__
_set = object.__setattr__


def _address(ip: IPAddress, zone: str | None) -> Address:
    # Trusted constructor for values this module has just validated (skips __post_init__).
    a = _new(Address)
    _set(a, "ip", ip)
    _set(a, "zone", zone)
    return a


def _endpoint(ip: IPAddress, port: int, zone: str | None) -> Endpoint:
    e = _new(Endpoint)
    _set(e, "ip", ip)
    _set(e, "port", port)
    _set(e, "zone", zone)
    return e


# --- low-level text -> int ----------------------------------------------------------------------

_HEX: Final = frozenset("0123456789abcdefABCDEF")
_V6_CHARS: Final = _HEX | {":", "."}
_DEC: Final = frozenset("0123456789")
_V4_CHARS: Final = _DEC | {"."}
_FOURS: Final = (4,) * 8
_H = "[0-9A-Fa-f]{1,4}"
_V6_FULL: Final = re.compile(rf"{_H}(?::{_H}){{7}}")
_V6_COMP: Final = re.compile(rf"((?:{_H}:){{0,6}}{_H})?::((?:{_H}:){{0,6}}{_H})?")
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4_RE: Final = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_EP6: Final = re.compile(r"\[([0-9A-Fa-f:]+)\]:([1-9][0-9]{0,4})")
_EP4: Final = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}:([1-9][0-9]{{0,4}})")
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_BAD_PATH: Final = re.compile(r"[\x00-\x20\x7f]")
_LABEL: Final = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


class _Bad(Exception):
    """Internal: a reason, turned into AddressError(text, reason) by the caller."""


def _q(part: str) -> str:
    """Quote part of the input in a reason, capped so messages stay short."""
    return repr(part) if len(part) <= 24 else repr(part[:24]) + "..."


def _short(digits: str) -> str:
    return digits if len(digits) <= 24 else digits[:24] + "..."


def _char_problem(s: str, allowed: frozenset[str], what: str) -> str | None:
    bad = next((c for c in s if c not in allowed), None)
    if bad is None:
        return None
    if bad.isspace():
        return f"whitespace inside the {what}"
    return f"invalid character {bad!r} in {what}"


def _v4_int(s: str) -> int:
    m = _V4_RE.fullmatch(s)
    if m is not None:
        a, b, c, d = m.groups()
        return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
    problem = _char_problem(s, _V4_CHARS, "IPv4 address")
    if problem:
        raise _Bad(problem)
    parts = s.split(".")
    if len(parts) != 4:
        raise _Bad(f"IPv4 address needs 4 dotted octets, got {len(parts)}")
    for p in parts:
        if not p:
            raise _Bad("empty octet in IPv4 address")
        if len(p) > 1 and p[0] == "0":
            raise _Bad(f"IPv4 octet {_q(p)} has a leading zero (ambiguous: octal?)")
        if len(p) > 3 or int(p) > 255:
            raise _Bad(f"IPv4 octet {_q(p)} is out of range 0-255")
    raise AssertionError(s)  # pragma: no cover - the regex accepts everything else


def _v6_fast(s: str) -> int | None:
    """The common well-formed IPv6 spellings (no embedded IPv4), else None."""
    if "::" in s:
        m = _V6_COMP.fullmatch(s)
        if m is None:
            return None
        head, tail = m.groups()
        hg = head.split(":") if head else []
        tg = tail.split(":") if tail else []
        missing = 8 - len(hg) - len(tg)
        if missing < 1:
            return None
        return int(
            "".join(map(str.zfill, hg, _FOURS))
            + "0000" * missing
            + "".join(map(str.zfill, tg, _FOURS)),
            16,
        )
    if _V6_FULL.fullmatch(s):
        return int("".join(map(str.zfill, s.split(":"), _FOURS)), 16)
    return None


def _v6_int(s: str) -> int:
    """Parse IPv6 text without zone or brackets; raise _Bad with a precise reason."""
    n = _v6_fast(s)
    return n if n is not None else _v6_int_slow(s)


def _v6_int_slow(s: str) -> int:
    # Everything the fast path does not take: embedded IPv4, and diagnosis of bad text.
    if not s:
        raise _Bad("empty IPv6 address")
    problem = _char_problem(s, _V6_CHARS, "IPv6 address")
    if problem:
        raise _Bad(problem)
    if ":::" in s:
        raise _Bad("':::' is not valid (at most two ':' in a row)")
    if s.count("::") > 1:
        raise _Bad("more than one '::'")
    if s[0] == ":" and s[:2] != "::":
        raise _Bad("starts with a single ':'")
    if s[-1] == ":" and s[-2:] != "::":
        raise _Bad("ends with a single ':'")
    v4 = None
    if "." in s:
        rest, _, last = s.rpartition(":")
        if "." in rest or "." not in last:
            raise _Bad("embedded IPv4 address must be the last 32 bits")
        try:
            v4 = _v4_int(last)
        except _Bad as e:
            raise _Bad(f"embedded {e}") from None
        s = rest + ":" if rest.endswith(":") else rest  # keep a '::' that preceded it
    compressed = "::" in s
    if compressed:
        head, tail = s.split("::")
        hg = head.split(":") if head else []
        tg = tail.split(":") if tail else []
    else:
        hg, tg = (s.split(":") if s else []), []
    groups = hg + tg
    for g in groups:
        if not g:
            raise _Bad("empty group (stray ':')")
        if len(g) > 4:
            raise _Bad(f"group {_q(g)} has more than 4 hex digits")
    count = len(groups) + (2 if v4 is not None else 0)
    if compressed and count > 7:
        raise _Bad(f"too many groups: {count} groups and a '::' (at most 7 with '::')")
    if not compressed and count != 8:
        more = "many" if count > 8 else "few"
        raise _Bad(f"too {more} groups: {count} of 8 and no '::'")
    if v4 is not None:
        tail4 = [f"{v4 >> 16:x}", f"{v4 & 0xFFFF:x}"]
        if compressed:
            tg += tail4
        else:
            hg += tail4
    hexs = "".join(g.zfill(4) for g in hg)
    hexs += "0000" * (8 - len(hg) - len(tg)) + "".join(g.zfill(4) for g in tg)
    return int(hexs, 16)


def _port(s: str) -> int:
    if not s:
        raise _Bad("empty port")
    if not (s.isascii() and s.isdigit()):
        if s.isalpha():
            raise _Bad(f"port {_q(s)} is not a decimal number (service names are not accepted)")
        raise _Bad(f"port {_q(s)} is not a decimal number")
    if len(s) > 1 and s[0] == "0":
        raise _Bad(f"port {_q(s)} has a leading zero")
    if len(s) > 5 or not 1 <= int(s) <= 65535:
        raise _Bad(f"port {_short(s)} is out of range 1-65535")
    return int(s)


# --- parsing --------------------------------------------------------------------------------------


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise AddressError(repr(text), f"expected text, got {type(text).__name__}")
    if not text:
        raise AddressError(text, "empty input")
    if text[0].isspace() or text[-1].isspace():
        raise AddressError(text, "leading or trailing whitespace (not stripped; remove it)")
    return text


def _host(s: str, allow_zone: bool, *, bracketed: bool) -> tuple[IPAddress, str | None]:
    """Parse an address with an optional literal ``%zone`` (no brackets, no port)."""
    addr, pct, zone = s.partition("%")
    if not addr:
        raise _Bad("empty brackets" if bracketed and not pct else "empty address")
    if ":" in addr:
        ip: IPAddress = IPv6Address(_v6_int(addr))
    elif bracketed:
        raise _Bad("brackets are only for IPv6 addresses")
    elif _V4_CHARS.issuperset(addr):
        ip = IPv4Address(_v4_int(addr))
    else:
        raise _Bad("not an IPv4 or IPv6 address")
    if not pct:
        return ip, None
    if ip.version == 4:
        raise _Bad("a zone id is only valid on an IPv6 address")
    problem = _zone_problem(zone)
    if problem:
        raise _Bad(problem)
    if not allow_zone:
        raise _Bad("zone id not allowed here")
    return ip, zone


def _parse_address(text: str, allow_zone: bool) -> Address:
    if text[0] == "[":
        close = text.find("]")
        if close < 0:
            raise _Bad("unbalanced brackets: '[' without ']'")
        if "[" in text[1:] or "]" in text[close + 1 :]:
            raise _Bad("unbalanced brackets")
        if close != len(text) - 1:
            if text[close + 1] == ":":
                raise _Bad("has a port; expected an address without one")
            raise _Bad("unexpected text after ']'")
        inner = text[1:close]
        ip, zone = _host(inner, allow_zone, bracketed=True)
        return _address(ip, zone)
    if "]" in text:
        raise _Bad("unbalanced brackets: ']' without '['")
    if "/" in text:
        raise _Bad("is a prefix; expected an address")
    if text.count(":") == 1 and "." in text.partition(":")[0]:
        raise _Bad("has a port; expected an address without one")
    ip, zone = _host(text, allow_zone, bracketed=False)
    return _address(ip, zone)


def parse_address(text: str, *, allow_zone: bool = False) -> Address:
    """Parse an IPv4 or IPv6 address, optionally bracketed (``[2001:db8::1]``).

    A zone id (``fe80::1%eth0``) is accepted only with ``allow_zone=True``.
    """
    _check_text(text)
    try:
        return _parse_address(text, allow_zone)
    except _Bad as e:
        raise AddressError(text, str(e)) from None


def parse_ip(text: str) -> IPAddress:
    """Parse an address without a zone id (brackets allowed around IPv6)."""
    return parse_address(text).ip


def _parse_endpoint(text: str, allow_zone: bool) -> Endpoint:
    if text[0] == "[":
        close = text.find("]")
        if close < 0:
            raise _Bad("unbalanced brackets: '[' without ']'")
        inner, after = text[1:close], text[close + 1 :]
        if "[" in inner or "[" in after or "]" in after:
            raise _Bad("unbalanced brackets")
        if not after:
            raise _Bad("missing port: expected '[ADDR]:PORT'")
        if after[0] != ":":
            raise _Bad("expected ':PORT' after ']'")
        if inner and ":" not in inner.partition("%")[0] and _V4_CHARS.issuperset(inner):
            hint = f"; write '{inner}{after}'" if len(inner) + len(after) <= 30 else ""
            raise _Bad(f"brackets are only for IPv6{hint}")
        ip, zone = _host(inner, allow_zone, bracketed=True)
        return _endpoint(ip, _port(after[1:]), zone)
    if "]" in text:
        raise _Bad("unbalanced brackets: ']' without '['")
    colons = text.count(":")
    if colons == 0:
        raise _Bad("missing port: expected 'ADDR:PORT'")
    if colons == 1:
        host, _, port = text.partition(":")
        ip, zone = _host(host, allow_zone, bracketed=False)
        return _endpoint(ip, _port(port), zone)
    # Unbracketed IPv6: never guess where the address ends.
    head, _, tail = text.rpartition(":")
    tail = tail if 0 < len(tail) <= 5 else "PORT"
    try:
        _host(head, True, bracketed=False)
    except _Bad:
        pass
    else:
        if tail.isascii() and tail.isdigit():
            raise _Bad(
                f"ambiguous: an IPv6 address with a port must be in brackets, "
                f"e.g. '[{head}]:{tail}'"
            )
        raise _Bad(f"an IPv6 address with a port must be in brackets: '[{head}]:{tail}'")
    _host(text, True, bracketed=False)  # raises the address's own problem, if any
    raise _Bad(f"missing port: an IPv6 endpoint is written '[{text}]:PORT'")


def parse_endpoint(text: str, *, allow_zone: bool = False) -> Endpoint:
    """Parse ``[2001:db8::1]:443`` or ``192.0.2.1:80`` (port decimal, 1-65535).

    An unbracketed IPv6 address followed by ``:port`` is rejected as ambiguous. A zone id
    (``[fe80::1%eth0]:22``) is accepted only with ``allow_zone=True``.
    """
    if type(text) is str:
        # Fast path for the common well-formed case; everything else is diagnosed below.
        m = _EP6.fullmatch(text)
        if m is not None:
            port = int(m[2])
            if port <= 65535:
                n = _v6_fast(m[1])
                if n is not None:
                    return _endpoint(IPv6Address(n), port, None)
        else:
            m = _EP4.fullmatch(text)
            if m is not None:
                a, b, c4, d, p = m.groups()
                port = int(p)
                if port <= 65535:
                    n = (int(a) << 24) | (int(b) << 16) | (int(c4) << 8) | int(d)
                    return _endpoint(IPv4Address(n), port, None)
    _check_text(text)
    try:
        return _parse_endpoint(text, allow_zone)
    except _Bad as e:
        raise AddressError(text, str(e)) from None


def _plen(s: str, bits: int) -> int:
    if not s:
        raise _Bad("empty prefix length after '/'")
    if not (s.isascii() and s.isdigit()):
        extra = " (netmasks are not accepted)" if "." in s else ""
        raise _Bad(f"prefix length {_q(s)} is not a decimal number{extra}")
    if len(s) > 1 and s[0] == "0":
        raise _Bad(f"prefix length {_q(s)} has a leading zero")
    n = int(s) if len(s) <= 3 else bits + 1
    if n > bits:
        family = 4 if bits == 32 else 6
        raise _Bad(f"prefix length {_short(s)} is out of range for IPv{family} (0-{bits})")
    return n


def _split_prefix(text: str) -> tuple[IPAddress, int]:
    addr, slash, length = text.partition("/")
    if not slash:
        raise _Bad("missing prefix length ('/LEN')")
    if "/" in length:
        raise _Bad("more than one '/'")
    if "[" in addr or "]" in addr:
        raise _Bad("brackets are not used around prefixes")
    if "%" in addr:
        raise _Bad("a zone id is not allowed in a prefix")
    ip, _ = _host(addr, False, bracketed=False)
    return ip, _plen(length, ip.max_prefixlen)


def _host_bits(ip: IPAddress, plen: int) -> int:
    return int(ip) & ((1 << (ip.max_prefixlen - plen)) - 1)


def _network(ip: IPAddress, plen: int) -> IPNetwork:
    n = int(ip) & ~((1 << (ip.max_prefixlen - plen)) - 1)
    return IPv6Network((n, plen)) if ip.version == 6 else IPv4Network((n, plen))


def parse_prefix(text: str, *, strict: bool = True) -> IPNetwork:
    """Parse ``2001:db8::/64`` or ``192.0.2.0/24``.

    ``strict`` rejects host bits (``2001:db8::1/64``) with a suggestion; ``strict=False``
    clears them. Use :func:`parse_interface` to keep them.
    """
    _check_text(text)
    try:
        ip, plen = _split_prefix(text)
    except _Bad as e:
        raise AddressError(text, str(e)) from None
    net = _network(ip, plen)
    if strict and _host_bits(ip, plen):
        raise AddressError(text, f"has host bits set; did you mean '{format_prefix(net)}'?")
    return net


def parse_interface(text: str) -> IPInterface:
    """Parse an interface address with its prefix length, host bits kept (``2001:db8::1/64``)."""
    _check_text(text)
    try:
        ip, plen = _split_prefix(text)
    except _Bad as e:
        raise AddressError(text, str(e)) from None
    if ip.version == 6:
        return IPv6Interface((int(ip), plen))
    return IPv4Interface((int(ip), plen))


def _hostname_problem(name: str) -> str | None:
    if not name:
        return "empty host"
    if len(name) > 253:
        return "host name longer than 253 characters"
    labels = name.split(".")
    if labels[-1].isdigit():
        return "numeric host is not a valid IPv4 address"
    for label in labels:
        if not label:
            return "empty label in host name"
        if not _LABEL.fullmatch(label):
            return f"invalid host name label {_q(label)}"
    return None


def _parse_url(text: str, allow_zone: bool) -> URL:
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise _Bad("not a URL: expected 'SCHEME://'")
    if not _SCHEME.fullmatch(scheme):
        raise _Bad(f"invalid URL scheme {_q(scheme)}")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:]
    if _BAD_PATH.search(path):
        raise _Bad("whitespace or control character in the URL path")
    if "@" in authority:
        raise _Bad("userinfo ('user@') in a URL is not supported")
    host: Address | str
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise _Bad("unbalanced brackets: '[' without ']'")
        inner, after = authority[1:close], authority[close + 1 :]
        if "[" in inner or "[" in after or "]" in after:
            raise _Bad("unbalanced brackets")
        if inner[:1] in ("v", "V"):
            raise _Bad("IPvFuture literals are not supported")
        if after and after[0] != ":":
            raise _Bad("expected ':PORT' after ']'")
        if "%" in inner:
            addr, _, zone = inner.partition("%")
            if not zone.startswith("25"):
                raise _Bad("a zone id in a URL is written '%25ZONE' (RFC 6874)")
            if "%" in zone:
                raise _Bad("percent-encoding in a URL zone id is not supported")
            inner = f"{addr}%{zone[2:]}"
        if inner and ":" not in inner.partition("%")[0]:
            raise _Bad("brackets in a URL are only for IPv6 addresses")
        ip, z = _host(inner, allow_zone, bracketed=True)
        host = _address(ip, z)
        port_s = after[1:] if after else None
    else:
        if "]" in authority:
            raise _Bad("unbalanced brackets: ']' without '['")
        if authority.count(":") > 1:
            raise _Bad("an IPv6 address in a URL must be in brackets")
        name, colon, p = authority.partition(":")
        port_s = p if colon else None
        if not name:
            raise _Bad("empty host")
        if _V4_CHARS.issuperset(name) or name.rpartition(".")[2].isdigit():
            host = _address(IPv4Address(_v4_int(name)), None)
        else:
            problem = _hostname_problem(name)
            if problem:
                raise _Bad(problem)
            host = name.lower()
    port = _port(port_s) if port_s is not None else None
    return URL(scheme.lower(), host, port, path)


def parse_url(text: str, *, allow_zone: bool = False) -> URL:
    """Parse ``scheme://host[:port][path]`` where host is ``[v6]``, IPv4 or a DNS name.

    A zone id (``[fe80::1%25eth0]``, RFC 6874) is decoded into ``host.zone`` only with
    ``allow_zone=True``; :func:`format_url` will still refuse to write it back (RFC 9844).
    Userinfo and IPvFuture are rejected; the path is kept verbatim.
    """
    _check_text(text)
    try:
        return _parse_url(text, allow_zone)
    except _Bad as e:
        raise AddressError(text, str(e)) from None


def parse_any(text: str, *, allow_zone: bool = False) -> Value:
    """Parse whatever address-like text is given, by its shape.

    ``scheme://…`` is a :class:`URL`; ``a/len`` a network (or an interface if host bits are
    set); ``[v6]:port`` and ``v4:port`` an :class:`Endpoint`; anything else (``[v6]`` too)
    an :class:`Address`. An unbracketed IPv6 address is always an address, never an endpoint.
    """
    _check_text(text)
    if "://" in text:
        return parse_url(text, allow_zone=allow_zone)
    if "/" in text:
        try:
            ip, plen = _split_prefix(text)
        except _Bad as e:
            raise AddressError(text, str(e)) from None
        if _host_bits(ip, plen):
            return parse_interface(text)
        return _network(ip, plen)
    if text[0] == "[":
        close = text.find("]")
        if close >= 0 and close + 1 < len(text):
            return parse_endpoint(text, allow_zone=allow_zone)
        return parse_address(text, allow_zone=allow_zone)
    if text.count(":") == 1:
        return parse_endpoint(text, allow_zone=allow_zone)
    return parse_address(text, allow_zone=allow_zone)


# --- formatting ---------------------------------------------------------------------------------

_UNPACK8: Final = struct.Struct(">8H").unpack
_UNPACK6: Final = struct.Struct(">6H").unpack
_FMT8: Final = ":".join(["{:x}"] * 8).format
_FMT6: Final = ":".join(["{:x}"] * 6).format
_FMT4: Final = "{}.{}.{}.{}".format
_ZERO_RUNS: Final = tuple(":" + "0:" * k for k in range(8, 1, -1))  # longest first
# Top 96 bits of the well-known prefixes whose addresses are written in mixed notation.
_MIXED_TOPS: Final = frozenset({0xFFFF, 0xFFFF0000, 0x64FF9B << 64})


def _compress(s: str) -> str:
    """Apply RFC 5952 §4.2 to ``%x``-formatted groups joined by ':'."""
    w = f":{s}:"
    if ":0:0:" not in w:
        return s
    for run in _ZERO_RUNS:
        i = w.find(run)  # the first occurrence of the longest run wins a tie
        if i >= 0:
            return f"{w[1:i]}::{w[i + len(run) : -1]}"
    raise AssertionError(s)  # pragma: no cover


def _v6_text(n: int, *, mixed: bool = True) -> str:
    if mixed and (n >> 32) in _MIXED_TOPS:
        head = _compress(_FMT6(*_UNPACK6((n >> 32).to_bytes(12, "big"))))
        v4 = _FMT4(*(n & 0xFFFFFFFF).to_bytes(4, "big"))
        return f"{head}{v4}" if head.endswith("::") else f"{head}:{v4}"
    return _compress(_FMT8(*_UNPACK8(n.to_bytes(16, "big"))))


def format_ip(ip: IPAddress) -> str:
    """Canonical text: RFC 5952 for IPv6 (mixed notation for mapped etc.), dotted quad for IPv4."""
    if type(ip) is IPv4Address:
        return _FMT4(*int(ip).to_bytes(4, "big"))
    _check_ip(ip)
    return _v6_text(int(ip))


def format_address(a: Address) -> str:
    """Canonical address text, zone id kept (``fe80::1%eth0``), for tools such as ``ip``."""
    text = format_ip(a.ip)
    return f"{text}%{a.zone}" if a.zone is not None else text


def format_prefix(n: IPNetwork | IPInterface) -> str:
    """Canonical ``addr/len`` for a network (host bits clear) or an interface (kept).

    In the mixed-notation ranges the dotted form is used only when the IPv4 part carries
    information (length > 96 or low 32 bits set): ``64:ff9b::/96``, ``::ffff:192.0.2.0/120``.
    """
    if isinstance(n, IPv4Interface | IPv6Interface):
        addr, plen = n.ip, n.network.prefixlen
    else:
        addr, plen = n.network_address, n.prefixlen
    if addr.version == 4:
        return f"{format_ip(addr)}/{plen}"
    _check_ip(addr)
    value = int(addr)
    return f"{_v6_text(value, mixed=plen > 96 or (value & 0xFFFFFFFF) != 0)}/{plen}"


def _host_text(ip: IPAddress, zone: str | None) -> str:
    if type(ip) is IPv4Address:
        return _FMT4(*int(ip).to_bytes(4, "big"))
    text = _v6_text(int(ip))
    return f"[{text}%{zone}]" if zone is not None else f"[{text}]"


def format_endpoint(e: Endpoint) -> str:
    """Plain host:port: ``[2001:db8::1]:443``, ``192.0.2.1:80``, ``[fe80::1%eth0]:22``."""
    return f"{_host_text(e.ip, e.zone)}:{e.port}"


def _no_zone(value: Address | Endpoint, what: str) -> None:
    if value.zone is not None:
        shown = format_endpoint(value) if isinstance(value, Endpoint) else format_address(value)
        raise AddressError(shown, f"a zone id cannot be written {what} (RFC 9844)")


def url_authority(e: Endpoint) -> str:
    """URL authority ``[2001:db8::1]:443`` / ``192.0.2.1:80``; a zone id raises AddressError."""
    _no_zone(e, "in a URL")
    return f"{_host_text(e.ip, None)}:{e.port}"


def _url_text(u: URL) -> str:
    host = _host_text(u.host.ip, u.host.zone) if isinstance(u.host, Address) else u.host
    port = f":{u.port}" if u.port is not None else ""
    return f"{u.scheme}://{host}{port}{u.path}"


def format_url(u: URL) -> str:
    """Canonical URL text; a zoned host raises AddressError (zone ids never go into URLs)."""
    if isinstance(u.host, Address) and u.host.zone is not None:
        raise AddressError(_url_text(u), "a zone id cannot be written in a URL (RFC 9844)")
    return _url_text(u)


def for_nginx(v: Endpoint | IPNetwork) -> str:
    """nginx ``listen``/``server`` (``[2001:db8::1]:443``) or ``allow``/``deny`` (a prefix)."""
    if isinstance(v, Endpoint):
        _no_zone(v, "for nginx")
        return f"{_host_text(v.ip, None)}:{v.port}"
    return format_prefix(v)


def for_exabgp(v: IPAddress | Address | IPNetwork) -> str:
    """ExaBGP: a bare canonical address (neighbor, next-hop) or prefix (route)."""
    if isinstance(v, Address):
        _no_zone(v, "for ExaBGP")
        return format_ip(v.ip)
    if isinstance(v, IPv4Network | IPv6Network):
        return format_prefix(v)
    return format_ip(v)


def for_redis(v: Endpoint | Address | IPAddress) -> str:
    """Redis: endpoint member ``[2001:db8::1]:8080`` / ``192.0.2.1:8080``; a bare address
    for ``bind`` / ``replicaof``."""
    if isinstance(v, Endpoint):
        _no_zone(v, "in a Redis endpoint")
        return f"{_host_text(v.ip, None)}:{v.port}"
    if isinstance(v, Address):
        _no_zone(v, "for Redis")
        return format_ip(v.ip)
    return format_ip(v)


def for_prometheus(e: Endpoint) -> str:
    """Prometheus scrape target ``[2001:db8::1]:9100`` (a zone id raises AddressError)."""
    _no_zone(e, "in a Prometheus target")
    return f"{_host_text(e.ip, None)}:{e.port}"


def format_value(v: Value) -> str:
    """Canonical text of any value :func:`parse_any` returns (zone ids kept, except in URLs)."""
    if isinstance(v, Endpoint):
        return format_endpoint(v)
    if isinstance(v, Address):
        return format_address(v)
    if isinstance(v, URL):
        return format_url(v)
    return format_prefix(v)


Consumer: TypeAlias = Literal["url", "nginx", "exabgp", "redis", "prometheus"]
CONSUMERS: Final[tuple[Consumer, ...]] = get_args(Consumer)


def _kind(v: Value) -> str:
    if isinstance(v, Endpoint):
        return "an endpoint"
    if isinstance(v, Address):
        return "an address without a port"
    if isinstance(v, URL):
        return "a URL"
    if isinstance(v, IPv4Interface | IPv6Interface):
        return "a prefix with host bits set"
    return "a prefix"


def format_for(consumer: Consumer, v: Value) -> str:
    """Write a parsed value for one consumer, or raise AddressError saying why it cannot be.

    url/prometheus take endpoints (url also whole URLs); nginx endpoints and prefixes;
    exabgp addresses and prefixes; redis endpoints and addresses.
    """
    if consumer in ("url", "prometheus") and isinstance(v, Endpoint):
        return url_authority(v) if consumer == "url" else for_prometheus(v)
    if consumer == "url" and isinstance(v, URL):
        return format_url(v)
    if consumer == "nginx" and isinstance(v, Endpoint | IPv4Network | IPv6Network):
        return for_nginx(v)
    if consumer == "exabgp" and isinstance(v, Address | IPv4Network | IPv6Network):
        return for_exabgp(v)
    if consumer == "redis" and isinstance(v, Endpoint | Address):
        return for_redis(v)
    text = _url_text(v) if isinstance(v, URL) else format_value(v)
    hint = ""
    if isinstance(v, IPv4Interface | IPv6Interface) and consumer in ("nginx", "exabgp"):
        hint = f"; did you mean '{format_prefix(v.network)}'?"
    elif isinstance(v, Address) and consumer in ("url", "nginx", "prometheus"):
        hint = "; add a port: '[ADDR]:PORT' or 'IPv4:PORT'"
    raise AddressError(text, f"{_kind(v)} cannot be written for {consumer}{hint}")
