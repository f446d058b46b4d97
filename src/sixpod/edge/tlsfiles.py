"""The edge's TLS files in ``RUN/tls`` (0700, root): session ticket keys and the placeholder
certificate nginx's config needs. Only the agent writes them, each atomically."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sixpod.edge.nginxconf import PLACEHOLDER, TICKET_KEYS, TLS_DIR

TICKET_KEY_BYTES = 80
"""nginx's AES-256 + HMAC-SHA256 ticket key file."""


def tls_dir(run_dir: str) -> Path:
    return Path(run_dir) / TLS_DIR


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _placeholder() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sixpod placeholder, never sent")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def ticket_path(run_dir: str, i: int) -> Path:
    return tls_dir(run_dir) / f"ticket.{i}.key"


def prepare(run_dir: str) -> None:
    """Make what nginx's TLS config names, where missing (kept across agent restarts, so a
    restart neither rotates the ticket keys nor breaks resumption)."""
    d = tls_dir(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    crt, key = d / PLACEHOLDER[0], d / PLACEHOLDER[1]
    if not (crt.exists() and key.exists()):
        cert_pem, key_pem = _placeholder()
        _write(key, key_pem)
        _write(crt, cert_pem)
    for i in range(TICKET_KEYS):
        path = ticket_path(run_dir, i)
        if not path.exists() or path.stat().st_size != TICKET_KEY_BYTES:
            _write(path, os.urandom(TICKET_KEY_BYTES))


def ticket_age(run_dir: str) -> float:
    """Seconds since the ticket key that encrypts new tickets was made."""
    return time.time() - ticket_path(run_dir, 0).stat().st_mtime


def rotate(run_dir: str) -> None:
    """A new key encrypts from the next reload on; the previous ones still decrypt, the
    oldest is dropped. Each file is replaced whole, so every path always holds a key."""
    for i in range(TICKET_KEYS - 1, 0, -1):
        _write(ticket_path(run_dir, i), ticket_path(run_dir, i - 1).read_bytes())
    _write(ticket_path(run_dir, 0), os.urandom(TICKET_KEY_BYTES))
