"""Validation of an uploaded certificate chain and private key for a domain (pure).

:func:`validate` takes PEM text as an operator uploads it and either returns what the store
keeps (:class:`Certificate`: the chain in order, the key, and the facts the API shows) or
raises :class:`~sixpod.tenants.errors.InvalidInput` naming the first thing that is wrong:
text that is not PEM, a key that is encrypted, too weak or not the certificate's, a
certificate that does not cover the domain (RFC 6125: subjectAltName DNS names only, a
wildcard only as the whole leftmost label, covering exactly one label), one expired or not
yet valid, a CA certificate as the leaf, a leaf no browser accepts for a web server (a
precertificate, one marked for other purposes, an unknown critical extension), a certificate
whose extensions do not parse, or a chain out of order (each certificate must be issued, and
signed, by the next). Messages never quote the key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID

from sixpod.tenants.errors import InvalidInput
from sixpod.tenants.names import hostname

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 4096
"""Larger keys cost every handshake tens of milliseconds of a shared worker (an RSA-15360
signature is about 200 ms): a client could tie up the edge with them. Let's Encrypt's cap."""
EC_CURVES = (ec.SECP256R1, ec.SECP384R1)
MAX_PEM_BYTES = 64 * 1024
MAX_CHAIN = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class Certificate:
    """A validated upload: ``chain`` is the leaf first, as PEM; ``key`` is PKCS#8 PEM."""

    domain: str
    chain: str
    key: str = field(repr=False)  # never in a log line or a traceback
    names: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    issuer: str
    fingerprint: str
    """SHA-256 of the leaf (DER), hex."""
    key_type: str

    def public(self) -> dict[str, object]:
        """What the API shows: everything but the key."""
        return {
            "domain": self.domain,
            "names": list(self.names),
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "issuer": self.issuer,
            "fingerprint": self.fingerprint,
            "key_type": self.key_type,
            "chain_length": self.chain.count("-----BEGIN CERTIFICATE-----"),
        }


def covers(names: tuple[str, ...], domain: str) -> bool:
    """Whether a certificate for the DNS ``names`` (lower case) serves ``domain``.

    A name equal to the domain covers it; ``*.example.com`` covers ``a.example.com`` (one
    label, RFC 6125 6.4.3) but neither ``example.com`` nor ``a.b.example.com``; a wildcard
    domain needs the same wildcard in the certificate. A wildcard of a single label
    (``*.com``) covers nothing: browsers refuse it (RFC 6125 7.2), and the edge never
    looks one up.
    """
    if domain in names:
        return True
    if domain.startswith("*."):
        return False
    parent = domain.partition(".")[2]
    return "." in parent and f"*.{parent}" in names


def _text(what: str, value: object) -> bytes:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what}: expected PEM text")
    try:
        data = value.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what}: PEM is ASCII; this text has other characters") from None
    if len(data) > MAX_PEM_BYTES:
        raise InvalidInput(f"{what}: {len(data)} bytes, more than {MAX_PEM_BYTES}")
    return data


def _chain(pem: str) -> list[x509.Certificate]:
    data = _text("chain", pem)
    if data.count(b"-----BEGIN ") != data.count(b"-----BEGIN CERTIFICATE-----"):
        raise InvalidInput("chain: holds a PEM block that is not a CERTIFICATE (a key?)")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except (ValueError, x509.InvalidVersion):
        raise InvalidInput(
            "chain: not PEM certificates (or a certificate does not parse)"
        ) from None
    except CryptographyDeprecationWarning:  # raised only where warnings are errors
        raise InvalidInput(_NOT_POSITIVE) from None
    if len(certs) > MAX_CHAIN:
        raise InvalidInput(f"chain: {len(certs)} certificates, more than {MAX_CHAIN}")
    for i, cert in enumerate(certs, start=1):
        _parsed(i, cert)
    return certs


_NOT_POSITIVE = (
    "chain: a certificate's serial number is not positive (RFC 5280 4.1.2.2; TLS libraries "
    "refuse it)"
)


def _parsed(i: int, cert: x509.Certificate) -> None:
    """Refuse certificate ``i`` unless every part the checks read parses: cryptography
    parses names, extensions and the public key only when first asked, so a malformed one
    would otherwise surface later as a foreign error (a 500)."""
    if cert.serial_number <= 0:
        raise InvalidInput(_NOT_POSITIVE)
    try:
        cert.extensions  # noqa: B018
    except x509.DuplicateExtension as e:
        raise InvalidInput(
            f"certificate {i}: extension {e.oid.dotted_string} given twice"
        ) from None
    except ValueError:
        raise InvalidInput(f"certificate {i}: its extensions do not parse") from None
    try:
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
    except ValueError:
        raise InvalidInput(f"certificate {i}: its subject or issuer name does not parse") from None
    try:
        cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        raise InvalidInput(
            f"certificate {i}: its public key is of a kind TLS here cannot use "
            "(RSA or ECDSA expected) or does not parse"
        ) from None


def _key(pem: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    data = _text("key", pem)
    blocks = data.count(b"-----BEGIN ")
    if blocks > 1:
        raise InvalidInput(f"key: holds {blocks} PEM blocks; upload the one private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise InvalidInput("key: encrypted; upload it without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidInput("key: not a PEM private key") from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise InvalidInput(f"key: RSA {key.key_size} bits, at least {MIN_RSA_BITS} needed")
        if key.key_size > MAX_RSA_BITS:
            raise InvalidInput(
                f"key: RSA {key.key_size} bits, at most {MAX_RSA_BITS} (larger keys make "
                "every handshake slow)"
            )
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, EC_CURVES):
            raise InvalidInput(f"key: EC curve {key.curve.name}; P-256 or P-384 needed")
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raise InvalidInput("key: Ed25519 certificates are not accepted by browsers; use ECDSA")
    raise InvalidInput(f"key: {type(key).__name__.removeprefix('_')} is not RSA or ECDSA")


def _dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        raise InvalidInput(
            "certificate: no subjectAltName (a name only in the common name is not used)"
        ) from None
    names = san.value.get_values_for_type(x509.DNSName)
    return tuple(sorted({n.lower().rstrip(".") for n in names}))


def _for_web_servers(leaf: x509.Certificate) -> None:
    """Refuse a leaf that browsers refuse for a web server whatever its names."""
    for ext in leaf.extensions:
        if isinstance(ext.value, x509.PrecertPoison):
            raise InvalidInput(
                "certificate: a precertificate (CT poison extension), not the issued "
                "certificate: upload the one the CA delivered"
            )
        if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
            raise InvalidInput(
                f"certificate: critical extension {ext.oid.dotted_string} that TLS clients "
                "do not know (they refuse the certificate)"
            )
        if isinstance(ext.value, x509.ExtendedKeyUsage):
            usages = set(ext.value)
            if not usages & {
                ExtendedKeyUsageOID.SERVER_AUTH,
                ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
            }:
                raise InvalidInput(
                    "certificate: its extended key usage does not include serverAuth (it is "
                    "not for web servers)"
                )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return bool(bc.value.ca)


def _when(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%SZ")


def validate(domain: str, chain_pem: str, key_pem: str, *, now: dt.datetime) -> Certificate:
    """The upload for ``domain`` checked whole; :class:`InvalidInput` on the first fault."""
    name = hostname(domain)
    certs = _chain(chain_pem)
    key = _key(key_pem)
    leaf = certs[0]
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    mine = key.public_key().public_bytes(der, pub)
    if mine != leaf.public_key().public_bytes(der, pub):
        for i, other in enumerate(certs[1:], start=2):
            if other.public_key().public_bytes(der, pub) == mine:
                raise InvalidInput(
                    f"chain: out of order: the key's certificate is number {i}; put the "
                    "site's certificate first, then each issuer in turn"
                )
        raise InvalidInput("key: does not match the certificate (the chain's first one)")
    if _is_ca(leaf):
        raise InvalidInput("certificate: the first one is a CA certificate, not the site's")
    _for_web_servers(leaf)
    names = _dns_names(leaf)
    if not covers(names, name):
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "") or "none"
        raise InvalidInput(f"certificate: does not cover {name} (its names: {shown})")
    if leaf.not_valid_after_utc <= now:
        raise InvalidInput(f"certificate: expired at {_when(leaf.not_valid_after_utc)}")
    if leaf.not_valid_before_utc > now:
        raise InvalidInput(f"certificate: not valid before {_when(leaf.not_valid_before_utc)}")
    for i in range(len(certs) - 1):
        child, parent = certs[i], certs[i + 1]
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            raise InvalidInput(
                f"chain: certificate {i + 1} ({child.subject.rfc4514_string()}) is not issued "
                f"by certificate {i + 2} ({parent.subject.rfc4514_string()}): put the leaf "
                "first, then each issuer in turn"
            ) from None
        if parent.not_valid_after_utc <= now:
            raise InvalidInput(
                f"chain: certificate {i + 2} ({parent.subject.rfc4514_string()}) expired at "
                f"{_when(parent.not_valid_after_utc)}"
            )
    chain_text = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)
    # SEC1 / PKCS#1: the edge hands these to OpenSSL's typed decoders as they are
    key_text = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    key_type = (
        f"RSA {key.key_size}" if isinstance(key, rsa.RSAPrivateKey) else f"ECDSA {key.curve.name}"
    )
    return Certificate(
        domain=name,
        chain=chain_text,
        key=key_text,
        names=names,
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        issuer=leaf.issuer.rfc4514_string(),
        fingerprint=leaf.fingerprint(hashes.SHA256()).hex(),
        key_type=key_type,
    )
