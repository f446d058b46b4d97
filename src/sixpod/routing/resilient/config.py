"""Configuration of ``sixpod tor-resilient`` (one ToR), typed and validated at load time."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, field_validator

from sixpod import addr
from sixpod.configtypes import MetricsListen
from sixpod.errors import SixpodError
from sixpod.routing.errors import ConfigError
from sixpod.routing.resilient.model import (
    _FRR_PROTOCOLS,
    _RESERVED_TABLES,
    DEFAULT_BUCKETS,
    DEFAULT_IDLE_TIMER,
    DEFAULT_UNBALANCED_TIMER,
    VIP,
    GroupSettings,
    Settings,
    _check_vip,
)

__all__ = [
    "TorResilientConfig",
    "VipField",
]


def _vip(value: Any) -> VIP:
    if isinstance(value, IPv4Network | IPv6Network):
        return _check_vip(value, "vip")
    if not isinstance(value, str):
        raise ValueError(f"expected a VIP address or host prefix, got {value!r}")
    net = addr.parse_prefix(value) if "/" in value else None
    if net is None:
        ip = addr.parse_ip(value)
        net = addr.parse_prefix(f"{value}/{ip.max_prefixlen}")
    return _check_vip(net, "vip")


VipField = Annotated[IPv4Network | IPv6Network, BeforeValidator(_vip)]
_Seconds = Annotated[int, Strict(), Field(ge=0, le=86400)]


class TorResilientConfig(BaseModel):
    """Configuration of ``sixpod tor-resilient`` (one ToR)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    config_error: ClassVar[type[SixpodError]] = ConfigError
    """What a bad file raises when loaded (:func:`sixpod.inventory.load.load_model`)."""

    vips: tuple[VipField, ...] = Field(description="VIPs to mirror: addresses or /32, /128")
    table: Annotated[int, Strict(), Field(ge=1, le=2**32 - 1)] = Field(
        default=1000, description="routing table of the helper's routes (not 253, 254, 255)"
    )
    rule_priority: Annotated[int, Strict(), Field(ge=1, le=32765)] = Field(
        default=1000, description="priority of the 'to VIP lookup table' rules (before main)"
    )
    protocol: Annotated[int, Strict(), Field(ge=5, le=255)] = Field(
        default=250, description="rtnetlink protocol number marking the helper's objects"
    )
    buckets: Annotated[int, Strict(), Field(ge=2, le=65535)] = Field(
        default=DEFAULT_BUCKETS,
        description="buckets per resilient group (well above the nodes per ToR)",
    )
    idle_timer: _Seconds = Field(
        default=DEFAULT_IDLE_TIMER,
        description="seconds a bucket must be idle before it moves to a new member",
    )
    unbalanced_timer: _Seconds = Field(
        default=DEFAULT_UNBALANCED_TIMER,
        description="seconds of imbalance before busy buckets move anyway; 0 = never",
    )
    interval: float = Field(
        default=1.0,
        ge=0.05,
        le=10.0,
        description="seconds between full syncs (route events wake the loop at once)",
    )
    settle: float = Field(
        default=0.01, ge=0.0, le=1.0, description="seconds to gather a burst of route events"
    )
    netns: str | None = Field(default=None, description="network namespace of the ToR")
    vty_socket: str | None = Field(default=None, description="FRR vty socket directory")
    vtysh: str = Field(default="vtysh", description="vtysh program")
    ip: str = Field(default="ip", description="iproute2 ip program")
    command_timeout: float = Field(default=5.0, gt=0, le=60, description="seconds per command")
    metrics: MetricsListen = Field(
        default=(),
        description="where Prometheus scrapes /metrics: one [address]:port or a list; "
        "rendered: the ToR's global address and [::1]",
    )
    set_hash_policy: bool = Field(
        default=True, description="set fib_multipath_hash_policy=1 (L4) at start"
    )

    @field_validator("vips")
    @classmethod
    def _unique(cls, vips: tuple[VIP, ...]) -> tuple[VIP, ...]:
        if len(set(vips)) != len(vips):
            raise ValueError("vips are listed more than once")
        return vips

    @field_validator("table")
    @classmethod
    def _table(cls, table: int) -> int:
        if table in _RESERVED_TABLES:
            raise ValueError(f"table {table} is reserved (local, main, default)")
        return table

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, protocol: int) -> int:
        if protocol in _FRR_PROTOCOLS:
            raise ValueError(f"protocol {protocol} belongs to FRR")
        return protocol

    def settings(self) -> Settings:
        return Settings(
            vips=frozenset(self.vips),
            table=self.table,
            priority=self.rule_priority,
            protocol=self.protocol,
            group=GroupSettings(self.buckets, self.idle_timer, self.unbalanced_timer),
        )
