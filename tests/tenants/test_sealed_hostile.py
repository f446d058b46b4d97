"""Sealed text that opens, but to something that is not a key's text."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sixpod.tenants import sealed


def test_a_sealed_text_that_opens_to_bytes_that_are_not_utf8_is_a_seal_error() -> None:
    """Anyone holding the public half (it is not secret) can seal any bytes. open_key in
    the agent only catches SealError, so a UnicodeDecodeError escapes it and aborts every
    certificate batch the agent sends (one bad row blocks all certificate syncs)."""
    edge = X25519PrivateKey.generate()
    eph = X25519PrivateKey.generate()
    eph_pub = sealed._raw(eph.public_key())
    nonce = os.urandom(12)
    box = AESGCM(sealed._derive(eph.exchange(edge.public_key()), eph_pub))
    ct = box.encrypt(nonce, b"\xff\xfe not text", sealed._aad("a.example"))
    text = sealed.PREFIX + base64.b64encode(eph_pub + nonce + ct).decode()
    with pytest.raises(sealed.SealError):
        sealed.unseal(text, "a.example", edge)
