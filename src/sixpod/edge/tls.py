"""Pure core of the edge's TLS: certificates and ACME challenges to admin batches for nginx.

nginx keeps certificates in one shared dict (``sixpod_certs``, not in the two table slots:
100k chains twice would not fit), domain -> ``VERSION\\nCHAIN_BYTES\\nCHAIN KEY`` (the
chain PEM, leaf first, then the key PEM in clear: only nginx's memory and the agent ever
hold it so). :func:`version` is a digest of the whole chain, so a new intermediate for the
same leaf is a new version too. A worker parses a domain's value once and keeps it in its
own LRU cache while the version stays the same. ACME HTTP-01 challenges live in
``sixpod_acme``, token -> key authorization.

A sync compares what nginx holds (domain -> version) with the state and sends only the
difference: what the agent itself pushed while nginx kept its table, or, after an agent
restart or an nginx that lost the table, what nginx lists (``GET /tls``, once).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sixpod.tenants.model import Cert

Batch = dict[str, Any]
KeyOpener = Callable[[Cert], str | None]
"""The cert's private key PEM in clear, or None when it cannot be opened (logged there)."""


def version(cert: Cert) -> str:
    return hashlib.sha256(cert.chain.encode()).hexdigest()[:32]


def cert_value(cert: Cert, key_pem: str) -> str:
    chain = cert.chain.encode()
    return f"{version(cert)}\n{len(chain)}\n{cert.chain}{key_pem}"


def cert_batches(
    certs: Mapping[str, Cert],
    domains: list[str],
    open_key: KeyOpener,
    generation: str,
    chunk: int,
) -> Iterator[Batch]:
    """Batches that set (or, for a domain no longer in ``certs``, delete) these domains'
    certificates; one whose key does not open is left as nginx has it."""
    for i in range(0, len(domains), chunk):
        values: dict[str, str | None] = {}
        for d in domains[i : i + chunk]:
            cert = certs.get(d)
            if cert is None:
                values[d] = None
                continue
            key = open_key(cert)
            if key is not None:
                values[d] = cert_value(cert, key)
        if values:
            yield {"generation": generation, "certs": values}


def cert_sync(certs: Mapping[str, Cert], held: Mapping[str, str]) -> list[str]:
    """The domains whose certificate nginx lacks, holds in another version, or should not
    hold at all (sorted: the same order every time)."""
    stale = {d for d, c in certs.items() if held.get(d) != version(c)}
    stale |= {d for d in held if d not in certs}
    return sorted(stale)


def challenge_batch(
    challenges: Mapping[str, str], tokens: frozenset[str], generation: str
) -> Batch | None:
    if not tokens:
        return None
    return {"generation": generation, "challenges": {t: challenges.get(t) for t in tokens}}
