"""``controller.yaml``: the typed configuration of ``sixpod controller``."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, Strict, model_validator

from sixpod import addr
from sixpod.configtypes import ConfigModel, Endpoint, Seconds
from sixpod.errors import SixpodError
from sixpod.tenants import issuance
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


class AcmeConfig(_Model):
    """Certificates from an ACME CA (HTTP-01) for every attached domain without an upload."""

    enabled: bool = Field(default=False, description="order and renew certificates")
    directory: str = Field(
        default="https://acme-v02.api.letsencrypt.org/directory",
        pattern=r"^https?://\S+$",
        description="the CA's ACME directory URL",
    )
    contact: str | None = Field(
        default=None,
        pattern=r"^[^@\s:]+@[^@\s:]+$",
        description="an e-mail address the CA may write to about the account",
    )
    account_key: str = Field(
        default="/var/lib/sixpod/acme-account.key",
        description="PEM file of the account key (EC P-256), created 0600 when missing",
    )
    ca_bundle: str | None = Field(
        default=None,
        description="PEM file of the CAs trusted for the directory's HTTPS (a test CA such as "
        "pebble's); the system's store when unset",
    )
    check_interval: Annotated[float, Field(ge=1, le=86400)] = 60.0
    """Seconds between two passes over the domains when nothing is due sooner."""
    propagation_delay: Annotated[float, Field(ge=0, le=60)] = 2.0
    """Seconds to wait, once Redis holds a challenge, for the replicas on every edge."""
    order_timeout: Annotated[float, Field(ge=5, le=3600)] = 90.0
    """Seconds the CA may take to validate a challenge and issue."""
    renew_before_days: Annotated[float, Field(ge=1, le=365)] = 30.0
    """Days before a certificate expires its renewal starts."""
    backoff_min: Annotated[float, Field(ge=1, le=86400)] = 60.0
    """Seconds to wait after a first failure; doubled after each further one."""
    backoff_max: Annotated[float, Field(ge=1, le=7 * 86400)] = 86400.0
    """The longest wait between two attempts for one domain, in seconds."""

    @model_validator(mode="after")
    def _backoff_order(self) -> AcmeConfig:
        if self.backoff_min > self.backoff_max:
            raise ValueError("backoff_min: must not be above backoff_max")
        return self

    def policy(self) -> issuance.Policy:
        return issuance.Policy(
            renew_before=self.renew_before_days * issuance.DAY,
            backoff_min=self.backoff_min,
            backoff_max=self.backoff_max,
        )


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
    acme: AcmeConfig = AcmeConfig()
    access_log: bool = False
    max_body_bytes: Annotated[int, Strict(), Field(ge=1024, le=1 << 30)] = 4 * 1024 * 1024
    """Largest request body the API reads (413 above it, before parsing)."""

    @model_validator(mode="after")
    def _acme_needs_the_seal_key(self) -> ControllerConfig:
        if self.acme.enabled and not self.cert_seal_key:
            raise ValueError(
                "acme.enabled: certificates cannot be stored without cert_seal_key (the edge "
                "nodes' public sealing key, sixpod cert keygen)"
            )
        return self
