"""Pure core of the edge's TLS: certificates and ACME challenges to admin batches for nginx.

nginx keeps certificates in one shared dict (``sixpod_certs``, not in the two table slots:
100k chains twice would not fit), domain -> ``FINGERPRINT\\nCHAIN_BYTES\\nCHAIN KEY`` (the
chain PEM, leaf first, then the key PEM in clear: only nginx's memory and the agent ever
hold it so). A worker parses a domain's value once and keeps it in its own LRU cache while
the fingerprint stays the same. ACME HTTP-01 challenges live in ``sixpod_acme``, token ->
key authorization.

A full sync compares what nginx holds (domain -> fingerprint) with the state and sends only
the difference, so an agent restart with nginx still serving re-sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sixpod.tenants.model import Cert

Batch = dict[str, Any]
KeyOpener = Callable[[Cert], str | None]
"""The cert's private key PEM in clear, or None when it cannot be opened (logged there)."""


def cert_value(cert: Cert, key_pem: str) -> str:
    chain = cert.chain.encode()
    return f"{cert.fingerprint}\n{len(chain)}\n{cert.chain}{key_pem}"


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
    stale = {d for d, c in certs.items() if held.get(d) != c.fingerprint}
    stale |= {d for d in held if d not in certs}
    return sorted(stale)


def challenge_batch(
    challenges: Mapping[str, str], tokens: frozenset[str], generation: str
) -> Batch | None:
    if not tokens:
        return None
    return {"generation": generation, "challenges": {t: challenges.get(t) for t in tokens}}
