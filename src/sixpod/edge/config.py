"""``edge.yaml``: the edge agent's typed config (one per edge node)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from sixpod.configtypes import ConfigModel, Endpoint, MetricsListen, Seconds
from sixpod.edge.errors import ConfigError
from sixpod.errors import SixpodError


class RedisSection(ConfigModel):
    address: Endpoint
    """The node's local Redis replica, ``[::1]:6379``."""
    password_file: str | None = None
    prefix: str = "sixpod"


class TlsSection(ConfigModel):
    listen: tuple[Endpoint, ...] = Field(min_length=1)
    """Where HTTPS is served: port 443 of every VIP of the node (one listener per VIP)."""
    seal_key: str
    """The pod's private key-sealing key (``sixpod cert keygen``; root only, 0600): opens
    the certificates' private keys published sealed for the edge nodes."""
    certs_dict: str = Field(default="512m", pattern=r"^([1-9][0-9]{0,5}m|[1-9][0-9]{3,8}k)$")
    """Size of nginx's certificate table (``1m`` or more; about 2.2 KB per certificate)."""
    worker_cache: int = Field(default=20000, ge=100, le=1_000_000)
    """Parsed certificates each nginx worker keeps (LRU)."""
    ticket_rotate: Annotated[float, Field(ge=60, le=86400)] = 21600.0
    """Seconds between session ticket key rotations (each a reload of nginx; three keys
    are kept, so a ticket resumes for up to twice this)."""
    chunk_certs: int = Field(default=500, ge=1, le=10000)
    """Certificates per admin request."""


class EdgeConfig(ConfigModel):
    config_error: ClassVar[type[SixpodError]] = ConfigError
    """What a bad file raises when loaded (:func:`sixpod.inventory.load.load_model`)."""

    node: str
    listen: tuple[Endpoint, ...] = Field(min_length=1)
    """Where HTTP is served: port 80 of every VIP of the node (one listener per VIP)."""
    health: Endpoint
    """The health and status server; the announcer checks ``/healthz`` here."""
    run_dir: str
    """nginx's pid, temp files and the admin socket's 0700 directory."""
    nginx_conf: str
    """The generated nginx.conf the agent starts nginx with."""
    lua_dir: str
    """Where the agent installs its ``sixpod_edge.lua`` for nginx to load."""
    access_log: str
    error_log: str
    nginx: tuple[str, ...] = Field(default=("/usr/sbin/nginx",), min_length=1)
    """The command that runs nginx (a prefix such as ``ip netns exec NS`` is allowed)."""
    nonlocal_bind: bool = True
    """Set ``ip_nonlocal_bind`` where nginx runs, so it binds VIPs not (yet) on ``lo``."""
    workers: int = Field(default=2, ge=1, le=64)
    redis: RedisSection
    body_limit: str = Field(default="16m", pattern=r"^[0-9]{1,6}[km]?$")
    """Largest request body nginx accepts (nginx size text)."""
    conn_per_client: int = Field(default=256, ge=1, le=100000)
    """Concurrent connections one client address may hold."""
    upstream_timeout: Seconds = 30.0
    """Seconds to wait for an endpoint's response before a 504."""
    connect_timeout: Seconds = 2.0
    check_interval: Seconds = 1.0
    """Seconds between checks that nginx still holds this agent's state."""
    stats_interval: Seconds = 10.0
    """Seconds between reads of nginx's request counters (what the metrics show)."""
    chunk_apps: int = Field(default=200, ge=1, le=10000)
    """Apps per admin request during a full push (keeps each under ~5 ms in nginx)."""
    metrics: MetricsListen = ()
    """Where Prometheus scrapes the agent (``/metrics``): one endpoint or a list; none when
    empty (rendered: the node's global address and ``[::1]``)."""
    hosts_dict: str = Field(default="64m", pattern=r"^[0-9]{1,6}[km]?$")
    """Size of each of the two Host -> app tables (nginx size text)."""
    apps_dict: str = Field(default="256m", pattern=r"^[0-9]{1,6}[km]?$")
    """Size of each of the two app -> endpoints tables."""
    max_headers: int = Field(default=100, ge=8, le=1000)
    """Header fields a request may carry; more is a 431."""
    eject_after: int = Field(default=3, ge=1, le=100)
    """Consecutive connect failures or timeouts that eject an endpoint."""
    eject_for: Seconds = 10.0
    """Seconds an ejected endpoint rests (with +-20% jitter)."""
    retry_ratio: float = Field(default=0.2, ge=0.0, le=1.0)
    """Retry budget: retries allowed per request, on average (Envoy's budget)."""
    retry_burst: int = Field(default=10, ge=0, le=1000)
    """Retries a worker may spend at once before the budget refills."""
    drain_timeout: Seconds = 600.0
    """Seconds old workers keep serving their connections (websockets, downloads) after a
    reload before nginx closes them."""
    tls: TlsSection | None = None
    """HTTPS on 443 with certificates chosen by SNI; none: HTTP only."""
