"""Tests for sixpod.addr: RFC 4291/5952 examples, every reject case, round trips, garbage in."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Interface, IPv6Network

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sixpod import addr as a
from sixpod.addr import (
    URL,
    Address,
    AddressError,
    Endpoint,
    format_address,
    format_endpoint,
    format_for,
    format_ip,
    format_prefix,
    format_url,
    format_value,
    parse_address,
    parse_any,
    parse_endpoint,
    parse_interface,
    parse_ip,
    parse_prefix,
    parse_url,
)

V6 = IPv6Address
V4 = IPv4Address


def canon(text: str) -> str:
    return format_ip(parse_ip(text))


# --- RFC examples -----------------------------------------------------------------------------

RFC5952 = [
    # §2.1 leading zeros
    ("2001:db8:aaaa:bbbb:cccc:dddd:eeee:0001", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1"),
    ("2001:db8:aaaa:bbbb:cccc:dddd:eeee:001", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1"),
    ("2001:db8:aaaa:bbbb:cccc:dddd:eeee:01", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1"),
    # §2.2 zero compression
    ("2001:db8:aaaa:bbbb:cccc:dddd::1", "2001:db8:aaaa:bbbb:cccc:dddd:0:1"),
    ("2001:db8:0:0:0::1", "2001:db8::1"),
    ("2001:db8:0:0::1", "2001:db8::1"),
    ("2001:db8:0::1", "2001:db8::1"),
    ("2001:db8::aaaa:0:0:1", "2001:db8::aaaa:0:0:1"),
    ("2001:db8:0:0:aaaa::1", "2001:db8::aaaa:0:0:1"),
    # §2.3 case
    ("2001:db8:aaaa:bbbb:cccc:dddd:eeee:AAAA", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa"),
    ("2001:db8:aaaa:bbbb:cccc:dddd:eeee:AaAa", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa"),
    # §4.1, §4.2.1, §4.2.2, §4.2.3, §4.3
    ("2001:0db8::0001", "2001:db8::1"),
    ("2001:db8::0:1", "2001:db8::1"),
    ("2001:db8:0:0:0:0:2:1", "2001:db8::2:1"),
    ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
    ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
    ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
    ("2001:db8:0:0:1:0:0:0", "2001:db8:0:0:1::"),
    ("2001:DB8::1", "2001:db8::1"),
    # §5 mixed notation
    ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
    ("::FFFF:C000:0201", "::ffff:192.0.2.1"),
    ("0:0:0:0:0:ffff:c000:201", "::ffff:192.0.2.1"),
    ("::ffff:0:c000:201", "::ffff:0:192.0.2.1"),
    ("64:ff9b::192.0.2.1", "64:ff9b::192.0.2.1"),
    ("64:FF9B::C000:201", "64:ff9b::192.0.2.1"),
]

RFC4291 = [
    # §2.2 (1) preferred form, (2) compressed, (3) mixed
    ("ABCD:EF01:2345:6789:ABCD:EF01:2345:6789", "abcd:ef01:2345:6789:abcd:ef01:2345:6789"),
    ("2001:DB8:0:0:8:800:200C:417A", "2001:db8::8:800:200c:417a"),
    ("2001:DB8::8:800:200C:417A", "2001:db8::8:800:200c:417a"),
    ("FF01:0:0:0:0:0:0:101", "ff01::101"),
    ("FF01::101", "ff01::101"),
    ("0:0:0:0:0:0:0:1", "::1"),
    ("::1", "::1"),
    ("0:0:0:0:0:0:0:0", "::"),
    ("::", "::"),
    # IPv4-compatible is deprecated and not a well-known mixed prefix: hex (RFC 5952 §5)
    ("0:0:0:0:0:0:13.1.68.3", "::d01:4403"),
    ("::13.1.68.3", "::d01:4403"),
    ("0:0:0:0:0:FFFF:129.144.52.38", "::ffff:129.144.52.38"),
    ("::FFFF:129.144.52.38", "::ffff:129.144.52.38"),
]


@pytest.mark.parametrize(("text", "expected"), RFC5952 + RFC4291)
def test_rfc_examples_canonical(text: str, expected: str) -> None:
    assert canon(text) == expected
    assert int(parse_ip(text)) == int(ipaddress.ip_address(text))
    assert canon(expected) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2001:0DB8:0000:CD30:0000:0000:0000:0000/60",
        "2001:0DB8::CD30:0:0:0:0/60",
        "2001:0DB8:0:CD30::/60",
    ],
)
def test_rfc4291_2_3_legal_prefixes(text: str) -> None:
    net = parse_prefix(text)
    assert net == IPv6Network("2001:db8:0:cd30::/60")
    assert format_prefix(net) == "2001:db8:0:cd30::/60"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2001:0DB8:0:CD3/60", "too few groups"),  # trailing zeros dropped: malformed
        ("2001:0DB8::CD30/60", "has host bits set; did you mean '2001:db8::/60'?"),
        ("2001:0DB8::CD3/60", "has host bits set"),
    ],
)
def test_rfc4291_2_3_illegal_prefixes(text: str, reason: str) -> None:
    with pytest.raises(AddressError, match="^" + _quoted(text)) as info:
        parse_prefix(text)
    assert reason in info.value.reason


def test_rfc4291_2_3_interface() -> None:
    iface = parse_interface("2001:0DB8:0:CD30:123:4567:89AB:CDEF/60")
    assert iface == IPv6Interface("2001:db8:0:cd30:123:4567:89ab:cdef/60")
    assert format_prefix(iface) == "2001:db8:0:cd30:123:4567:89ab:cdef/60"
    assert format_prefix(iface.network) == "2001:db8:0:cd30::/60"
    assert parse_prefix("2001:0DB8:0:CD30:123:4567:89AB:CDEF/60", strict=False) == iface.network


def test_rfc5952_section6_endpoint() -> None:
    assert format_endpoint(parse_endpoint("[2001:DB8:0::1]:80")) == "[2001:db8::1]:80"


# --- parsing: accepted forms ------------------------------------------------------------------


def test_parse_forms() -> None:
    assert parse_ip("[2001:db8::1]") == V6("2001:db8::1")
    assert parse_ip("192.0.2.1") == V4("192.0.2.1")
    assert parse_address("fe80::1%eth0", allow_zone=True) == Address(V6("fe80::1"), "eth0")
    assert parse_address("[fe80::1%eth0.100]", allow_zone=True).zone == "eth0.100"
    assert parse_address("fe80::1%25", allow_zone=True).zone == "25"  # literal outside URLs
    assert parse_endpoint("[2001:db8::1]:443") == Endpoint(V6("2001:db8::1"), 443)
    assert parse_endpoint("192.0.2.1:80") == Endpoint(V4("192.0.2.1"), 80)
    assert parse_endpoint("[::ffff:192.0.2.1]:65535").port == 65535
    assert parse_endpoint("[fe80::1%eth0]:22", allow_zone=True) == Endpoint(
        V6("fe80::1"), 22, "eth0"
    )
    assert parse_prefix("192.0.2.0/24") == IPv4Network("192.0.2.0/24")
    assert parse_prefix("::/0") == IPv6Network("::/0")
    assert parse_prefix("2001:db8::1/64", strict=False) == IPv6Network("2001:db8::/64")
    assert format_prefix(parse_interface("2001:DB8::1/64")) == "2001:db8::1/64"
    assert format_prefix(parse_interface("192.0.2.1/24")) == "192.0.2.1/24"


def test_parse_url() -> None:
    u = parse_url("http://[fe80::1%25eth0]:8080/x", allow_zone=True)
    assert u == URL("http", Address(V6("fe80::1"), "eth0"), 8080, "/x")
    u = parse_url("HTTPS://[2001:DB8::1]/a?b=c#d")
    assert u == URL("https", Address(V6("2001:db8::1")), None, "/a?b=c#d")
    assert format_url(u) == "https://[2001:db8::1]/a?b=c#d"
    assert parse_url("http://192.0.2.1:80").host == Address(V4("192.0.2.1"))
    assert format_url(parse_url("http://Pod.Example:9100/metrics")) == (
        "http://pod.example:9100/metrics"
    )


def test_parse_any_shapes() -> None:
    assert parse_any("[2001:db8::1]") == Address(V6("2001:db8::1"))
    assert parse_any("2001:db8::1:443") == Address(V6("2001:db8::1:443"))  # never an endpoint
    assert parse_any("[2001:db8::1]:443") == Endpoint(V6("2001:db8::1"), 443)
    assert parse_any("192.0.2.1:80") == Endpoint(V4("192.0.2.1"), 80)
    assert parse_any("2001:db8::/64") == IPv6Network("2001:db8::/64")
    assert parse_any("2001:db8::1/64") == IPv6Interface("2001:db8::1/64")
    assert isinstance(parse_any("http://[::1]/"), URL)


# --- formatting ---------------------------------------------------------------------------------


def test_mixed_notation_prefixes() -> None:
    assert format_prefix(parse_prefix("::ffff:0:0/96")) == "::ffff:0:0/96"
    assert format_prefix(parse_prefix("64:ff9b::/96")) == "64:ff9b::/96"
    assert format_prefix(parse_prefix("::ffff:192.0.2.0/120")) == "::ffff:192.0.2.0/120"
    assert format_ip(V6("::ffff:0:0")) == "::ffff:0.0.0.0"
    assert format_ip(V6("::ffff:0:0:0")) == "::ffff:0:0.0.0.0"
    # text depends on (address, length) only, never on network vs interface
    assert format_prefix(IPv6Interface("64:ff9b::/32")) == "64:ff9b::/32"
    assert format_prefix(IPv6Network("64:ff9b::/32")) == "64:ff9b::/32"
    assert format_prefix(parse_interface("::FFFF:C000:201/96")) == "::ffff:192.0.2.1/96"


CONSUMER_OK = [
    ("url", "[2001:DB8::1]:443", "[2001:db8::1]:443"),
    ("url", "192.0.2.1:80", "192.0.2.1:80"),
    ("url", "http://[2001:DB8::1]:8080/x", "http://[2001:db8::1]:8080/x"),
    ("nginx", "[2001:db8:0::1]:443", "[2001:db8::1]:443"),
    ("nginx", "192.0.2.1:80", "192.0.2.1:80"),
    ("nginx", "2001:DB8::/32", "2001:db8::/32"),
    ("exabgp", "2001:DB8::1", "2001:db8::1"),
    ("exabgp", "[2001:db8::1]", "2001:db8::1"),
    ("exabgp", "2001:DB8:1::/48", "2001:db8:1::/48"),
    ("exabgp", "192.0.2.0/24", "192.0.2.0/24"),
    ("redis", "[2001:DB8::1]:8080", "[2001:db8::1]:8080"),
    ("redis", "192.0.2.1:8080", "192.0.2.1:8080"),
    ("redis", "2001:DB8::1", "2001:db8::1"),
    ("prometheus", "[2001:DB8::1]:9100", "[2001:db8::1]:9100"),
    ("prometheus", "[::FFFF:192.0.2.1]:9100", "[::ffff:192.0.2.1]:9100"),
]


@pytest.mark.parametrize(("consumer", "text", "expected"), CONSUMER_OK)
def test_format_for(consumer: a.Consumer, text: str, expected: str) -> None:
    assert format_for(consumer, parse_any(text)) == expected


def test_per_consumer_functions() -> None:
    e6 = Endpoint(V6("2001:db8::1"), 443)
    e4 = Endpoint(V4("192.0.2.1"), 80)
    for f in (a.url_authority, a.for_nginx, a.for_redis, a.for_prometheus, format_endpoint):
        assert f(e6) == "[2001:db8::1]:443"
        assert f(e4) == "192.0.2.1:80"
    assert a.for_exabgp(V6("2001:db8::1")) == "2001:db8::1"
    assert a.for_exabgp(IPv6Network("2001:db8::/64")) == "2001:db8::/64"
    assert a.for_redis(Address(V6("2001:db8::1"))) == "2001:db8::1"
    assert a.for_nginx(IPv4Network("10.0.0.0/8")) == "10.0.0.0/8"
    assert str(Endpoint(V6("fe80::1"), 22, "eth0")) == "[fe80::1%eth0]:22"
    assert str(Address(V6("fe80::1"), "eth0")) == "fe80::1%eth0"


ZONED = Endpoint(V6("fe80::1"), 443, "eth0")


@pytest.mark.parametrize(
    "write",
    [a.url_authority, a.for_nginx, a.for_redis, a.for_prometheus],
)
def test_zone_never_written_for_consumers(write: Callable[[Endpoint], str]) -> None:
    with pytest.raises(AddressError, match=r"^'\[fe80::1%eth0\]:443': a zone id cannot"):
        write(ZONED)


def test_zone_never_written_in_url() -> None:
    u = parse_url("http://[fe80::1%25eth0]:8080/x", allow_zone=True)
    with pytest.raises(AddressError, match="RFC 9844"):
        format_url(u)
    with pytest.raises(AddressError, match="zone id"):
        a.for_exabgp(Address(V6("fe80::1"), "eth0"))


@pytest.mark.parametrize(
    ("consumer", "text", "reason"),
    [
        ("url", "2001:db8::1", "an address without a port cannot be written for url"),
        ("url", "2001:db8::/64", "a prefix cannot be written for url"),
        ("nginx", "192.0.2.1", "add a port"),
        ("nginx", "2001:db8::1/64", "did you mean '2001:db8::/64'?"),
        ("exabgp", "[2001:db8::1]:179", "an endpoint cannot be written for exabgp"),
        ("exabgp", "10.0.0.1/8", "did you mean '10.0.0.0/8'?"),
        ("redis", "2001:db8::/64", "a prefix cannot be written for redis"),
        ("prometheus", "http://[::1]/", "a URL cannot be written for prometheus"),
        ("prometheus", "2001:db8::1", "add a port"),
        ("url", "[fe80::1%eth0]:80", "a zone id cannot be written in a URL"),
        ("url", "http://[fe80::1%25eth0]/", "a zone id cannot be written in a URL"),
        ("redis", "fe80::1%eth0", "a zone id cannot be written for Redis"),
    ],
)
def test_format_for_rejects(consumer: a.Consumer, text: str, reason: str) -> None:
    with pytest.raises(AddressError) as info:
        format_for(consumer, parse_any(text, allow_zone=True))
    assert reason in str(info.value)


def test_values_validated_when_built() -> None:
    with pytest.raises(AddressError, match="port must be"):
        Endpoint(V6("::1"), 0)
    with pytest.raises(AddressError, match="port must be"):
        Endpoint(V6("::1"), 65536)
    with pytest.raises(AddressError, match="only valid on an IPv6"):
        Address(V4("192.0.2.1"), "eth0")
    with pytest.raises(AddressError, match="invalid character '/' in zone id"):
        Address(V6("fe80::1"), "a/b")
    with pytest.raises(AddressError, match="zone id inside the ip object"):
        Address(V6("fe80::1%eth0"))
    with pytest.raises(TypeError):
        Address("::1")  # type: ignore[arg-type]
    with pytest.raises(AddressError, match="numeric host"):
        URL("http", "1.2.3")


# --- rejects ------------------------------------------------------------------------------------


def _quoted(text: str) -> str:
    import re

    return re.escape(repr(text))


P = Callable[[str], object]
REJECTS: list[tuple[P, str, str]] = [
    # structure of IPv6 text
    (parse_ip, "2001::dead::beef::1", "more than one '::'"),
    (parse_ip, "1:::2", "':::' is not valid"),
    (parse_ip, ":1::2", "starts with a single ':'"),
    (parse_ip, "1::2:", "ends with a single ':'"),
    (parse_ip, "1:2:3:4:5:6:7:8:9", "too many groups: 9 of 8"),
    (parse_ip, "1:2:3:4:5:6:7::8:9", "too many groups: 9 groups and a '::'"),
    (parse_ip, "1:2:3:4:5:6:7:8::", "too many groups: 8 groups and a '::'"),
    (parse_ip, "1:2:3", "too few groups: 3 of 8"),
    (parse_ip, "12345::1", "group '12345' has more than 4 hex digits"),
    (parse_ip, "2001:db8::g", "invalid character 'g' in IPv6 address"),
    (parse_ip, "2001:db8:: 1", "whitespace inside the IPv6 address"),
    (parse_ip, "1.2.3.4::", "embedded IPv4 address must be the last 32 bits"),
    (parse_ip, "::1.2.3.4:5", "embedded IPv4 address must be the last 32 bits"),
    (parse_ip, "1:2:3:4:5:6:7:1.2.3.4", "too many groups: 9 of 8"),
    (parse_ip, "::ffff:1.2.3.04", "embedded IPv4 octet '04' has a leading zero"),
    (parse_ip, "::ffff:1.2.3", "embedded IPv4 address needs 4 dotted octets"),
    # IPv4
    (parse_ip, "192.0.2.01", "IPv4 octet '01' has a leading zero"),
    (parse_ip, "192.0.2.256", "IPv4 octet '256' is out of range 0-255"),
    (parse_ip, "192.0.2", "IPv4 address needs 4 dotted octets, got 3"),
    (parse_ip, "192.0..2", "empty octet"),
    (parse_ip, "192.0.2.1.5", "needs 4 dotted octets, got 5"),
    (parse_ip, "example.com", "not an IPv4 or IPv6 address"),
    (parse_ip, "1\u0662.0.0.1", "not an IPv4 or IPv6 address"),
    # brackets
    (parse_ip, "[2001:db8::1", "unbalanced brackets: '[' without ']'"),
    (parse_ip, "2001:db8::1]", "unbalanced brackets: ']' without '['"),
    (parse_ip, "[[2001:db8::1]]", "unbalanced brackets"),
    (parse_ip, "[192.0.2.1]", "brackets are only for IPv6"),
    (parse_ip, "[]", "empty brackets"),
    (parse_endpoint, "[2001:db8::1:443", "unbalanced brackets: '[' without ']'"),
    (parse_endpoint, "2001:db8::1]:443", "unbalanced brackets: ']' without '['"),
    (parse_endpoint, "[2001:db8::1]]:443", "unbalanced brackets"),
    (parse_endpoint, "[192.0.2.1]:80", "brackets are only for IPv6; write '192.0.2.1:80'"),
    (parse_endpoint, "[2001:db8::1]443", "expected ':PORT' after ']'"),
    # ambiguity and missing parts
    (
        parse_endpoint,
        "2001:db8::1:443",
        "ambiguous: an IPv6 address with a port must be in brackets, e.g. '[2001:db8::1]:443'",
    ),
    (parse_endpoint, "fe80::1%eth0:22", "ambiguous"),
    (parse_endpoint, "::1", "missing port"),
    (parse_endpoint, "[2001:db8::1]", "missing port"),
    (parse_endpoint, "192.0.2.1", "missing port"),
    (parse_endpoint, "2001::dead::beef::1:443", "more than one '::'"),
    (parse_address, "[2001:db8::1]:443", "has a port"),
    (parse_address, "192.0.2.1:80", "has a port"),
    (parse_address, "2001:db8::/64", "is a prefix"),
    # ports
    (parse_endpoint, "192.0.2.1:65536", "port 65536 is out of range 1-65535"),
    (parse_endpoint, "[::1]:99999999999999999999", "out of range 1-65535"),
    (parse_endpoint, "[2001:db8::1]:0", "port 0 is out of range 1-65535"),
    (parse_endpoint, "[2001:db8::1]:", "empty port"),
    (parse_endpoint, "192.0.2.1:", "empty port"),
    (parse_endpoint, "192.0.2.1:http", "service names are not accepted"),
    (parse_endpoint, "192.0.2.1:+80", "port '+80' is not a decimal number"),
    (parse_endpoint, "192.0.2.1: 80", "port ' 80' is not a decimal number"),
    (parse_endpoint, "192.0.2.1:0x50", "not a decimal number"),
    (parse_endpoint, "192.0.2.1:\u0668\u0660", "not a decimal number"),
    (parse_endpoint, "[::1]:080", "port '080' has a leading zero"),
    (parse_endpoint, "192.0.2.1%eth0:80", "only valid on an IPv6 address"),
    # prefixes
    (parse_prefix, "2001:db8::/129", "prefix length 129 is out of range for IPv6 (0-128)"),
    (parse_prefix, "192.0.2.0/33", "prefix length 33 is out of range for IPv4 (0-32)"),
    (parse_prefix, "2001:db8::/-1", "prefix length '-1' is not a decimal number"),
    (parse_prefix, "2001:db8::/", "empty prefix length"),
    (parse_prefix, "2001:db8::/064", "has a leading zero"),
    (parse_prefix, "2001:db8::/6 4", "not a decimal number"),
    (parse_prefix, "2001:db8::/99999", "out of range"),
    (parse_prefix, "10.0.0.0/255.0.0.0", "netmasks are not accepted"),
    (parse_prefix, "2001:db8::", "missing prefix length"),
    (parse_prefix, "2001:db8::/64/64", "more than one '/'"),
    (parse_prefix, "[2001:db8::]/64", "brackets are not used around prefixes"),
    (parse_prefix, "fe80::%eth0/64", "zone id is not allowed in a prefix"),
    (parse_prefix, "2001:db8::1/64", "has host bits set; did you mean '2001:db8::/64'?"),
    (parse_prefix, "/64", "empty address"),
    (parse_interface, "2001:db8::1/129", "out of range"),
    # empty input and whitespace
    (parse_ip, "", "empty input"),
    (parse_ip, " ", "leading or trailing whitespace"),
    (parse_ip, " 2001:db8::1", "leading or trailing whitespace (not stripped"),
    (parse_endpoint, "[2001:db8::1]:443\n", "leading or trailing whitespace"),
    (parse_prefix, "\t2001:db8::/64", "leading or trailing whitespace"),
    (parse_url, "http://[::1]/ ", "leading or trailing whitespace"),
    # zones
    (parse_ip, "fe80::1%eth0", "zone id not allowed here"),
    (parse_address, "fe80::1%eth0", "zone id not allowed here"),
    (parse_endpoint, "[fe80::1%eth0]:80", "zone id not allowed here"),
    (parse_address, "192.0.2.1%eth0", "only valid on an IPv6 address"),
    (lambda t: parse_address(t, allow_zone=True), "fe80::1%", "empty zone id"),
    (lambda t: parse_address(t, allow_zone=True), "fe80::1%a b", "invalid character ' '"),
    (lambda t: parse_address(t, allow_zone=True), "fe80::1%a%b", "invalid character '%'"),
    (lambda t: parse_address(t, allow_zone=True), "%eth0", "empty address"),
    # URLs
    (parse_url, "2001:db8::1", "not a URL"),
    (parse_url, "http://2001:db8::1/", "an IPv6 address in a URL must be in brackets"),
    (parse_url, "http://[2001:db8::1/", "unbalanced brackets"),
    (parse_url, "http://[192.0.2.1]/", "only for IPv6"),
    (parse_url, "http://[v1.x]/", "IPvFuture"),
    (parse_url, "http://[fe80::1%eth0]/", "written '%25ZONE'"),
    (lambda t: parse_url(t, allow_zone=True), "http://[fe80::1%25]/", "empty zone id"),
    (parse_url, "http://[fe80::1%25eth0]/", "zone id not allowed here"),
    (parse_url, "http://user@[::1]/", "userinfo"),
    (parse_url, "http://[::1]:/", "empty port"),
    (parse_url, "http://[::1]:0/", "out of range"),
    (parse_url, "http://192.0.2.01/", "leading zero"),
    (parse_url, "http:///x", "empty host"),
    (parse_url, "http://a..b/", "empty label"),
    (parse_url, "http://-a/", "invalid host name label '-a'"),
    (parse_url, "1http://a/", "invalid URL scheme"),
    (parse_url, "http://a/b c", "whitespace or control character"),
    (parse_any, "2001:db8::1/64 ", "leading or trailing whitespace"),
    (parse_any, "[2001:db8::1]:", "empty port"),
    (parse_any, "1.2.3.4:http", "service names"),
]


@pytest.mark.parametrize(("parse", "text", "reason"), REJECTS)
def test_rejects(parse: P, text: str, reason: str) -> None:
    with pytest.raises(AddressError) as info:
        parse(text)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.text == text
    assert reason in err.reason
    assert str(err) == f"{text!r}: {err.reason}"


def test_error_message_truncates_long_input() -> None:
    text = "1" * 1000 + "::"
    with pytest.raises(AddressError) as info:
        parse_ip(text)
    assert len(str(info.value)) < 200
    assert info.value.text == text


def test_non_text_input() -> None:
    for parse in (parse_ip, parse_address, parse_endpoint, parse_prefix, parse_url, parse_any):
        with pytest.raises(AddressError, match="expected text, got int"):
            parse(80)  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------------------------

group = st.one_of(st.just(0), st.just(0), st.just(1), st.just(0xFFFF), st.integers(0, 0xFFFF))
groups8 = st.lists(group, min_size=8, max_size=8)
v6_int = st.one_of(
    groups8.map(lambda gs: int("".join(f"{g:04x}" for g in gs), 16)),
    st.integers(0, 2**128 - 1),
    st.integers(0, 2**32 - 1).map(lambda n: 0xFFFF << 32 | n),  # mapped
    st.integers(0, 2**32 - 1).map(lambda n: 0xFFFF << 64 | n),  # translated
    st.integers(0, 2**32 - 1).map(lambda n: 0x64FF9B << 96 | n),  # RFC 6052
)
v6 = v6_int.map(IPv6Address)
v4 = st.integers(0, 2**32 - 1).map(IPv4Address)
zone = st.from_regex(r"[A-Za-z0-9._~-]{1,15}", fullmatch=True)
addresses = st.one_of(
    v4.map(Address),
    st.builds(Address, v6, st.one_of(st.none(), zone)),
)
ports = st.integers(1, 65535)
endpoints = st.one_of(
    st.builds(Endpoint, v4, ports),
    st.builds(Endpoint, v6, ports, st.one_of(st.none(), zone)),
)


@st.composite
def networks(draw: st.DrawFn) -> a.IPNetwork:
    if draw(st.booleans()):
        return IPv6Network((draw(v6_int), draw(st.integers(0, 128))), strict=False)
    return IPv4Network((draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 32))), strict=False)


@st.composite
def interfaces(draw: st.DrawFn) -> a.IPInterface:
    if draw(st.booleans()):
        return ipaddress.IPv6Interface((draw(v6_int), draw(st.integers(0, 128))))
    return ipaddress.IPv4Interface((draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 32))))


def _reference_rfc5952(n: int) -> str:
    """Independent, loop-based RFC 5952 (§4 and §5) formatter used as an oracle."""
    gs = [(n >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    top = n >> 32
    mixed = top in (0xFFFF, 0xFFFF0000, 0x64FF9B << 64)
    count = 6 if mixed else 8
    best, best_len, i = -1, 1, 0
    while i < count:
        if gs[i] == 0:
            j = i
            while j < count and gs[j] == 0:
                j += 1
            if j - i > best_len:
                best, best_len = i, j - i
            i = j
        else:
            i += 1
    hexes = [f"{g:x}" for g in gs[:count]]
    if mixed:
        hexes += [str(IPv4Address(n & 0xFFFFFFFF))]
    if best < 0:
        return ":".join(hexes)
    left, right = ":".join(hexes[:best]), ":".join(hexes[best + best_len :])
    return f"{left}::{right}"


@given(v6_int)
@example(0)
@example(1)
@example(0xFFFF << 32)
def test_format_matches_reference(n: int) -> None:
    text = format_ip(IPv6Address(n))
    assert text == _reference_rfc5952(n)
    if (n >> 32) not in (0xFFFF, 0xFFFF0000, 0x64FF9B << 64):
        assert text == str(IPv6Address(n))  # 3.11 stdlib is RFC 5952 outside mixed ranges


@given(addresses)
def test_address_round_trip(addr: Address) -> None:
    text = format_address(addr)
    back = parse_address(text, allow_zone=True)
    assert back == addr
    assert format_address(back) == text
    if addr.zone is None:
        assert parse_ip(text) == addr.ip
        assert parse_address(f"[{text}]") == addr if ":" in text else True


@given(endpoints)
def test_endpoint_round_trip(e: Endpoint) -> None:
    text = format_endpoint(e)
    back = parse_endpoint(text, allow_zone=True)
    assert back == e
    assert format_endpoint(back) == text
    assert parse_any(text, allow_zone=True) == e


@given(networks())
def test_prefix_round_trip(net: a.IPNetwork) -> None:
    text = format_prefix(net)
    assert parse_prefix(text) == net
    assert format_prefix(parse_prefix(text)) == text
    assert parse_any(text) == net


@given(interfaces())
def test_interface_round_trip(iface: a.IPInterface) -> None:
    text = format_prefix(iface)
    assert parse_interface(text) == iface
    assert format_prefix(parse_interface(text)) == text
    assert format_value(parse_any(text)) == text


@st.composite
def spellings(draw: st.DrawFn) -> tuple[int, str]:
    """A non-canonical but valid spelling of an IPv6 address, and its value."""
    gs = draw(groups8)
    n = int("".join(f"{g:04x}" for g in gs), 16)
    texts = []
    for g in gs:
        h = f"{g:x}"
        h = "0" * draw(st.integers(0, 4 - len(h))) + h
        texts.append("".join(c.upper() if draw(st.booleans()) else c for c in h))
    zero_runs = [(i, j) for i in range(8) for j in range(i + 1, 9) if all(g == 0 for g in gs[i:j])]
    run = draw(st.one_of(st.none(), st.sampled_from(zero_runs))) if zero_runs else None
    dotted = draw(st.booleans()) and (run is None or run[1] <= 6)
    if dotted:
        texts[6:] = [str(IPv4Address(n & 0xFFFFFFFF))]
    if run is None:
        return n, ":".join(texts)
    i, j = run
    return n, ":".join(texts[:i]) + "::" + ":".join(texts[j:])


@given(spellings())
@example((1, "0:0:0:0:0:0:0.0.0.1"))
def test_non_canonical_spellings_normalize(case: tuple[int, str]) -> None:
    n, text = case
    assert parse_ip(text) == IPv6Address(n)
    assert format_ip(parse_ip(text)) == _reference_rfc5952(n)
    assert parse_ip(text.upper()) == IPv6Address(n)
    assert int(ipaddress.ip_address(text)) == n


@given(spellings(), ports)
def test_endpoint_fast_path_agrees_with_slow_path(case: tuple[int, str], port: int) -> None:
    text = f"[{case[1]}]:{port}"
    assert parse_endpoint(text) == a._parse_endpoint(text, False) == Endpoint(V6(case[0]), port)


ALPHABET = "0123456789abcdefABCDEF:.[]%/"
biased = st.text(alphabet=ALPHABET, max_size=45)
near_valid = st.one_of(
    endpoints.map(format_endpoint),
    addresses.map(format_address),
    networks().map(format_prefix),
).flatmap(
    lambda s: st.tuples(st.integers(0, len(s)), st.integers(0, 3), st.sampled_from(ALPHABET)).map(
        lambda t: s[: t[0]] + t[2] + s[t[0] + t[1] :]
    )
)
garbage = st.one_of(st.text(), biased, near_valid)

PARSERS: list[Callable[[str], object]] = [
    parse_ip,
    parse_address,
    lambda t: parse_address(t, allow_zone=True),
    parse_endpoint,
    lambda t: parse_endpoint(t, allow_zone=True),
    parse_prefix,
    lambda t: parse_prefix(t, strict=False),
    parse_interface,
    parse_url,
    lambda t: parse_url(t, allow_zone=True),
    parse_any,
    lambda t: parse_any(t, allow_zone=True),
]


@given(garbage)
@example("http://[")
@example("[%]:1")
@example("[:]:1")
@example("::/")
def test_garbage_in_only_address_error_out(text: str) -> None:
    for parse in PARSERS:
        try:
            value = parse(text)
        except AddressError as e:
            err = e
        else:
            assert value is not None
            continue
        assert err.text == text
        assert str(err).startswith(repr(text)[:50])


@given(st.text(alphabet="0123456789abcdefABCDEF:.", max_size=45))
@example("1:2:3:4:5:6:7::")
@example("::1:2:3:4:5:6:7")
@example("1.2.3.4")
def test_agrees_with_stdlib_on_plain_addresses(text: str) -> None:
    try:
        expected = ipaddress.ip_address(text)
    except ValueError:
        with pytest.raises(AddressError):
            parse_ip(text)
    else:
        assert parse_ip(text) == expected


@given(garbage)
def test_normalized_output_is_a_fixed_point(text: str) -> None:
    try:
        out = format_value(parse_any(text, allow_zone=True))
    except AddressError:
        return
    assert format_value(parse_any(out, allow_zone=True)) == out


@pytest.mark.parametrize(
    ("text", "name", "block"),
    [
        ("::/128", "the unspecified address", "::/128"),
        ("::1/128", "the loopback address", "::1/128"),
        ("::ffff:10.0.0.0/124", "IPv4-mapped space", "::ffff:0:0/96"),
        ("::ffff:203.0.113.0/124", "IPv4-mapped space", "::ffff:0:0/96"),  # not documentation
        ("100::/64", "discard-only space", "100::/64"),
        ("2001::/64", "Teredo space", "2001::/32"),
        ("2001:2::/64", "benchmarking space", "2001:2::/48"),
        ("2001:10::/64", "ORCHID space", "2001:10::/28"),
        ("2001:5::/64", "IETF protocol assignment space", "2001::/23"),
        ("2001:1::/124", "IETF protocol assignment space", "2001::/23"),  # around the anycasts
        ("2001:1fe::/48", "IETF protocol assignment space", "2001::/23"),
        ("2001:4::/32", "IETF protocol assignment space", "2001::/23"),  # AS112-v6 is only a /48
        ("2001::/16", "Teredo space", "2001::/32"),  # a pool that contains the lot
        ("fec0::/64", "site-local space", "fec0::/10"),
        ("fe80::/64", "link-local space", "fe80::/10"),
        ("ff02::/124", "multicast space", "ff00::/8"),
        ("fd00:1::/64", "unique local (ULA) space", "fc00::/7"),
        ("0.0.0.0/28", "'this network' space", "0.0.0.0/8"),
        ("127.0.0.0/28", "loopback space", "127.0.0.0/8"),
        ("169.254.0.0/28", "link-local space", "169.254.0.0/16"),
        ("224.0.0.0/28", "multicast space", "224.0.0.0/4"),
        ("240.0.0.0/28", "reserved space", "240.0.0.0/4"),
        ("10.1.0.0/28", "private space", "10.0.0.0/8"),
        ("172.16.0.0/28", "private space", "172.16.0.0/12"),
        ("192.168.0.0/28", "private space", "192.168.0.0/16"),
        ("100.64.0.0/28", "shared address space", "100.64.0.0/10"),
        ("8.0.0.0/6", "private space", "10.0.0.0/8"),  # a pool that only overlaps 10/8
        ("198.18.0.0/15", "benchmarking space", "198.18.0.0/15"),
        ("198.19.255.0/28", "benchmarking space", "198.18.0.0/15"),
        ("192.0.0.0/29", "IETF protocol assignment space", "192.0.0.0/24"),
        ("192.0.0.8/30", "IETF protocol assignment space", "192.0.0.0/24"),  # .9, .10 and more
    ],
)
def test_unreachable_space(text: str, name: str, block: str) -> None:
    found = a.unreachable_space(a.parse_prefix(text, strict=False))
    assert found is not None
    assert (found.name, a.format_prefix(found.block)) == (name, block)


@pytest.mark.parametrize(
    "text",
    [
        "2001:1::1/128",  # PCP anycast
        "2001:1::2/127",  # TURN and DNS-SD SRP anycast
        "2001:3::/32",  # AMT
        "2001:4:112::/48",  # AS112-v6
        "2001:20::/27",  # ORCHIDv2 and Drone Remote ID, side by side
        "2001:200::/23",  # just past the block
        "192.0.0.9/32",  # PCP anycast
        "192.0.0.10/32",  # TURN anycast
        "198.20.0.0/16",  # just past benchmarking
    ],
)
def test_global_carve_outs_of_special_blocks_are_reachable(text: str) -> None:
    assert a.unreachable_space(a.parse_prefix(text)) is None


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("fe80::/64", "is in link-local space (fe80::/10, RFC 4291)"),
        ("::/64", "overlaps the unspecified address (::/128, RFC 4291)"),
        ("::/128", "is the unspecified address (::/128, RFC 4291)"),
        (
            "100.64.0.0/28",
            "is in shared address space (100.64.0.0/10, carrier-grade NAT, RFC 6598)",
        ),
    ],
)
def test_describe_space(text: str, said: str) -> None:
    net = a.parse_prefix(text)
    found = a.unreachable_space(net)
    assert found is not None
    assert a.describe_space(net, found) == said


@pytest.mark.parametrize(
    ("text", "block"),
    [
        ("192.0.2.0/28", "192.0.2.0/24"),
        ("198.51.100.0/24", "198.51.100.0/24"),
        ("203.0.113.0/28", "203.0.113.0/24"),
        ("2001:db8:2fe::/124", "2001:db8::/32"),
        ("3fff:1::/64", "3fff::/20"),
    ],
)
def test_documentation_space(text: str, block: str) -> None:
    found = a.documentation_space(a.parse_prefix(text))
    assert found is not None
    assert a.format_prefix(found.block) == block
    assert a.unreachable_space(a.parse_prefix(text)) is None


@pytest.mark.parametrize("text", ["2a00:1450::/32", "2001:db9::/32", "198.20.0.0/15", "8.8.8.0/24"])
def test_global_space_is_neither(text: str) -> None:
    net = a.parse_prefix(text)
    assert a.unreachable_space(net) is None
    assert a.documentation_space(net) is None


def test_subnet_router_anycast_is_the_all_zero_host_part() -> None:
    assert a.is_subnet_router_anycast(IPv6Address("2001:db8:1:2::"))
    assert not a.is_subnet_router_anycast(IPv6Address("2001:db8:1:2::1"))
    assert a.is_subnet_router_anycast(IPv6Address("2001:db8:1:200::"), prefixlen=56)
    assert not a.is_subnet_router_anycast(IPv6Address("2001:db8:1:2::"), prefixlen=56)
