"""``controller.yaml``: the typed configuration of ``sixpod controller``."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, Strict

from sixpod import addr
from sixpod.configtypes import ConfigModel, Endpoint, Seconds
from sixpod.errors import SixpodError
from sixpod.tenants.errors import ConfigError
from sixpod.tenants.guard import GuardLimits

_Model = ConfigModel


class RedisConfig(_Model):
    address: Endpoint = Field(description="the Redis primary, [address]:port")
    password_file: str = Field(description="file holding the Redis password (required)")
    prefix: str = Field(default="sixpod", pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")


class PublisherConfig(_Model):
    """The publisher's tunables: the ``publisher`` section of ``controller.yaml``, extended
    by :class:`sixpod.tenants.publisher.PublisherSettings` with what the controller wires in."""

    debounce: Annotated[float, Field(ge=0, le=10)] = 0.005
    """Seconds the oldest unpublished change may wait for more to coalesce with it."""
    batch: Annotated[int, Strict(), Field(ge=1, le=50_000)] = 5000
    """Most outbox rows in one Redis write."""
    poll: Seconds = 0.1
    """Seconds between looks at the outbox when not woken by a local commit."""
    lease: Seconds = 5.0
    """Seconds a lease lasts; renewed every third of that."""
    stream_length: Annotated[int, Strict(), Field(ge=1000)] = 100_000
    """Approximate entries kept in the Redis stream (readers further behind rebuild)."""
    outbox_keep: Annotated[int, Strict(), Field(ge=1000)] = 1_000_000
    """Revisions kept in the store's outbox behind what is published."""


class ControllerConfig(_Model):
    config_error: ClassVar[type[SixpodError]] = ConfigError
    """What a bad file raises when loaded (:func:`sixpod.inventory.load.load_model`)."""

    listen: tuple[Endpoint, ...] = Field(
        default=(addr.parse_endpoint("[::1]:8700"),),
        min_length=1,
        description="addresses the API listens on, IPv6 and IPv4",
    )
    token_file: str = Field(description="file holding the API bearer token (>= 16 characters)")
    database: str = Field(
        default="sqlite:////var/lib/sixpod/controller.db",
        description="SQLAlchemy URL: sqlite:///PATH or postgresql+psycopg://...",
    )
    lock: str = Field(description="the pod's pod.lock: node /64s and the VIP pool")
    redis: RedisConfig
    publisher: PublisherConfig = PublisherConfig()
    guard: GuardLimits = GuardLimits()
    cert_seal_key: str | None = Field(
        default=None,
        description="the edge nodes' public sealing key (sixpod cert keygen); without it, "
        "no certificate can be stored",
    )
    access_log: bool = False
    max_body_bytes: Annotated[int, Strict(), Field(ge=1024, le=1 << 30)] = 4 * 1024 * 1024
    """Largest request body the API reads (413 above it, before parsing)."""
