"""Test PKI: certificates and keys built with cryptography, for upload tests."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import NameOID

DAY = dt.timedelta(days=1)
SEAL_PRIVATE = X25519PrivateKey.generate()
"""The test pod's key-sealing pair: stores made by the tests seal with its public half."""
SEAL_PUBLIC = SEAL_PRIVATE.public_key()
Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def cert(
    cn: str,
    key: Key,
    issuer: tuple[str, Key] | None = None,
    *,
    names: tuple[str, ...] = (),
    ca: bool = False,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    now = now or dt.datetime.now(dt.UTC)
    start = start or now - DAY
    end = end or now + 90 * DAY
    issuer_cn, issuer_key = issuer or (cn, key)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(issuer_cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    algo = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return b.sign(issuer_key, algo)


def pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def key_pem(key: Key, password: bytes | None = None) -> str:
    enc = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc
    ).decode()


def site(*names: str, now: dt.datetime | None = None) -> tuple[str, str]:
    """A chain (leaf, intermediate) and the leaf's key for ``names``, valid around ``now``."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    int_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    inter = cert("Test Intermediate", int_key, ("Test Root", root_key), ca=True, now=now)
    leaf = cert(names[0], leaf_key, ("Test Intermediate", int_key), names=names, now=now)
    return pem(leaf, inter), key_pem(leaf_key)
