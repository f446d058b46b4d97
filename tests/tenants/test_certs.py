"""Certificate uploads: every fault is a clear InvalidInput, and the key never shows."""

from __future__ import annotations

import datetime as dt
import functools

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

import pki
from sixpod.tenants.certs import covers, validate
from sixpod.tenants.errors import InvalidInput

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
cert = functools.partial(pki.cert, now=NOW)
key_pem, pem, DAY = pki.key_pem, pki.pem, pki.DAY


@pytest.fixture(scope="module")
def issued() -> dict[str, object]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    int_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("Test Root", ca_key, ca=True)
    inter = cert("Test Intermediate", int_key, ("Test Root", ca_key), ca=True)
    leaf = cert(
        "shop.example.com",
        leaf_key,
        ("Test Intermediate", int_key),
        names=("shop.example.com", "*.shop.example.com"),
    )
    return {"ca": ca, "inter": inter, "leaf": leaf, "leaf_key": leaf_key, "int_key": int_key}


def test_a_good_chain_is_kept_in_order_with_its_facts(issued: dict[str, object]) -> None:
    chain = pem(issued["leaf"], issued["inter"])  # type: ignore[arg-type]
    got = validate("Shop.Example.com.", chain, key_pem(issued["leaf_key"]), now=NOW)  # type: ignore[arg-type]
    assert got.domain == "shop.example.com"
    assert got.names == ("*.shop.example.com", "shop.example.com")
    assert got.chain == chain
    assert got.key_type == "ECDSA secp256r1"
    assert got.issuer == "CN=Test Intermediate"
    assert "key" not in got.public()
    assert "PRIVATE" not in repr(got)
    assert got.public()["chain_length"] == 2


def test_a_wildcard_certificate_covers_one_label(issued: dict[str, object]) -> None:
    key = key_pem(issued["leaf_key"])  # type: ignore[arg-type]
    chain = pem(issued["leaf"], issued["inter"])  # type: ignore[arg-type]
    assert validate("a.shop.example.com", chain, key, now=NOW).domain == "a.shop.example.com"
    assert validate("*.shop.example.com", chain, key, now=NOW).domain == "*.shop.example.com"
    with pytest.raises(InvalidInput, match=r"does not cover a\.b\.shop\.example\.com"):
        validate("a.b.shop.example.com", chain, key, now=NOW)


@pytest.mark.parametrize(
    ("names", "domain", "ok"),
    [
        (("example.com",), "example.com", True),
        (("*.example.com",), "a.example.com", True),
        (("*.example.com",), "example.com", False),
        (("*.example.com",), "a.b.example.com", False),
        (("*.example.com",), "*.example.com", True),
        (("a.example.com",), "*.example.com", False),
        (("*.com",), "com", False),
    ],
)
def test_covers(names: tuple[str, ...], domain: str, ok: bool) -> None:
    assert covers(names, domain) is ok


def test_every_bad_upload_says_what_is_wrong(issued: dict[str, object]) -> None:
    leaf, inter, ca = issued["leaf"], issued["inter"], issued["ca"]
    good_key = key_pem(issued["leaf_key"])  # type: ignore[arg-type]
    other = ec.generate_private_key(ec.SECP256R1())
    cases = [
        (pem(leaf, inter), key_pem(other), "key: does not match the certificate"),  # type: ignore[arg-type]
        ("not a certificate", good_key, "chain: not PEM certificates"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            good_key,
            "chain: not PEM certificates",
        ),
        (pem(leaf, inter), "garbage", "key: not a PEM private key"),  # type: ignore[arg-type]
        (pem(leaf, inter) + good_key, good_key, "not a CERTIFICATE"),  # type: ignore[arg-type]
        (pem(leaf, inter), key_pem(issued["leaf_key"], b"pw"), "key: encrypted"),  # type: ignore[arg-type]
        (pem(inter, leaf), good_key, "chain: out of order: the key's certificate is number 2"),  # type: ignore[arg-type]
        (pem(leaf, ca, inter), good_key, "chain: certificate 1 .* is not issued by certificate 2"),  # type: ignore[arg-type]
        ("", good_key, "chain: expected PEM text"),
        ("\ud800", good_key, "chain: PEM is ASCII"),
        (pem(leaf, inter), good_key + "é", "key: PEM is ASCII"),  # type: ignore[arg-type]
    ]
    for chain, key, message in cases:
        with pytest.raises(InvalidInput, match=message) as e:
            validate("shop.example.com", chain, key, now=NOW)
        assert "PRIVATE KEY" not in str(e.value)
    with pytest.raises(InvalidInput, match=r"does not cover other\.example\.org \(its names"):
        validate("other.example.org", pem(leaf, inter), good_key, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="expired at 2027"):
        validate("shop.example.com", pem(leaf, inter), good_key, now=NOW + 400 * DAY)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="not valid before 2026-12-03"):
        validate("shop.example.com", pem(leaf, inter), good_key, now=NOW - 2 * DAY)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="hostname"):
        validate("", pem(leaf, inter), good_key, now=NOW)  # type: ignore[arg-type]


def test_weak_or_unusable_keys_and_ca_leaves_are_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    c = cert("a.example.com", weak, names=("a.example.com",))
    with pytest.raises(InvalidInput, match="RSA 1024 bits, at least 2048"):
        validate("a.example.com", pem(c), key_pem(weak), now=NOW)
    huge = rsa.generate_private_key(public_exponent=65537, key_size=4104)  # slow handshakes
    c = cert("a.example.com", huge, names=("a.example.com",))
    with pytest.raises(InvalidInput, match="RSA 4104 bits, at most 4096"):
        validate("a.example.com", pem(c), key_pem(huge), now=NOW)
    k521 = ec.generate_private_key(ec.SECP521R1())
    with pytest.raises(InvalidInput, match="curve secp521r1"):
        validate(
            "a.example.com", pem(cert("a", k521, names=("a.example.com",))), key_pem(k521), now=NOW
        )
    ed = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(InvalidInput, match="Ed25519"):
        validate(
            "a.example.com", pem(cert("a", ed, names=("a.example.com",))), key_pem(ed), now=NOW
        )
    k = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidInput, match="is a CA certificate"):
        validate(
            "a.example.com",
            pem(cert("a", k, names=("a.example.com",), ca=True)),
            key_pem(k),
            now=NOW,
        )
    with pytest.raises(InvalidInput, match="no subjectAltName"):
        validate("a.example.com", pem(cert("a.example.com", k)), key_pem(k), now=NOW)
    good = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    c = cert("a.example.com", good, names=("A.Example.COM",))
    assert validate("a.example.com", pem(c), key_pem(good), now=NOW).key_type == "RSA 2048"


def test_an_expired_intermediate_is_refused(issued: dict[str, object]) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    int_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    inter = cert("Old Intermediate", int_key, ("Root", ca_key), ca=True, end=NOW - DAY)
    leaf = cert("x", leaf_key, ("Old Intermediate", int_key), names=("x.example.com",))
    with pytest.raises(InvalidInput, match=r"chain: certificate 2 .* expired"):
        validate("x.example.com", pem(leaf, inter), key_pem(leaf_key), now=NOW)


PEM_BITS = st.sampled_from(
    [
        "-----BEGIN CERTIFICATE-----\n",
        "-----END CERTIFICATE-----\n",
        "-----BEGIN PRIVATE KEY-----\n",
        "-----END PRIVATE KEY-----\n",
        "MIIB",
        "\n",
        "\x00",
        "é",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    chain=st.lists(st.one_of(PEM_BITS, st.text(max_size=40)), max_size=8).map("".join),
    key=st.lists(st.one_of(PEM_BITS, st.text(max_size=40)), max_size=8).map("".join),
)
def test_garbage_is_only_ever_invalid_input(chain: str, key: str) -> None:
    with pytest.raises(InvalidInput):
        validate("shop.example.com", chain, key, now=NOW)
