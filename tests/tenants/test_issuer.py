"""The ACME adapter's local parts: the account key file and controller.yaml's acme section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sixpod.inventory.load import load_model
from sixpod.inventory.lock import Lock
from sixpod.tenants.config import ControllerConfig
from sixpod.tenants.issuance import DAY, Status
from sixpod.tenants.issuer import Issuer, IssuerSettings, load_account_key
from sixpod.tenants.model import AppSpec
from tenantkit import open_store

SIXPOD = str(Path(sys.executable).with_name("sixpod"))
BASE = "token_file: t\nlock: l\nredis: {address: '[::1]:6379', password_file: p}\n"


def test_the_account_key_is_made_0600_once_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "acme.key"
    key = load_account_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert key.curve.name == "secp256r1"
    again = load_account_key(path)
    assert again.private_numbers() == key.private_numbers()


def test_an_account_key_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "acme.key"
    path.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ValueError, match="EC P-256"):
        load_account_key(path)


def test_the_acme_section_defaults_and_policy() -> None:
    cfg = load_model(BASE, "controller.yaml", ControllerConfig)
    assert cfg.acme.enabled is False
    text = BASE + (
        "cert_seal_key: s.pub\n"
        "acme: {enabled: true, directory: 'https://127.0.0.1:14000/dir', contact: a@b.example,"
        " renew_before_days: 20, backoff_min: 30, backoff_max: 3600}\n"
    )
    cfg = load_model(text, "controller.yaml", ControllerConfig)
    policy = cfg.acme.policy()
    assert (policy.renew_before, policy.backoff_min, policy.backoff_max) == (20 * DAY, 30, 3600)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("acme: {enabled: true}\n", "cert_seal_key"),
        ("acme: {backoff_min: 600, backoff_max: 60}\n", "backoff_min"),
        ("acme: {contact: 'not an address'}\n", "contact"),
        ("acme: {directory: 'ftp://x'}\n", "directory"),
        ("acme: {interval: 5}\n", "unknown key 'interval'"),
    ],
)
def test_a_bad_acme_section_is_refused_with_its_position(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "controller.yaml"
    path.write_text(BASE + text)
    r = subprocess.run(
        [SIXPOD, "controller", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 1
    assert "controller.yaml:" in r.stderr
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_an_unexpected_error_fails_only_its_domain_and_a_detached_one_is_skipped(
    tmp_path: Path, small_lock: Lock
) -> None:
    """Whatever one order raises (a bug, a foreign error nothing translated), that domain is
    recorded failed with a backoff and the pass goes on to the others; a domain detached
    while the pass runs is skipped, not an error that ends the pass."""
    store = open_store(f"sqlite:///{tmp_path / 'tenants.db'}", small_lock)
    try:
        store.create_app(AppSpec("shop"))
        for d in ("a.example", "b.example", "c.example"):
            store.attach_domain(d, "shop")
        issuer = Issuer(
            store,
            IssuerSettings(directory="https://127.0.0.1:1/dir", account_key=tmp_path / "k"),
            published=lambda: 0,
            clock=lambda: 1_000_000.0,
            rand=lambda: 0.5,
        )
        ordered: list[str] = []

        def obtain(domain: str) -> float:
            ordered.append(domain)
            if domain == "a.example":
                store.detach_domain("b.example")
                raise KeyError("status")  # what a malformed CA answer could raise
            return 2_000_000.0

        issuer._obtain = obtain  # type: ignore[method-assign]
        issuer.tick()
        assert ordered == ["a.example", "c.example"]
        a = store.acme_domain("a.example").record
        assert a is not None
        assert a.status is Status.FAILED
        assert a.failures == 1
        assert "unexpected error" in a.error
        assert a.next_attempt > 1_000_000.0
        c = store.acme_domain("c.example").record
        assert c is not None
        assert c.status is Status.VALID
        assert issuer.metrics.failures._value.get() == 1
    finally:
        store.close()
