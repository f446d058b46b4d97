"""Certificate private keys sealed for the edge nodes (pure).

The controller holds only the pod's *public* sealing key: an uploaded private key is sealed
the moment it is validated, and from then on the store, the outbox, the publisher, Redis and
every replica (and Razor, which reads them) hold only the sealed text. Only the edge agent,
which holds the private half (``edge-seal.key``, 0600), can open it, to hand the key to its
own nginx.

Sealed text is ``sealed1:`` and base64 of an X25519 ephemeral public key (32 bytes), a nonce
(12) and the AES-256-GCM ciphertext of the key's PEM; the key is HKDF-SHA256 of the shared
secret, and the domain is authenticated data, so a sealed key moved to another domain does
not open.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sixpod.tenants.errors import TenantError

PREFIX = "sealed1:"
_INFO = b"sixpod certificate key v1"


class SealError(TenantError, ValueError):
    """A sealing key file or a sealed text that cannot be used; the message names which."""


def _derive(shared: bytes, ephemeral: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral, info=_INFO).derive(shared)


def _aad(domain: str) -> bytes:
    return b"sixpod-cert-key\0" + domain.encode()


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def is_sealed(text: str) -> bool:
    return text.startswith(PREFIX)


def seal(key_pem: str, domain: str, public: X25519PublicKey) -> str:
    ephemeral = X25519PrivateKey.generate()
    eph_pub = _raw(ephemeral.public_key())
    nonce = os.urandom(12)
    box = AESGCM(_derive(ephemeral.exchange(public), eph_pub))
    sealed = box.encrypt(nonce, key_pem.encode(), _aad(domain))
    return PREFIX + base64.b64encode(eph_pub + nonce + sealed).decode()


def unseal(text: str, domain: str, private: X25519PrivateKey) -> str:
    if not is_sealed(text):
        raise SealError(f"the key of {domain!r} is not sealed text")
    try:
        blob = base64.b64decode(text[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise SealError(f"the sealed key of {domain!r} is not base64") from None
    if len(blob) < 32 + 12 + 16:
        raise SealError(f"the sealed key of {domain!r} is truncated")
    eph_pub, nonce, sealed = blob[:32], blob[32:44], blob[44:]
    shared = private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    try:
        plain = AESGCM(_derive(shared, eph_pub)).decrypt(nonce, sealed, _aad(domain))
    except InvalidTag:
        raise SealError(
            f"the sealed key of {domain!r} does not open with this node's sealing key "
            "(another pod's key, or sealed for another domain)"
        ) from None
    try:
        return plain.decode()
    except UnicodeDecodeError:
        raise SealError(f"the sealed key of {domain!r} opens to bytes that are not text") from None


def generate() -> tuple[bytes, bytes]:
    """A new sealing key pair as PEM: (private, public)."""
    private = X25519PrivateKey.generate()
    priv_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pub_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return priv_pem, pub_pem


def load_public(path: str | Path) -> X25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as e:
        raise SealError(f"{path}: cannot read the sealing public key: {e.strerror}") from None
    except ValueError:
        raise SealError(f"{path}: not a PEM public key") from None
    if not isinstance(key, X25519PublicKey):
        raise SealError(f"{path}: not an X25519 public key (make one: sixpod cert keygen)")
    return key


def load_private(path: str | Path) -> X25519PrivateKey:
    """The private half; refused when others than its owner may read it (as ssh does)."""
    try:
        mode = os.stat(path).st_mode
        data = Path(path).read_bytes()
    except OSError as e:
        raise SealError(f"{path}: cannot read the sealing private key: {e.strerror}") from None
    if mode & 0o077:
        raise SealError(
            f"{path}: mode {mode & 0o777:03o}: the sealing key must be readable by its owner "
            "only (chmod 600)"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SealError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, X25519PrivateKey):
        raise SealError(f"{path}: not an X25519 private key (make one: sixpod cert keygen)")
    return key
