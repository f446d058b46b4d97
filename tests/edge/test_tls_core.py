"""The pure TLS core: certificates and challenges to admin batches, and the full sync diff."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_der_private_key,
    load_pem_private_key,
)

import pki
from sixpod.edge import tls
from sixpod.tenants.model import Cert


def _cert(domain: str, fp: str) -> Cert:
    return Cert(domain, fp, 2000000000, f"CHAIN-{domain}\n", f"sealed1:{domain}")


def test_a_value_carries_a_version_of_the_whole_chain_then_der_certificates_and_typed_key() -> None:
    chain, key = pki.site("shop.example")
    c = Cert("shop.example", "ab12", 2000000000, chain, "sealed")
    version, header, body = tls.cert_value(c, key).split("\n")
    assert version == tls.version(c)
    # same leaf, another intermediate: another version
    assert tls.version(Cert(c.domain, c.fingerprint, 1, c.chain + "X\n", "s")) != version
    kind, *lengths = header.split(" ")
    der = base64.b64decode(body, validate=True)
    certs = x509.load_pem_x509_certificates(chain.encode())
    assert kind == "ec"
    assert [int(n) for n in lengths] == [len(x.public_bytes(Encoding.DER)) for x in certs]
    at = 0
    for x, n in zip(certs, lengths, strict=True):
        assert x509.load_der_x509_certificate(der[at : at + int(n)]) == x
        at += int(n)
    # SEC1, the form d2i_ECPrivateKey reads
    opened = load_der_private_key(der[at:], None)
    assert opened.private_numbers() == load_pem_private_key(key.encode(), None).private_numbers()  # type: ignore[union-attr]


def test_an_rsa_key_goes_as_pkcs1_and_a_bad_chain_or_key_is_named() -> None:
    chain, _ = pki.site("rsa.example")
    rsa_key = rsa.generate_private_key(65537, 2048)
    c = Cert("rsa.example", "f", 1, chain, "s")
    _, header, body = tls.cert_value(c, pki.key_pem(rsa_key)).split("\n")
    assert header.startswith("rsa ")
    der = base64.b64decode(body)
    skip = sum(int(n) for n in header.split(" ")[1:])
    assert der[skip:] == rsa_key.private_bytes(
        Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption()
    )
    # the form the store keeps (SEC1 / PKCS#1 PEM) is only base64-decoded: the same DER
    sec1 = rsa_key.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    assert tls.key_der(sec1.decode()) == tls.key_der(pki.key_pem(rsa_key))
    ec_key = ec.generate_private_key(ec.SECP384R1())
    sec1 = ec_key.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    assert tls.key_der(sec1.decode()) == tls.key_der(pki.key_pem(ec_key))
    with pytest.raises(ValueError, match="not an unencrypted PEM private key"):
        tls.cert_value(c, "KEY")
    with pytest.raises(ValueError, match="Ed25519PrivateKey, not RSA or ECDSA"):
        tls.cert_value(c, pki.key_pem(ed25519.Ed25519PrivateKey.generate()))
    with pytest.raises(ValueError, match="no PEM certificate"):
        tls.cert_value(Cert("x.example", "f", 1, "CHAIN\n", "s"), pki.key_pem(rsa_key))


def test_full_sync_sends_only_what_nginx_lacks_holds_otherwise_or_should_drop() -> None:
    certs = {d: _cert(d, fp) for d, fp in (("a.example", "1"), ("b.example", "2"))}
    held = {d: tls.version(c) for d, c in certs.items()}
    assert tls.cert_sync(certs, held) == []
    assert tls.cert_sync(certs, {"a.example": "old", "gone.example": "9"}) == [
        "a.example",
        "b.example",
        "gone.example",
    ]


def test_batches_delete_what_is_gone_and_skip_a_cert_that_does_not_load() -> None:
    certs = {d: _cert(d, "1") for d in ("a.example", "b.example", "c.example")}

    def load(c: Cert) -> str | None:
        return None if c.domain == "b.example" else "VALUE"

    batches = list(
        tls.cert_batches(certs, ["a.example", "b.example", "c.example", "z.example"], load, "g", 2)
    )
    assert [sorted(b["certs"]) for b in batches] == [["a.example"], ["c.example", "z.example"]]
    assert batches[1]["certs"]["z.example"] is None
    assert all(b["generation"] == "g" for b in batches)


def test_challenge_batches_name_set_and_removed_tokens() -> None:
    assert tls.challenge_batch({"t": "t.k"}, frozenset(), "g") is None
    assert tls.challenge_batch({"t": "t.k"}, frozenset({"t", "u"}), "g") == {
        "generation": "g",
        "challenges": {"t": "t.k", "u": None},
    }
