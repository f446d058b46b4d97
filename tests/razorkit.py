"""Shared builders for Razor's unit tests: a small config and states around it."""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import ip_address
from types import MappingProxyType
from typing import Any

import dns.message

from sixpod.razor.config import RazorConfig
from sixpod.razor.engine import Engine
from sixpod.razor.state import IPAddress, RazorState
from sixpod.tenants.model import VipState

V4 = [ip_address(f"198.51.100.{i}") for i in range(1, 41)]
V6 = [ip_address(f"2001:db8:ffff::{i:x}") for i in range(1, 41)]
POOL: list[IPAddress] = [*V4, *V6]


def config(**over: Any) -> RazorConfig:
    base: dict[str, Any] = {
        "zone": "route.example.net",
        "nameservers": [
            {"name": "ns1.dns.route.example.net", "addresses": ["2001:db8:53::1", "192.0.2.53"]},
            {"name": "ns2.example.org"},
        ],
        "answers": 4,
        "shard_size": 8,
        "customer_zones": [
            {"name": "shop.example", "app": "shop"},
            {"name": "x.example", "app": "gone"},
        ],
        "pool": {"vips": [str(ip) for ip in POOL]},
        "listen": ["127.0.0.1:5353"],
        "rrl": None,  # the tests ask one address many times; RRL has tests of its own
    }
    base.update(over)
    return RazorConfig.model_validate(base)


def state(
    apps: Mapping[str, int] | None = None,
    pulled: Mapping[IPAddress, VipState] | None = None,
    pool: list[IPAddress] | None = None,
    revision: int = 1,
) -> RazorState:
    vips = dict.fromkeys(pool or POOL, VipState.ACTIVE)
    vips.update(pulled or {})
    return RazorState(
        MappingProxyType(vips),
        MappingProxyType(dict(apps if apps is not None else {"shop": 1, "blog": 2})),
        revision,
    )


def ask(engine: Engine, name: str, rdtype: str = "A", *, host: str = "192.0.2.1", now: float = 0.0,
        tcp: bool = False, **kw: Any) -> dns.message.Message:  # fmt: skip
    q = dns.message.make_query(name, rdtype, **kw)
    out = engine.respond(q.to_wire(), host, now, tcp)
    assert out is not None
    r = dns.message.from_wire(out)
    assert r.id == q.id
    return r
