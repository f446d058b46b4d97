"""The lab's own certificates (pure): a root and an intermediate made per journey, and a
site certificate for the app's domains, as a customer would bring one to ``cert upload``.
The client trusts only that root."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True, slots=True)
class Site:
    root: str
    """PEM: the certificate the client trusts."""
    chain: str
    """PEM: the site's certificate, then its intermediate."""
    key: str
    """PEM (PKCS#8, unencrypted): the site's private key."""


def _cert(
    cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey],
    *,
    now: dt.datetime,
    ca: bool,
    names: tuple[str, ...] = (),
) -> x509.Certificate:
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
            critical=False,
        )
    return b.sign(issuer[1], hashes.SHA256())


def site(*names: str, now: dt.datetime) -> Site:
    """A certificate for ``names`` under a fresh lab root and intermediate."""
    root_key, int_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _cert("sixpod lab root", root_key, ("sixpod lab root", root_key), now=now, ca=True)
    inter = _cert("sixpod lab CA", int_key, ("sixpod lab root", root_key), now=now, ca=True)
    leaf = _cert(names[0], leaf_key, ("sixpod lab CA", int_key), now=now, ca=False, names=names)

    def pem(c: x509.Certificate) -> str:
        return c.public_bytes(serialization.Encoding.PEM).decode()

    key = leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return Site(root=pem(root), chain=pem(leaf) + pem(inter), key=key)
