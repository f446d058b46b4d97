"""Certificate uploads: every fault is a clear InvalidInput, and the key never shows."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID
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


def _self_signed(
    key: ec.EllipticCurvePrivateKey, *extensions: tuple[x509.ExtensionType, bool]
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example.com")])
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 30 * DAY)
    )
    for ext, critical in extensions:
        b = b.add_extension(ext, critical=critical)
    return b.sign(key, hashes.SHA256())


def _with_oid(c: x509.Certificate, old: str, new: str) -> x509.Certificate:
    """``c`` with one extension's OID swapped in its DER (same length; the signature no
    longer verifies, which a lone leaf never needs): how a duplicate extension is made."""
    der = c.public_bytes(serialization.Encoding.DER)
    swapped = der.replace(b"\x06\x03" + _oid_der(old), b"\x06\x03" + _oid_der(new))
    return x509.load_der_x509_certificate(swapped)


def _oid_der(dotted: str) -> bytes:
    """The DER content of a dotted OID (base-128 arcs)."""
    a, b, *rest = (int(p) for p in dotted.split("."))
    out = bytearray([40 * a + b])
    for arc in rest:
        chunk, left = [arc & 0x7F], arc >> 7
        while left:
            chunk.append(0x80 | (left & 0x7F))
            left >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def test_a_certificate_whose_extensions_do_not_parse_is_invalid_input() -> None:
    """cryptography parses extensions only when asked: a malformed subjectAltName or
    basicConstraints, or one given twice, must be a 422 that says so, never a 500."""
    k = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.DNSName("a.example.com")])
    broken_san = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x7f")
    broken_bc = x509.UnrecognizedExtension(ExtensionOID.BASIC_CONSTRAINTS, b"\x30\x03\x01\x01")
    twice = x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.99"), san.public_bytes())
    cases = [
        (_self_signed(k, (broken_san, False)), "certificate 1: its extensions do not parse"),
        (_self_signed(k, (san, False), (broken_bc, True)), "certificate 1: its extensions"),
        (
            _with_oid(_self_signed(k, (san, False), (twice, False)), "2.5.29.99", "2.5.29.17"),
            "certificate 1: .*given twice",
        ),
    ]
    for leaf, message in cases:
        with pytest.raises(InvalidInput, match=message):
            validate("a.example.com", pem(leaf), key_pem(k), now=NOW)
    # in an intermediate too
    int_key = ec.generate_private_key(ec.SECP256R1())
    inter = _self_signed(int_key, (broken_bc, True))
    leaf = _self_signed(k, (san, False))
    with pytest.raises(InvalidInput, match="certificate 2: its extensions do not parse"):
        validate("a.example.com", pem(leaf, inter), key_pem(k), now=NOW)


def test_a_certificate_whose_public_key_is_of_an_unknown_kind_is_invalid_input() -> None:
    k = ec.generate_private_key(ec.SECP256R1())
    int_key = ec.generate_private_key(ec.SECP256R1())
    inter = cert("I", int_key, ca=True)
    leaf = cert("a", k, ("I", int_key), names=("a.example.com",))

    def unknown_key(c: x509.Certificate) -> x509.Certificate:  # id-ecPublicKey -> 2.9
        der = c.public_bytes(serialization.Encoding.DER)
        ec_oid = b"\x06\x07" + _oid_der("1.2.840.10045.2.1")
        assert ec_oid in der
        return x509.load_der_x509_certificate(
            der.replace(ec_oid, b"\x06\x07" + _oid_der("1.2.840.10045.2.9"))
        )

    for chain, key, n in (
        (pem(unknown_key(leaf), inter), key_pem(k), 1),
        (pem(leaf, unknown_key(inter)), key_pem(k), 2),
        (pem(leaf, unknown_key(inter)), key_pem(ec.generate_private_key(ec.SECP256R1())), 2),
    ):
        with pytest.raises(InvalidInput, match=f"certificate {n}: its public key is of a kind"):
            validate("a.example.com", chain, key, now=NOW)


def test_a_certificate_no_client_would_accept_for_the_domain_is_refused() -> None:
    """A wildcard on a top-level label (*.com), a leaf marked for another purpose (only
    clientAuth), a CT precertificate, or an unknown critical extension: browsers refuse each,
    so storing it would only break the site's HTTPS."""
    k = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.DNSName("a.example.com")])
    client_only = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    cases = [
        (
            "example.com",
            _self_signed(k, (x509.SubjectAlternativeName([x509.DNSName("*.com")]), False)),
            "does not cover example.com",
        ),
        ("a.example.com", _self_signed(k, (san, False), (client_only, False)), "serverAuth"),
        (
            "a.example.com",
            _self_signed(k, (san, False), (x509.PrecertPoison(), True)),
            "precertificate",
        ),
        (
            "a.example.com",
            _self_signed(
                k,
                (san, False),
                (
                    x509.UnrecognizedExtension(
                        x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"
                    ),
                    True,
                ),
            ),
            "critical extension 1.3.6.1.4.1.99999.1",
        ),
    ]
    for domain, leaf, message in cases:
        with pytest.raises(InvalidInput, match=message):
            validate(domain, pem(leaf), key_pem(k), now=NOW)
    server = x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    assert validate(
        "a.example.com", pem(_self_signed(k, (san, False), (server, False))), key_pem(k), now=NOW
    )


def test_text_around_pem_blocks_is_dropped_and_one_key_only_is_taken() -> None:
    """Text before, between or after the PEM blocks (what `openssl x509 -text` leaves) is
    not stored; key text with two keys in it is refused rather than guessed at."""
    k = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.DNSName("a.example.com")])
    leaf = pem(_self_signed(k, (san, False)))
    got = validate(
        "a.example.com", "Subject: a\n" + leaf + "trailing garbage\n", key_pem(k) + "x\n", now=NOW
    )
    assert got.chain == leaf
    # kept as SEC1 PEM: the edge hands it to OpenSSL's typed decoder as it is
    traditional = serialization.PrivateFormat.TraditionalOpenSSL
    no = serialization.NoEncryption()
    assert got.key == k.private_bytes(serialization.Encoding.PEM, traditional, no).decode()
    other = key_pem(ec.generate_private_key(ec.SECP256R1()))
    for key in (key_pem(k) + other, other + key_pem(k)):
        with pytest.raises(
            InvalidInput, match="key: holds 2 PEM blocks; upload the one private key"
        ):
            validate("a.example.com", leaf, key, now=NOW)
    with pytest.raises(InvalidInput, match="key: holds 2 PEM blocks"):
        validate("a.example.com", leaf, leaf + key_pem(k), now=NOW)


@functools.cache
def _fuzz_base() -> tuple[bytes, bytes, str]:
    k = ec.generate_private_key(ec.SECP256R1())
    int_key = ec.generate_private_key(ec.SECP256R1())
    inter = cert("Test Intermediate", int_key, ("Test Root", int_key), ca=True)
    leaf = cert(
        "a.example.com",
        k,
        ("Test Intermediate", int_key),
        names=("a.example.com", "*.a.example.com"),
    )
    der = serialization.Encoding.DER
    return leaf.public_bytes(der), inter.public_bytes(der), key_pem(k)


def _as_pem(der: bytes) -> str:
    import base64
    import textwrap

    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


@pytest.mark.filterwarnings("ignore:Attribute's length:UserWarning")  # a country name
@settings(max_examples=400, deadline=None)
@given(
    which=st.sampled_from([0, 1]),
    at=st.floats(min_value=0, max_value=1, exclude_max=True),
    byte=st.integers(min_value=0, max_value=255),
)
def test_a_certificate_with_any_byte_changed_is_stored_or_invalid_input(
    which: int, at: float, byte: int
) -> None:
    """Garbage in, only our own error out, for bytes inside well-formed PEM too: whatever one
    byte of the leaf's or the intermediate's DER becomes, the upload is accepted or refused
    with InvalidInput (cryptography parses names and extensions lazily)."""
    leaf, inter, key = _fuzz_base()
    parts = [bytearray(leaf), bytearray(inter)]
    parts[which][int(at * len(parts[which]))] = byte
    chain = _as_pem(bytes(parts[0])) + _as_pem(bytes(parts[1]))
    with contextlib.suppress(InvalidInput):
        validate("a.example.com", chain, key, now=NOW)


def test_an_internationalised_domain_is_checked_as_its_a_label() -> None:
    """Certificates name A-labels (RFC 5280 7.2); the domain may be given either way."""
    k = ec.generate_private_key(ec.SECP256R1())
    leaf = pem(cert("b", k, names=("xn--bcher-kva.example", "*.xn--bcher-kva.example")))
    for domain in ("bücher.example", "XN--BCHER-KVA.example.", "www.bücher.example"):
        got = validate(domain, leaf, key_pem(k), now=NOW)
        assert got.domain.endswith("xn--bcher-kva.example")
    with pytest.raises(InvalidInput, match=r"does not cover xn--bchr-0ra\.example"):
        validate("büchr.example", leaf, key_pem(k), now=NOW)
