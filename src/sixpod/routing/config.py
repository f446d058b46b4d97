"""``announcer.yaml``: the typed configuration of ``sixpod announcer`` on one node."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, Strict, model_validator

from sixpod.configtypes import (
    IP,
    ConfigModel,
    Endpoint,
    IPv6,
    MetricsListen,
    Prefix6,
    Seconds,
)
from sixpod.errors import SixpodError
from sixpod.routing.errors import ConfigError
from sixpod.routing.health import Severity

Count = Annotated[int, Strict(), Field(ge=1, le=100)]
_Model = ConfigModel


class _Check(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    interval: Seconds = 1.0
    fast_interval: Seconds = 0.2
    timeout: Seconds = 0.5
    rise: Count = 3
    fall: Count = 2
    severity: Severity = Severity.DEGRADED

    @model_validator(mode="after")
    def _fast_not_slower(self) -> _Check:
        if self.fast_interval > self.interval:
            raise ValueError(f"fast_interval {self.fast_interval} exceeds interval {self.interval}")
        return self


class HttpCheck(_Check):
    """HTTP GET; passes on a 2xx status."""

    kind: Literal["http"]
    url: str
    host: str | None = Field(default=None, description="Host header, if not the URL's")


class TcpCheck(_Check):
    """TCP connect to an endpoint."""

    kind: Literal["tcp"]
    target: Endpoint


class RedisCheck(_Check):
    """Freshness of the local Redis replica: linked to its primary, lag below max_lag."""

    kind: Literal["redis"]
    target: Endpoint
    password_file: str | None = None
    max_lag: Seconds = Field(
        default=30.0,
        description="seconds since the last primary I/O (an idle primary pings its replicas "
        "every repl-ping-replica-period, 10 s by default: keep it well above)",
    )


class CommandCheck(_Check):
    """An external command; passes on exit status 0."""

    kind: Literal["command"]
    argv: tuple[str, ...] = Field(min_length=1)


Check = Annotated[HttpCheck | TcpCheck | RedisCheck | CommandCheck, Field(discriminator="kind")]


class FloorConfig(_Model):
    """Pod-wide safety floor, coordinated through the pod's Redis."""

    min_nodes: Annotated[int, Strict(), Field(ge=0, le=1000)] = 0
    redis: Endpoint | None = None
    password_file: str | None = None
    key: str = "sixpod:floor"
    ttl: Seconds = Field(default=5.0, description="a silent node stops counting after this")
    retry: Seconds = 1.0

    @model_validator(mode="after")
    def _redis_needed(self) -> FloorConfig:
        if self.min_nodes > 0 and self.redis is None:
            raise ValueError("floor.min_nodes > 0 needs floor.redis to coordinate through")
        return self


class SpeakerConfig(_Model):
    """How the announcer tells a hung ExaBGP (stopped, deadlocked) from a quiet one."""

    probe_interval: Seconds = Field(
        default=0.05, description="seconds between probes while no command is outstanding"
    )
    timeout: Seconds = Field(
        default=0.25, description="seconds without an answer, a command outstanding: hung"
    )


class BfdConfig(_Model):
    """The node's FRR bfdd session with the ToR: shut down (administratively) while ExaBGP is
    hung, so that the ToR drops the BGP session in BFD time rather than at the hold timer."""

    peer: IPv6 = Field(description="the ToR's address, as in bfdd.conf `peer`")
    local_address: IPv6 = Field(description="the node's address, as in bfdd.conf")
    vty_socket: str | None = Field(
        default=None, description="bfdd's vty socket directory (vtysh --vty_socket); FRR's if None"
    )
    vtysh: str = "vtysh"


class VipStatesConfig(_Model):
    """Where the announcer follows the pod's VIP states: the node's Redis replica, read
    through the tenant reader. A VIP blackholed there is withdrawn; the last set seen is
    kept in ``state_dir`` and applied at the next start, before the replica answers."""

    redis: Endpoint
    password_file: str | None = None
    prefix: str = "sixpod"


class AnnouncerConfig(_Model):
    config_error: ClassVar[type[SixpodError]] = ConfigError
    """What a bad file raises when loaded (:func:`sixpod.inventory.load.load_model`)."""

    node: str
    pod: str
    next_hop: IPv6 = Field(description="the node's global uplink address")
    node_prefix: Prefix6 | None = None
    vips: tuple[IP, ...] = ()
    loopback: str = Field(default="lo", description="interface that holds the VIPs")
    manage_loopback: bool = True
    drain_timeout: Seconds = 30.0
    drain_med: Annotated[int, Strict(), Field(ge=1, le=4294967295)] = 1000
    checks: tuple[Check, ...] = ()
    floor: FloorConfig = FloorConfig()
    state_dir: str = Field(default="/var/lib/sixpod/announcer", description="drain/disable flags")
    metrics: MetricsListen = ()
    """Where Prometheus scrapes ``/metrics``: the node's global address and ``[::1]``."""
    speaker: SpeakerConfig = SpeakerConfig()
    bfd: BfdConfig | None = Field(default=None, description="None: a hung ExaBGP is only logged")
    vip_states: VipStatesConfig | None = Field(
        default=None, description="None: VIP states (blackholed) are not followed"
    )
