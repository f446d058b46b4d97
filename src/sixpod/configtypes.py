"""Field types of every typed config: the daemons' (announcer, controller, Razor, edge) and
the inventory's (``pod.yaml``), in this one place.

Address text goes through :mod:`sixpod.addr`, so configs accept and reject exactly what the
rest of sixpod does; the base model rejects unknown keys and is immutable. The inventory's
types word their errors in YAML's terms (:func:`sixpod.words.describe_value`), as
``sixpod check`` reports them.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict

from sixpod import addr
from sixpod.words import describe_value


def _ip(value: Any) -> IPv4Address | IPv6Address:
    if not isinstance(value, str):
        raise ValueError(f"expected address text, got {value!r}")
    return addr.parse_ip(value)


def _ipv6(value: Any) -> IPv6Address:
    ip = _ip(value)
    if not isinstance(ip, IPv6Address):
        raise ValueError(f"{value!r} is not an IPv6 address")
    return ip


def _prefix6(value: Any) -> IPv6Network:
    if not isinstance(value, str):
        raise ValueError(f"expected prefix text, got {value!r}")
    net = addr.parse_prefix(value)
    if not isinstance(net, IPv6Network):
        raise ValueError(f"{value!r} is not an IPv6 prefix")
    return net


def _endpoint(value: Any) -> addr.Endpoint:
    if not isinstance(value, str):
        raise ValueError(f"expected host:port text, got {value!r}")
    return addr.parse_endpoint(value)


IP = Annotated[IPv4Address | IPv6Address, BeforeValidator(_ip)]
IPv6 = Annotated[IPv6Address, BeforeValidator(_ipv6)]
Prefix6 = Annotated[IPv6Network, BeforeValidator(_prefix6)]
Endpoint = Annotated[addr.Endpoint, BeforeValidator(_endpoint)]
Seconds = Annotated[float, Field(gt=0, le=3600)]


def _one_or_many(value: Any) -> Any:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else value


def _distinct(endpoints: tuple[addr.Endpoint, ...]) -> tuple[addr.Endpoint, ...]:
    if len(set(endpoints)) != len(endpoints):
        raise ValueError("an endpoint is listed more than once")
    return endpoints


MetricsListen = Annotated[
    tuple[Endpoint, ...], BeforeValidator(_one_or_many), AfterValidator(_distinct)
]
"""Where a daemon serves Prometheus ``/metrics``: one ``[address]:port`` or a list (the
rendered configs name the node's global IPv6 address and ``[::1]``); empty: no metrics."""

# -- DNS (Razor) ----------------------------------------------------------------------------

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DNS_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


def _dns_name(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a DNS name, got {value!r}")
    name = value.lower().removesuffix(".")
    if not _DNS_NAME.fullmatch(name) or len(name) > 253:
        raise ValueError(f"{value!r} is not a valid DNS name (letters, digits, '-', dots)")
    return name


DomainName = Annotated[str, BeforeValidator(_dns_name)]
"""A DNS name, lowercased, without the trailing dot."""
Ttl = Annotated[int, Strict(), Field(ge=0, le=2147483647)]
"""Seconds, as a DNS TTL (RFC 2181 8)."""

# -- the inventory (pod.yaml) ---------------------------------------------------------------

NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected {what}, got {describe_value(value)}")
    return value


def _name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use lowercase letters, digits and '-', "
            "1-63 characters, not starting or ending with '-'"
        )
    return value


def _ipv6_prefix(value: Any) -> IPv6Network:
    net = addr.parse_prefix(_text(value, "an IPv6 prefix (2001:db8::/48)"), strict=True)
    if not isinstance(net, IPv6Network):
        raise ValueError(f"{value!r} is an IPv4 prefix; an IPv6 prefix is needed here")
    return net


def _ipv4_prefix(value: Any) -> IPv4Network:
    net = addr.parse_prefix(_text(value, "an IPv4 prefix (192.0.2.0/24)"), strict=True)
    if not isinstance(net, IPv4Network):
        raise ValueError(f"{value!r} is an IPv6 prefix; an IPv4 prefix is needed here")
    return net


def _ipv6_address(value: Any) -> IPv6Address:
    ip = addr.parse_ip(_text(value, "an IPv6 address (2001:db8::1)"))
    if not isinstance(ip, IPv6Address):
        raise ValueError(f"{value!r} is an IPv4 address; an IPv6 address is needed here")
    return ip


def _ipv6_interface(value: Any) -> IPv6Interface:
    iface = addr.parse_interface(_text(value, "an IPv6 address and length (2001:db8::1/64)"))
    if not isinstance(iface, IPv6Interface):
        raise ValueError(f"{value!r} is IPv4; an IPv6 address with its prefix length is needed")
    return iface


def _ipv6_endpoint(value: Any) -> addr.Endpoint:
    ep = addr.parse_endpoint(_text(value, "an IPv6 endpoint ([2001:db8::2]:6379)"))
    if not isinstance(ep.ip, IPv6Address):
        raise ValueError(f"{value!r} is IPv4; the pod's control plane is IPv6: [IPv6]:port")
    return ep


def _asn(value: int) -> int:
    if not 1 <= value <= 4294967294:
        raise ValueError(f"{value} is not a valid AS number (1-4294967294)")
    return value


Int = Annotated[int, Strict()]
Name = Annotated[str, Strict(), AfterValidator(_name)]
IPv6Prefix = Annotated[IPv6Network, BeforeValidator(_ipv6_prefix)]
IPv4Prefix = Annotated[IPv4Network, BeforeValidator(_ipv4_prefix)]
IPv6Addr = Annotated[IPv6Address, BeforeValidator(_ipv6_address)]
IPv6Iface = Annotated[IPv6Interface, BeforeValidator(_ipv6_interface)]
IPv6Endpoint = Annotated[addr.Endpoint, BeforeValidator(_ipv6_endpoint)]
ASN = Annotated[int, Strict(), AfterValidator(_asn)]
MTU = Annotated[int, Strict(), Field(ge=1280, le=65535, description="IP MTU in bytes")]


class ConfigModel(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
