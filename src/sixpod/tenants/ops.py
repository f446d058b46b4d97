"""Change operations: the one vocabulary of the outbox, the Redis stream and the reader.

Every change to tenant state is a list of absolute operations (set this value, delete that
one), never increments, so applying a suffix of the stream on top of a fuzzy snapshot
converges to the same state. Each op is a JSON array whose first element names it:

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
from typing import Any

Op = list[Any]


def app(name: str, owner: str, shard_seed: int, settings: dict[str, Any]) -> Op:
    text = json.dumps(
        settings, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False
    )
    return ["app", name, owner, shard_seed, text]


def app_deleted(name: str) -> Op:
    return ["app-", name]


def endpoint(app_name: str, endpoint_text: str, weight: int, state: str) -> Op:
    return ["ep", app_name, endpoint_text, weight, state]


def endpoint_deleted(app_name: str, endpoint_text: str) -> Op:
    return ["ep-", app_name, endpoint_text]


def domain(host: str, app_name: str) -> Op:
    return ["dom", host, app_name]


def domain_deleted(host: str) -> Op:
    return ["dom-", host]


def vip(address: str, state: str, reason: str) -> Op:
    return ["vip", address, state, reason]


def vip_deleted(address: str) -> Op:
    return ["vip-", address]


def node(name: str, state: str, reason: str) -> Op:
    return ["node", name, state, reason]


def node_deleted(name: str) -> Op:
    return ["node-", name]


def cert(domain: str, fingerprint: str, not_after: int, chain: str, sealed_key: str) -> Op:
    return ["cert", domain, fingerprint, not_after, chain, sealed_key]


def cert_deleted(domain: str) -> Op:
    return ["cert-", domain]


def challenge(token: str, key_authorization: str) -> Op:
    """An ACME HTTP-01 challenge every edge answers at /.well-known/acme-challenge/TOKEN."""
    return ["acme", token, key_authorization]


def challenge_deleted(token: str) -> Op:
    return ["acme-", token]


def identity(op: Op) -> tuple[str, ...]:
    """The object an op writes; two ops with the same identity: the later one wins.

    ``app`` and ``app-`` stay distinct: a deletion also clears the upstream list, which a
    later re-creation does not.
    """
    kind = op[0] if op[0].startswith("app") else op[0].rstrip("-")
    if kind == "ep":
        return (kind, op[1], op[2])
    return (kind, op[1])


def coalesce(ops: list[Op]) -> list[Op]:
    """Keep only the last op per object, in the order of those last ops.

    An app deletion also removes its upstream list, so endpoint ops of that app that come
    before its deletion are dropped; ones after it (the app re-created) are kept.
    """
    last: dict[tuple[str, ...], int] = {}
    app_gone: dict[str, int] = {}
    for i, op in enumerate(ops):
        last[identity(op)] = i
        if op[0] == "app-":
            app_gone[op[1]] = i
    kept = []
    for i, op in enumerate(ops):
        if last[identity(op)] != i:
            continue
        if op[0] in ("ep", "ep-") and app_gone.get(op[1], -1) > i:
            continue
        kept.append(op)
    return kept


def encode(ops: list[Op]) -> str:
    return json.dumps(ops, separators=(",", ":"), ensure_ascii=False)


def decode(text: str | bytes) -> list[Op]:
    ops = json.loads(text)
    if not isinstance(ops, list) or not all(isinstance(o, list) and o for o in ops):
        raise ValueError("ops: expected a JSON list of non-empty lists")
    return ops
