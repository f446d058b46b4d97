"""Change operations: the one vocabulary of the outbox, the Redis stream and the reader.

Every change to tenant state is a list of absolute operations (set this value, delete that
one), never increments, so applying a suffix of the stream on top of a fuzzy snapshot
converges to the same state. Each op is a small frozen dataclass here and a JSON array on
the wire (:func:`to_wire` / :func:`from_wire`), whose first element names it:

==========  =============================================  ==================================
op          arguments                                      Redis (prefix ``P``)
==========  =============================================  ==================================
``app``     name, owner, shard_seed, settings JSON text    ``P:app:NAME`` hash
``app-``    name                                           deletes ``P:app:NAME``, ``P:up:NAME``
``ep``      app, "[address]:port", weight, state           ``P:up:APP`` field -> "weight state"
``ep-``     app, "[address]:port"                          deletes that field
``dom``     hostname, app                                  ``P:dom:HOST`` string -> app
``dom-``    hostname                                       deletes ``P:dom:HOST``
``vip``     address, state, reason                         ``P:vip`` field -> "state reason"
``vip-``    address                                        deletes that field
``node``    name, state, reason                            ``P:node`` field -> "state reason"
``node-``   name                                           deletes that field
``cert``    domain, fingerprint, not_after (Unix s),       ``P:cert:DOMAIN`` hash ``fp``,
            chain PEM, sealed key                          ``not_after``, ``chain``, ``key``
``cert-``   domain                                         deletes ``P:cert:DOMAIN``
``acme``    token, key authorization                       ``P:acme:TOKEN`` string
``acme-``   token                                          deletes ``P:acme:TOKEN``
==========  =============================================  ==================================

A ``cert`` op never carries a private key in clear: only text sealed for the edge nodes
(:mod:`sixpod.tenants.sealed`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

# -- the ops ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppSet:
    KIND: ClassVar[str] = "app"
    name: str
    owner: str
    shard_seed: int
    settings: str
    """JSON text."""


@dataclass(frozen=True, slots=True)
class AppDeleted:
    KIND: ClassVar[str] = "app-"
    name: str


@dataclass(frozen=True, slots=True)
class EndpointSet:
    KIND: ClassVar[str] = "ep"
    app: str
    endpoint: str
    """``[address]:port``."""
    weight: int
    state: str


@dataclass(frozen=True, slots=True)
class EndpointDeleted:
    KIND: ClassVar[str] = "ep-"
    app: str
    endpoint: str


@dataclass(frozen=True, slots=True)
class DomainSet:
    KIND: ClassVar[str] = "dom"
    host: str
    app: str


@dataclass(frozen=True, slots=True)
class DomainDeleted:
    KIND: ClassVar[str] = "dom-"
    host: str


@dataclass(frozen=True, slots=True)
class VipSet:
    KIND: ClassVar[str] = "vip"
    address: str
    state: str
    reason: str


@dataclass(frozen=True, slots=True)
class VipDeleted:
    KIND: ClassVar[str] = "vip-"
    address: str


@dataclass(frozen=True, slots=True)
class NodeSet:
    KIND: ClassVar[str] = "node"
    name: str
    state: str
    reason: str


@dataclass(frozen=True, slots=True)
class NodeDeleted:
    KIND: ClassVar[str] = "node-"
    name: str


@dataclass(frozen=True, slots=True)
class CertSet:
    KIND: ClassVar[str] = "cert"
    domain: str
    fingerprint: str
    not_after: int
    chain: str
    sealed_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class CertDeleted:
    KIND: ClassVar[str] = "cert-"
    domain: str


@dataclass(frozen=True, slots=True)
class ChallengeSet:
    """An ACME HTTP-01 challenge every edge answers at /.well-known/acme-challenge/TOKEN."""

    KIND: ClassVar[str] = "acme"
    token: str
    key_authorization: str


@dataclass(frozen=True, slots=True)
class ChallengeDeleted:
    KIND: ClassVar[str] = "acme-"
    token: str


Op = (
    AppSet
    | AppDeleted
    | EndpointSet
    | EndpointDeleted
    | DomainSet
    | DomainDeleted
    | VipSet
    | VipDeleted
    | NodeSet
    | NodeDeleted
    | CertSet
    | CertDeleted
    | ChallengeSet
    | ChallengeDeleted
)

_TYPES: tuple[type[Any], ...] = (
    AppSet, AppDeleted, EndpointSet, EndpointDeleted, DomainSet, DomainDeleted, VipSet,
    VipDeleted, NodeSet, NodeDeleted, CertSet, CertDeleted, ChallengeSet, ChallengeDeleted,
)  # fmt: skip
_BY_KIND: dict[str, type[Any]] = {t.KIND: t for t in _TYPES}
_FIELDS: dict[str, tuple[str, ...]] = {t.KIND: tuple(f.name for f in fields(t)) for t in _TYPES}
_INTS = frozenset({"shard_seed", "weight", "not_after"})
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    k: tuple(int if f in _INTS else str for f in names) for k, names in _FIELDS.items()
}


# -- the wire -----------------------------------------------------------------------------


def to_wire(op: Op) -> list[Any]:
    return [op.KIND, *[getattr(op, f) for f in _FIELDS[op.KIND]]]


def from_wire(item: Any) -> Op:
    """The op a JSON array stands for; ValueError naming what is wrong (kind, arity, type)."""
    if not isinstance(item, list) or not item or not isinstance(item[0], str):
        raise ValueError(f"op: expected a JSON list starting with its kind, got {item!r:.60}")
    cls = _BY_KIND.get(item[0])
    if cls is None:
        raise ValueError(f"unknown op {item[0]!r}")
    types = _FIELD_TYPES[item[0]]
    args = item[1:]
    if len(args) != len(types):
        raise ValueError(f"op {item[0]!r}: {len(args)} arguments, expected {len(types)}")
    for a, t in zip(args, types, strict=True):
        if not isinstance(a, t) or isinstance(a, bool):
            raise ValueError(f"op {item[0]!r}: {a!r:.40} is not {t.__name__}")
    op: Op = cls(*args)
    return op


def dumps(op: Op) -> str:
    """One op as JSON text (an outbox row)."""
    return json.dumps(to_wire(op), separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Op:
    return from_wire(json.loads(text))


def encode(op_list: list[Op]) -> str:
    return json.dumps([to_wire(o) for o in op_list], separators=(",", ":"), ensure_ascii=False)


def decode(text: str | bytes) -> list[Op]:
    items = json.loads(text)
    if not isinstance(items, list):
        raise ValueError("ops: expected a JSON list of ops")
    return [from_wire(i) for i in items]


# -- makers -------------------------------------------------------------------------------


def app(name: str, owner: str, shard_seed: int, settings: dict[str, Any]) -> AppSet:
    text = json.dumps(
        settings, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False
    )
    return AppSet(name, owner, shard_seed, text)


app_deleted = AppDeleted
endpoint = EndpointSet
endpoint_deleted = EndpointDeleted
domain = DomainSet
domain_deleted = DomainDeleted
vip = VipSet
vip_deleted = VipDeleted
node = NodeSet
node_deleted = NodeDeleted
cert = CertSet
cert_deleted = CertDeleted
challenge = ChallengeSet
challenge_deleted = ChallengeDeleted


# -- coalescing ---------------------------------------------------------------------------


def identity(op: Op) -> tuple[str, ...]:
    """The object an op writes; two ops with the same identity: the later one wins.

    ``app`` and ``app-`` stay distinct: a deletion also clears the upstream list, which a
    later re-creation does not.
    """
    if isinstance(op, (AppSet, AppDeleted)):
        return (op.KIND, op.name)
    if isinstance(op, (EndpointSet, EndpointDeleted)):
        return ("ep", op.app, op.endpoint)
    return (op.KIND.rstrip("-"), getattr(op, _FIELDS[op.KIND][0]))


def coalesce(op_list: list[Op]) -> list[Op]:
    """Keep only the last op per object, in the order of those last ops.

    An app deletion also removes its upstream list, so endpoint ops of that app that come
    before its deletion are dropped; ones after it (the app re-created) are kept.
    """
    last: dict[tuple[str, ...], int] = {}
    app_gone: dict[str, int] = {}
    for i, op in enumerate(op_list):
        last[identity(op)] = i
        if isinstance(op, AppDeleted):
            app_gone[op.name] = i
    kept = []
    for i, op in enumerate(op_list):
        if last[identity(op)] != i:
            continue
        if isinstance(op, (EndpointSet, EndpointDeleted)) and app_gone.get(op.app, -1) > i:
            continue
        kept.append(op)
    return kept
