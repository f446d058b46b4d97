"""Razor's live input as one value: the pool's VIPs with their states, the apps' shard seeds.

Pure (no I/O): the answer builder, the engine and attribution take it; :mod:`.feed` builds
it from the tenants data or a state file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType

from sixpod.tenants.model import VipState

__all__ = ["IPAddress", "RazorState"]

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True, slots=True)
class RazorState:
    """The pool's VIPs with their states, and the apps with their shard seeds."""

    vips: Mapping[IPAddress, VipState] = field(default_factory=lambda: MappingProxyType({}))
    apps: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    revision: int = 0

    def active(self) -> frozenset[IPAddress]:
        return frozenset(ip for ip, s in self.vips.items() if s is VipState.ACTIVE)
