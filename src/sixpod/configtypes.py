"""Field types shared by every daemon's typed config (announcer, controller, Razor).

Address text goes through :mod:`sixpod.addr`, so configs accept and reject exactly what the
rest of sixpod does; the base model rejects unknown keys and is immutable.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, IPv6Network
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from sixpod import addr


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


class ConfigModel(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
