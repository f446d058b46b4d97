"""Keys sealed for the edge nodes: only the private half opens them, only for their domain."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

import pki
from sixpod.cli import cli
from sixpod.tenants import ops, sealed
from sixpod.tenants.errors import Unavailable
from sixpod.tenants.store import Store

KEY = "-----BEGIN PRIVATE KEY-----\nS1xp0dKeyMaterial\n-----END PRIVATE KEY-----\n"


def test_a_sealed_key_opens_with_the_private_half_for_its_domain_only() -> None:
    text = sealed.seal(KEY, "shop.example.com", pki.SEAL_PUBLIC)
    assert sealed.is_sealed(text)
    assert "PRIVATE" not in text
    assert "S1xp0dKeyMaterial" not in text
    assert sealed.unseal(text, "shop.example.com", pki.SEAL_PRIVATE) == KEY
    assert sealed.seal(KEY, "shop.example.com", pki.SEAL_PUBLIC) != text  # fresh each time
    with pytest.raises(sealed.SealError, match="sealed for another domain"):
        sealed.unseal(text, "evil.example.com", pki.SEAL_PRIVATE)
    with pytest.raises(sealed.SealError, match="another pod's key"):
        sealed.unseal(text, "shop.example.com", X25519PrivateKey.generate())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (KEY, "not sealed text"),
        ("sealed1:!!!", "not base64"),
        ("sealed1:" + "QUFB", "truncated"),
    ],
)
def test_bad_sealed_text_is_named(text: str, message: str) -> None:
    with pytest.raises(sealed.SealError, match=message):
        sealed.unseal(text, "shop.example.com", pki.SEAL_PRIVATE)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_fails_cleanly(text: str) -> None:
    with contextlib.suppress(sealed.SealError):
        sealed.unseal(text, "d.example", pki.SEAL_PRIVATE)


def test_keygen_writes_a_private_half_only_root_reads_and_never_overwrites(
    tmp_path: Path,
) -> None:
    out = tmp_path / "keys"
    r = CliRunner().invoke(cli, ["cert", "keygen", "--out", str(out)])
    assert r.exit_code == 0, r.output
    priv, pub = out / "edge-seal.key", out / "edge-seal.pub"
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    private, public = sealed.load_private(priv), sealed.load_public(pub)
    assert sealed.unseal(sealed.seal(KEY, "a.example", public), "a.example", private) == KEY
    before = priv.read_bytes()
    r = CliRunner().invoke(cli, ["cert", "keygen", "--out", str(out)])
    assert r.exit_code == 1
    assert "exists" in r.output
    assert priv.read_bytes() == before


def test_key_files_of_the_wrong_kind_are_named(tmp_path: Path) -> None:
    wrong = tmp_path / "rsa.pem"
    wrong.write_text(pki.key_pem(pki.ec.generate_private_key(pki.ec.SECP256R1())))
    wrong.chmod(0o600)
    with pytest.raises(sealed.SealError, match="not an X25519 private key"):
        sealed.load_private(wrong)
    with pytest.raises(sealed.SealError, match="not a PEM public key"):
        sealed.load_public(wrong)
    with pytest.raises(sealed.SealError, match="cannot read"):
        sealed.load_public(tmp_path / "missing.pub")


def test_without_a_sealing_key_no_certificate_is_stored(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'n.db'}")
    store.migrate()
    chain, key = pki.site("shop.example.com")
    with pytest.raises(Unavailable, match="no cert_seal_key"):
        store.put_cert("shop.example.com", chain, key)
    assert store.list_certs().items == []
    assert store.head() == 0
    store.close()


def test_keys_a_store_kept_in_clear_are_sealed_and_published_at_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    chain, key = pki.site("shop.example.com")
    store = Store(url, seal_key=pki.SEAL_PUBLIC)
    store.migrate()
    store.put_cert("shop.example.com", chain, key)
    with store.engine.begin() as conn:  # as the first release of certificates stored it
        conn.exec_driver_sql("UPDATE certs SET key = ?", (key,))
    store.close()
    blind = Store(url)
    with pytest.raises(Unavailable, match="1 stored certificates hold a key in clear"):
        blind.migrate()
    blind.close()
    store = Store(url, seal_key=pki.SEAL_PUBLIC)
    head = store.head()
    store.migrate()
    with store.engine.connect() as conn:
        kept = conn.exec_driver_sql("SELECT key FROM certs").scalar_one()
    assert sealed.unseal(kept, "shop.example.com", pki.SEAL_PRIVATE) == key
    rows = store.outbox_after(head)
    assert [r.op.KIND for r in rows] == ["cert"]
    assert rows[0].op == ops.cert(
        "shop.example.com", rows[0].op.fingerprint, rows[0].op.not_after, rows[0].op.chain, kept
    )
    store.migrate()
    assert store.head() == head + 1  # sealed once
    store.close()
