"""Pure core of the edge's TLS: certificates and ACME challenges to admin batches for nginx.

nginx keeps certificates in one shared dict (``sixpod_certs``, not in the two table slots:
100k chains twice would not fit), domain -> ``VERSION\\nKIND LEN1 LEN2..\\nDER..`` : the
chain as DER certificates (leaf first, their byte lengths in the header), then the key as
DER in its algorithm's own form (``ec``: SEC1 ECPrivateKey, ``rsa``: PKCS#1), in clear (only
nginx's memory and the agent ever hold it so). DER and typed keys because a TLS handshake
parses them: OpenSSL 3.0's PEM key decoder tries every format (0.75 ms an EC key, against
0.03 ms for ``d2i_ECPrivateKey``). The admin batch carries ``VERSION\\nHEADER\\nBASE64``
(JSON has no bytes); nginx stores the decoded bytes. :func:`version` is a digest of the
format and the whole chain, so a new intermediate for the same leaf is a new version too. A
worker parses a domain's value once and keeps it in its own LRU cache while the version
stays the same (and shares parsed intermediates between domains). ACME HTTP-01 challenges
live in ``sixpod_acme``, token -> key authorization.

A sync compares what nginx holds (domain -> version) with the state and sends only the
difference: what the agent itself pushed while nginx kept its table, or, after an agent
restart or an nginx that lost the table, what nginx lists (``GET /tls``, once).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sixpod.tenants.model import Cert

Batch = dict[str, Any]
KeyDer = tuple[str, bytes]
"""A private key as nginx loads it: its kind (``ec`` or ``rsa``) and DER."""
ValueLoader = Callable[[Cert], str | None]
"""The cert's :func:`cert_value`, or None when its key cannot be opened (logged there)."""

CERT_FORMAT = "der1"
"""The value format; nginx's Lua module says in ``/state`` which one it reads."""
FORMAT = f"{CERT_FORMAT}\n".encode()
_TYPED = {"EC PRIVATE KEY": "ec", "RSA PRIVATE KEY": "rsa"}  # PEM labels of SEC1, PKCS#1
_CERT_END = "-----END CERTIFICATE-----"


def version(cert: Cert) -> str:
    return hashlib.sha256(FORMAT + cert.chain.encode()).hexdigest()[:32]


def _pem_body(block: str, label: str) -> bytes:
    begin = f"-----BEGIN {label}-----"
    start = block.find(begin)
    if start < 0:
        raise ValueError(f"no {label} PEM block")
    try:
        return binascii.a2b_base64(block[start + len(begin) :], strict_mode=False)
    except binascii.Error as e:
        raise ValueError(f"a {label} PEM block is not base64 ({e})") from None


def key_der(key_pem: str) -> KeyDer:
    """The key of an uploaded or issued certificate (checked at upload: RSA or ECDSA) as
    nginx's typed decoders read it; ValueError names what is wrong. The store keeps keys in
    these forms (SEC1, PKCS#1 PEM), so this is a base64 decode; other PEM is converted."""
    first = key_pem.lstrip().split("\n", 1)[0]
    label = first.removeprefix("-----BEGIN ").removesuffix("-----")
    if label in _TYPED and key_pem.count("-----BEGIN ") == 1:
        body = key_pem.split(first, 1)[1].split("-----END ", 1)[0]
        return _TYPED[label], _pem_body(first + body, label)
    try:
        key = serialization.load_pem_private_key(
            key_pem.encode(), None, unsafe_skip_rsa_key_validation=True
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise ValueError(f"the key is not an unencrypted PEM private key ({e})") from None
    der, trad = serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL
    none = serialization.NoEncryption()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ec", key.private_bytes(der, trad, none)
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa", key.private_bytes(der, trad, none)
    raise ValueError(f"the key is {type(key).__name__.removeprefix('_')}, not RSA or ECDSA")


def chain_der(chain_pem: str) -> list[bytes]:
    """The chain's certificates as DER, in order (the PEM blocks' base64, decoded)."""
    blocks = [b for b in chain_pem.split(_CERT_END) if "-----BEGIN CERTIFICATE-----" in b]
    if not blocks:
        raise ValueError("the chain holds no PEM certificate")
    return [_pem_body(b, "CERTIFICATE") for b in blocks]


def cert_value(cert: Cert, key_pem: str) -> str:
    """The admin batch's value of a certificate: ``VERSION\\nKIND LEN..\\nBASE64``;
    ValueError if the chain or key cannot be converted."""
    kind, der = key_der(key_pem)
    certs = chain_der(cert.chain)
    header = " ".join([kind, *(str(len(c)) for c in certs)])
    body = base64.b64encode(b"".join(certs) + der).decode()
    return f"{version(cert)}\n{header}\n{body}"


def cert_batches(
    certs: Mapping[str, Cert],
    domains: list[str],
    load: ValueLoader,
    generation: str,
    chunk: int,
) -> Iterator[Batch]:
    """Batches that set (or, for a domain no longer in ``certs``, delete) these domains'
    certificates; one that does not load is left as nginx has it."""
    for i in range(0, len(domains), chunk):
        values: dict[str, str | None] = {}
        for d in domains[i : i + chunk]:
            cert = certs.get(d)
            if cert is None:
                values[d] = None
                continue
            value = load(cert)
            if value is not None:
                values[d] = value
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
