"""``razor.yaml``: the one typed configuration of ``sixpod razor``.

Every field says its unit; unknown keys are rejected; names are lowercase DNS names without
the trailing dot. Loaded with :func:`sixpod.inventory.load.load_model`, so errors point at
``FILE:LINE:COL``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict, model_validator

from sixpod import addr
from sixpod.configtypes import IP, ConfigModel, DomainName, Endpoint, Seconds, Ttl
from sixpod.tenants.config import RedisConfig
from sixpod.tenants.names import is_app_name

_Model = ConfigModel


class Soa(_Model):
    """The zone's SOA (RFC 1035 3.3.13); ``minimum`` is the negative-caching TTL (RFC 2308)."""

    mname: DomainName | None = Field(default=None, description="default: the first nameserver")
    rname: DomainName | None = Field(default=None, description="default: hostmaster.<zone>")
    serial: Annotated[int, Strict(), Field(ge=0, le=4294967295)] = 1
    refresh: Ttl = 3600
    retry: Ttl = 600
    expire: Ttl = 1209600
    minimum: Ttl = 30
    ttl: Ttl = 3600


class NameServer(_Model):
    """One NS of the zones; ``addresses`` are its glue (needed when it lies inside the zone)."""

    name: DomainName
    addresses: tuple[IP, ...] = ()


class CustomerZone(_Model):
    """A customer domain hosted here: apex A/AAAA from the app's shard, ``www`` a CNAME."""

    name: DomainName
    app: str
    www: bool = Field(default=True, description="serve www.<name> CNAME <app>.<zone>")


class Pool(_Model):
    """The VIP pool: the pod's ``pod.lock`` or an explicit list (exactly one of them)."""

    lock: str | None = Field(default=None, description="path of pod.lock")
    vips: tuple[IP, ...] = ()

    @model_validator(mode="after")
    def _one(self) -> Pool:
        if (self.lock is None) == (not self.vips):
            raise ValueError("give exactly one of pool.lock and pool.vips")
        if len(set(self.vips)) != len(self.vips):
            raise ValueError("pool.vips lists an address twice")
        return self


class Rrl(_Model):
    """Response rate limiting per client prefix and answer (BIND's RRL model)."""

    responses_per_second: Annotated[float, Field(gt=0, le=1e6)] = 20.0
    burst: Annotated[float, Field(ge=1, le=1e6)] = Field(
        default=40.0, description="responses a quiet client prefix may get at once"
    )
    slip: Annotated[int, Strict(), Field(ge=0, le=10)] = Field(
        default=2, description="every slip-th limited response is sent truncated; 0: none"
    )
    ipv4_prefix: Annotated[int, Strict(), Field(ge=8, le=32)] = 24
    ipv6_prefix: Annotated[int, Strict(), Field(ge=16, le=128)] = 56
    max_entries: Annotated[int, Strict(), Field(ge=100, le=10_000_000)] = 200_000


class RazorConfig(_Model):
    zone: DomainName = Field(description="the route zone; its apex is the shared name")
    nameservers: tuple[NameServer, ...] = Field(min_length=1)
    soa: Soa = Soa()
    ttl: Ttl = Field(default=30, description="seconds, for the A/AAAA answers")
    answers: Annotated[int, Strict(), Field(ge=1, le=64)] = Field(
        default=8, description="k: VIPs per family in one answer"
    )
    shard_size: Annotated[int, Strict(), Field(ge=1, le=512)] = Field(
        default=16, description="S: VIPs per family in an app's shuffle shard"
    )
    max_overlap: Annotated[int, Strict(), Field(ge=0, le=512)] | None = Field(
        default=None, description="cap on the VIPs two apps' shards share, per family"
    )
    fallback: Literal["pool", "nodata"] = Field(
        default="pool",
        description="fewer than k healthy shard members: fill from the pool, or NODATA",
    )
    permutations: Annotated[int, Strict(), Field(ge=1, le=64)] = Field(
        default=8, description="random orders kept per answer set; power of two"
    )
    reshuffle_interval: Seconds = Field(default=1.0, description="seconds between new orders")
    customer_zones: tuple[CustomerZone, ...] = ()
    pool: Pool
    state_file: str | None = Field(default=None, description="JSON/YAML: VIP states and apps")
    tenants: RedisConfig | None = Field(
        default=None,
        description="follow VIP states and apps live from the local Redis replica "
        "(instead of state_file)",
    )
    state_poll: Seconds = Field(default=0.2, description="seconds between state file checks")
    listen: tuple[Endpoint, ...] = Field(
        default=(addr.parse_endpoint("[::]:53"), addr.parse_endpoint("0.0.0.0:53")),
        min_length=1,
    )
    workers: Annotated[int, Strict(), Field(ge=1, le=256)] = Field(
        default=1, description="processes sharing the sockets with SO_REUSEPORT; one per core"
    )
    max_udp_payload: Annotated[int, Strict(), Field(ge=512, le=4096)] = Field(
        default=1232, description="bytes; advertised in EDNS and never exceeded over UDP"
    )
    tcp_idle_timeout: Seconds = Field(
        default=10.0, description="seconds without a complete message; RFC 7766 6.2.3"
    )
    tcp_busy_idle_timeout: Seconds = Field(
        default=1.0,
        description="seconds; the idle timeout while over 75% of tcp_max_connections are "
        "open (tcp_idle_timeout if that is shorter)",
    )
    tcp_max_connections: Annotated[int, Strict(), Field(ge=1, le=100_000)] = Field(
        default=1000,
        description="open TCP connections per worker; a newcomer to a full worker closes "
        "the idlest connection of the client prefix that holds the most",
    )
    tcp_max_per_client: Annotated[int, Strict(), Field(ge=1, le=100_000)] = Field(
        default=100,
        description="open TCP connections per worker from one client prefix (rrl's "
        "ipv4_prefix / ipv6_prefix, /24 and /56 with rrl off); a newcomer past it closes "
        "that prefix's idlest connection; below tcp_max_connections",
    )
    rrl: Rrl | None = Field(
        default_factory=Rrl, description="response rate limiting; null turns it off"
    )
    cookies: bool = Field(default=True, description="answer DNS cookies (RFC 7873, 9018)")
    cookie_secret_file: str | None = Field(
        default=None, description="16+ bytes shared by every server of the anycast set"
    )
    metrics: Endpoint | None = Field(default=None, description="Prometheus, e.g. [::1]:9153")

    @model_validator(mode="after")
    def _consistent(self) -> RazorConfig:
        if self.permutations & (self.permutations - 1):
            raise ValueError(f"permutations must be a power of two, got {self.permutations}")
        if self.tenants is not None and self.state_file is not None:
            raise ValueError("give at most one of state_file and tenants")
        if self.answers > self.shard_size:
            raise ValueError(f"answers ({self.answers}) exceeds shard_size ({self.shard_size})")
        if self.tcp_max_per_client >= self.tcp_max_connections and self.tcp_max_connections > 1:
            raise ValueError(
                f"tcp_max_per_client ({self.tcp_max_per_client}) must be below "
                f"tcp_max_connections ({self.tcp_max_connections}), or one client prefix "
                "can hold every TCP connection of a worker"
            )
        names = [c.name for c in self.customer_zones]
        for n in names:
            if n == self.zone or n.endswith("." + self.zone) or self.zone.endswith("." + n):
                raise ValueError(f"customer zone {n} overlaps the route zone {self.zone}")
        if len(set(names)) != len(names):
            raise ValueError("a customer zone is listed twice")
        for z in self.customer_zones:
            if not is_app_name(z.app):
                raise ValueError(f"customer zone {z.name}: app {z.app!r} is not a DNS label")
        for ns in self.nameservers:
            inside = ns.name == self.zone or ns.name.endswith("." + self.zone)
            if inside and not ns.addresses:
                raise ValueError(f"nameserver {ns.name} is inside the zone and needs addresses")
        return self
