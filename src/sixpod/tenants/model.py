"""Tenant values as the edge and Razor see them: immutable, typed, validated when built.

These are what the reader library hands to its consumers (the edge agent, Razor) and what the
publisher writes to Redis; the controller's store keeps the same values in SQL and returns
them in the records below, with the revision that last wrote each (its ETag). What a write
asks the store for (AppSpec, AppPatch, EndpointSpec, EndpointRef, VipSpec, NodeSpec) is
checked here, once, when built: the store takes only these.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType
from typing import Any, TypeVar

from sixpod import addr
from sixpod.tenants import names
from sixpod.tenants.errors import InvalidInput

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


# -- what a write asks the store for: validated when built, the one place input is checked --
#
# The API builds these from its request models (which state the same bounds, so that the
# OpenAPI document shows them); every other caller (the ACME issuer, the benchmarks, the
# tests) builds them too, and the store takes nothing else. What only the store can know
# (an app exists, an address lies in a node's /64 in pod.lock, a revision matches) it checks.

SETTINGS_MAX = 16384
"""Characters of an app's settings as JSON text."""
SETTINGS_DEPTH_MAX = 16


@dataclass(frozen=True, slots=True)
class AppSpec:
    """A new app. Its name is one DNS label, not a reserved LDH label
    (:func:`sixpod.tenants.names.app_name`); ``settings`` is kept as normalised JSON."""

    name: str
    owner: str = ""
    shard_seed: int = 0
    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        names.app_name(self.name)
        text_field(self.owner, "owner")
        _shard_seed(self.shard_seed)
        object.__setattr__(self, "settings", app_settings(self.settings))


@dataclass(frozen=True, slots=True)
class AppPatch:
    """A change to an app: each field given replaces the stored one; None leaves it."""

    owner: str | None = None
    shard_seed: int | None = None
    settings: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.owner is not None:
            text_field(self.owner, "owner")
        if self.shard_seed is not None:
            _shard_seed(self.shard_seed)
        if self.settings is not None:
            object.__setattr__(self, "settings", app_settings(self.settings))


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """An endpoint to add or update: a container's address (IPv6, never the unspecified or
    the Subnet-Router anycast address), its port, weight and state; ``node``, if given, must
    be the node whose /64 holds the address (the store checks that against pod.lock)."""

    address: IPv6Address
    port: int
    weight: int = WEIGHT_DEFAULT
    state: EndpointState = EndpointState.UP
    node: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.address, IPv6Address):
            raise InvalidInput(
                f"endpoint address {self.address!r}: expected an IPv6Address "
                "(EndpointSpec.parse takes text)"
            )
        names.container_ip(self.address)
        if not _is_int(self.port) or not PORT_MIN <= self.port <= PORT_MAX:
            raise InvalidInput(
                f"port: expected an integer {PORT_MIN}-{PORT_MAX}, got {self.port!r}"
            )
        if not _is_int(self.weight) or not WEIGHT_MIN <= self.weight <= WEIGHT_MAX:
            raise InvalidInput(
                f"weight: expected an integer {WEIGHT_MIN}-{WEIGHT_MAX}, got {self.weight!r}"
            )
        object.__setattr__(self, "state", _choice(EndpointState, self.state, "state"))
        if self.node is not None and not isinstance(self.node, str):
            raise InvalidInput(f"node: expected a node's name, got {self.node!r}")

    @classmethod
    def parse(
        cls,
        address: str,
        port: int,
        weight: int = WEIGHT_DEFAULT,
        state: EndpointState = EndpointState.UP,
        node: str | None = None,
    ) -> EndpointSpec:
        """The endpoint whose address is given as text."""
        return cls(names.ipv6_address(address), port, weight, state, node)


@dataclass(frozen=True, slots=True)
class EndpointRef:
    """An endpoint named by its address and port, as a removal names it."""

    address: IPv6Address
    port: int

    def __post_init__(self) -> None:
        if not isinstance(self.address, IPv6Address):
            raise InvalidInput(f"endpoint {self.address!r}: containers are IPv6-only")
        if not _is_int(self.port) or not PORT_MIN <= self.port <= PORT_MAX:
            raise InvalidInput(
                f"port: expected an integer {PORT_MIN}-{PORT_MAX}, got {self.port!r}"
            )

    @classmethod
    def parse(cls, text: str) -> EndpointRef:
        """``[address]:port``, the endpoint's name in the API."""
        try:
            e = addr.parse_endpoint(text)
        except addr.AddressError as err:
            raise InvalidInput(f"endpoint: {err}") from None
        if not isinstance(e.ip, IPv6Address):
            raise InvalidInput(f"endpoint {text!r}: containers are IPv6-only")
        return cls(e.ip, e.port)


@dataclass(frozen=True, slots=True)
class VipSpec:
    """A VIP of the pool set to a state, with the operator's reason."""

    address: IPAddress
    state: VipState
    reason: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.address, IPv4Address | IPv6Address):
            raise InvalidInput(f"VIP: expected an IPv4 or IPv6 address, got {self.address!r}")
        object.__setattr__(self, "state", _choice(VipState, self.state, "VIP state"))
        text_field(self.reason, "reason")

    @classmethod
    def parse(cls, address: str, state: VipState, reason: str = "") -> VipSpec:
        """The VIP whose address is given as text."""
        try:
            ip = addr.parse_ip(address)
        except addr.AddressError as e:
            raise InvalidInput(f"VIP: {e}") from None
        return cls(ip, state, reason)


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A node of pod.lock set to a state, with the operator's reason."""

    name: str
    state: NodeState
    reason: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise InvalidInput(f"node: expected a node's name, got {self.name!r}")
        object.__setattr__(self, "state", _choice(NodeState, self.state, "node state"))
        text_field(self.reason, "reason")


def text_field(value: str, what: str, *, limit: int = TEXT_MAX) -> str:
    """One line of printable text (owner, reason): no control characters, at most ``limit``."""
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{what}: expected text of at most {limit} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(f"{what}: control characters (line breaks, NUL) are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what}: not valid Unicode text") from None
    return value


def app_settings(settings: Mapping[str, Any]) -> Mapping[str, Any]:
    """An app's settings, checked and normalised (keys sorted, as JSON stores them): a JSON
    object of at most 16 KiB and 16 levels, no NUL, and the settings the edge enforces
    (body limit, HTTPS redirect, HSTS) of a value the edge would not ignore."""
    if not isinstance(settings, Mapping):
        raise InvalidInput("settings: expected a JSON object")
    settings = dict(settings)
    if _depth(settings, SETTINGS_DEPTH_MAX) > SETTINGS_DEPTH_MAX:
        raise InvalidInput(f"settings: nested deeper than {SETTINGS_DEPTH_MAX} levels")
    try:
        text = json.dumps(settings, sort_keys=True, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
    except ValueError as e:  # NaN/Infinity, or a lone surrogate (UnicodeEncodeError)
        raise InvalidInput(f"settings: not storable as JSON text: {e}") from None
    if len(text) > SETTINGS_MAX:
        raise InvalidInput(f"settings: {len(text)} characters of JSON, over the 16 KiB limit")
    where = _nul_in(settings, "settings")
    if where is not None:  # the JSON text has it escaped as \u0000: look at the values
        raise InvalidInput(f"{where}: holds a NUL character, which no text column can store")
    if BODY_LIMIT_SETTING in settings:  # the edge enforces it: a value it would ignore is wrong
        limit = settings[BODY_LIMIT_SETTING]
        if not _is_int(limit) or not 1 <= limit <= BODY_LIMIT_MAX:
            raise InvalidInput(
                f"settings.{BODY_LIMIT_SETTING}: expected a whole number of bytes from 1 to "
                f"{BODY_LIMIT_MAX}, got {json.dumps(limit)[:40]}"
            )
    if HTTPS_REDIRECT_SETTING in settings and not isinstance(
        settings[HTTPS_REDIRECT_SETTING], bool
    ):
        raise InvalidInput(
            f"settings.{HTTPS_REDIRECT_SETTING}: expected true or false, got "
            f"{json.dumps(settings[HTTPS_REDIRECT_SETTING])[:40]}"
        )
    if HSTS_SETTING in settings:
        age = settings[HSTS_SETTING]
        if not _is_int(age) or not 0 <= age <= HSTS_MAX:
            raise InvalidInput(
                f"settings.{HSTS_SETTING}: expected whole seconds from 0 (withdraws the policy) to "
                f"{HSTS_MAX}, got {json.dumps(age)[:40]}"
            )
    return MappingProxyType(json.loads(text))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shard_seed(seed: int) -> None:
    if not _is_int(seed) or not 0 <= seed <= SHARD_SEED_MAX:
        raise InvalidInput(f"shard_seed: expected an integer 0-{SHARD_SEED_MAX}, got {seed!r}")


E = TypeVar("E", bound=enum.StrEnum)


def _choice(kind: type[E], value: object, what: str) -> E:
    if isinstance(value, str) and value in kind._value2member_map_:
        return kind(value)
    choices = ", ".join(s.value for s in kind)
    raise InvalidInput(f"{what}: expected one of {choices}, got {value!r}")


def _depth(value: Any, limit: int) -> int:
    if limit < 0:
        return 1
    if isinstance(value, dict):
        return 1 + max((_depth(v, limit - 1) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v, limit - 1) for v in value), default=0)
    return 0


def _nul_in(value: Any, where: str) -> str | None:
    """The path of the first key or string holding a NUL, or None."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            if "\x00" in k:
                return f"{where} key {k!r}"
            found = _nul_in(v, f"{where}.{k}")
            if found is not None:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _nul_in(v, f"{where}[{i}]")
            if found is not None:
                return found
    return None
