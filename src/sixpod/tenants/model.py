"""Tenant values as the edge and Razor see them: immutable, typed, validated when built.

These are what the reader library hands to its consumers (the edge agent, Razor) and what the
publisher writes to Redis; the controller's store keeps the same values in SQL and returns
them in the records below, with the revision that last wrote each (its ETag).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType
from typing import Any

from sixpod import addr

IPAddress = IPv4Address | IPv6Address

BODY_LIMIT_SETTING = "max_body_bytes"
"""The app setting the edge enforces as the app's own request body limit (bytes)."""
BODY_LIMIT_MAX = 1 << 40
HTTPS_REDIRECT_SETTING = "https_redirect"
"""The app setting (true/false) that has the edge answer plain HTTP with a 308 to HTTPS."""
HSTS_SETTING = "hsts_max_age"
"""The app setting: seconds of ``Strict-Transport-Security`` on its HTTPS answers (0 sends
``max-age=0``, which tells browsers to forget the policy; absent: no header)."""
HSTS_MAX = 2 * 365 * 86400

# The bounds of what a tenant may store, defined once: the API's request models state them
# (so the OpenAPI document shows them) and the store enforces them for every caller.
TEXT_MAX = 200
"""Characters of one line of text: an app's owner, the reason for a VIP's or node's state."""
SHARD_SEED_MAX = 2**31 - 1
PORT_MIN, PORT_MAX = 1, 65535
WEIGHT_MIN, WEIGHT_MAX, WEIGHT_DEFAULT = 1, 1000, 100
"""An endpoint's share of its app's requests, relative to its siblings'."""
PAGE_MAX = 1000
"""Items in one page of a listing."""


class VipState(enum.StrEnum):
    """Whether Razor may hand out a VIP. Only ``active`` VIPs appear in answers."""

    ACTIVE = "active"
    DRAINED = "drained"  # pulled from DNS answers; still routed for clients that cached it
    BLACKHOLED = "blackholed"  # pulled from DNS answers; under attack


class EndpointState(enum.StrEnum):
    """Whether the edge may send a request to a container."""

    UP = "up"
    DRAINING = "draining"  # finishes what it has; gets no new requests
    DOWN = "down"


class NodeState(enum.StrEnum):
    ACTIVE = "active"
    DRAINED = "drained"  # its endpoints get no new requests


@dataclass(frozen=True, slots=True)
class Vip:
    address: IPAddress
    state: VipState = VipState.ACTIVE
    reason: str = ""


@dataclass(frozen=True, slots=True)
class App:
    """An application. ``shard_seed`` picks its Razor shuffle shard; bumping it re-shards."""

    name: str
    owner: str = ""
    shard_seed: int = 0
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A container's ``[address]:port`` on a node, with its weight (1-1000) and state."""

    address: IPv6Address
    port: int
    weight: int = WEIGHT_DEFAULT
    state: EndpointState = EndpointState.UP


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    state: NodeState = NodeState.ACTIVE
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Cert:
    """A domain's certificate as published: the chain (PEM, leaf first) and its private key
    sealed for the edge nodes (:mod:`sixpod.tenants.sealed`); never the key in clear."""

    domain: str
    fingerprint: str
    not_after: int
    chain: str
    sealed_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Changed:
    """What one applied stream entry (or a resynchronisation) changed, for listeners.

    ``resync`` means the whole state was replaced: a consumer should rebuild everything.
    """

    revision: int
    apps: frozenset[str] = frozenset()  # app records or their upstream lists
    domains: frozenset[str] = frozenset()
    vips: bool = False
    nodes: bool = False
    resync: bool = False
    certs: frozenset[str] = frozenset()
    challenges: frozenset[str] = frozenset()  # ACME HTTP-01 tokens


# -- what the controller's store returns ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppRecord:
    """An app as stored, and the revision that last wrote it."""

    app: App
    revision: int


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """An endpoint as stored: its app, the node whose /64 holds it, the last revision."""

    app: str
    endpoint: Endpoint
    node: str
    revision: int

    @property
    def text(self) -> str:
        """``[address]:port``, the endpoint's name in the API, the ops and Redis."""
        return f"[{addr.format_ip(self.endpoint.address)}]:{self.endpoint.port}"


@dataclass(frozen=True, slots=True)
class DomainRecord:
    """A hostname (canonical A-labels, maybe ``*.``) attached to an app."""

    name: str
    app: str
    revision: int


@dataclass(frozen=True, slots=True)
class VipRecord:
    vip: Vip
    revision: int


@dataclass(frozen=True, slots=True)
class NodeRecord:
    node: Node
    revision: int


@dataclass(frozen=True, slots=True)
class CertInfo:
    """A stored certificate's public facts (never its key) and where it came from."""

    domain: str
    names: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    issuer: str
    fingerprint: str
    """SHA-256 of the leaf (DER), hex."""
    key_type: str
    chain_length: int
    source: str
    """``upload`` or ``acme``."""
    stored_at: float
    """Unix seconds."""


@dataclass(frozen=True, slots=True)
class Challenge:
    """An ACME HTTP-01 challenge the edges answer while an order for ``domain`` is open."""

    token: str
    key_authorization: str
    domain: str
    created_at: float
    """Unix seconds."""
