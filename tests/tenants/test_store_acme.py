"""The store's ACME side: challenges as published ops, the issuer's records, uploads win."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

import pki
from sixpod.inventory.lock import Lock
from sixpod.tenants import issuance, ops
from sixpod.tenants.errors import Conflict, InvalidInput, NotFound
from sixpod.tenants.model import AppSpec
from sixpod.tenants.store import Store
from tenantkit import open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path, small_lock: Lock) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tenants.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database(f"a_{secrets.token_hex(4)}")
    s = open_store(url, small_lock)
    yield s
    s.close()


TOKEN = "tok_en-1"
KEYAUTH = f"{TOKEN}.thumbprint_0-9"


def _ops_after(store: Store, revision: int) -> list[ops.Op]:
    return [row.op for row in store.outbox_after(revision)]


def _snapshot_ops(store: Store) -> list[ops.Op]:
    return [op for part in store.snapshot() if isinstance(part, list) for op in part]


def test_a_challenge_is_published_and_withdrawn(store: Store) -> None:
    before = store.head()
    rev = store.put_challenge(TOKEN, KEYAUTH, domain="Shop.Example")
    assert rev == store.head() == before + 1
    assert _ops_after(store, before) == [ops.challenge(TOKEN, KEYAUTH)]
    assert store.list_challenges()[0].domain == "shop.example"
    assert ops.challenge(TOKEN, KEYAUTH) in _snapshot_ops(store)
    gone = store.delete_challenge(TOKEN)
    assert _ops_after(store, rev) == [ops.challenge_deleted(TOKEN)]
    assert store.delete_challenge(TOKEN) == gone  # twice: nothing more to publish
    assert store.list_challenges() == []
    assert not any(isinstance(op, ops.ChallengeSet) for op in _snapshot_ops(store))


@pytest.mark.parametrize(
    ("token", "keyauth", "message"),
    [
        ("a/b", "a/b.x", "token"),
        ("", ".x", "token"),
        (TOKEN, "other.x", "key authorization"),
        (TOKEN, f"{TOKEN}.", "key authorization"),
        (TOKEN, f"{TOKEN}.a b", "key authorization"),
    ],
)
def test_a_bad_challenge_changes_nothing(
    store: Store, token: str, keyauth: str, message: str
) -> None:
    before = store.head()
    with pytest.raises(InvalidInput, match=message):
        store.put_challenge(token, keyauth, domain="shop.example")
    assert store.head() == before


def test_acme_facts_join_domains_certs_and_records(store: Store) -> None:
    store.create_app(AppSpec("shop"))
    for d in ("a.example", "b.example", "*.c.example"):
        store.attach_domain(d, "shop")
    chain, key = pki.site("b.example")
    store.put_cert("b.example", chain, key)
    store.record_acme("a.example", issuance.Record(issuance.Status.FAILED, "boom", 2, 1e9))
    facts = {f.domain: f for f in store.acme_facts()}
    assert set(facts) == {"a.example", "b.example", "*.c.example"}
    assert facts["a.example"].record == issuance.Record(issuance.Status.FAILED, "boom", 2, 1e9)
    assert facts["b.example"].cert_source == "upload"
    assert facts["b.example"].cert_not_after is not None
    assert store.acme_domain("A.Example") == facts["a.example"]
    with pytest.raises(NotFound):
        store.acme_domain("nowhere.example")
    page, nxt = store.list_acme(limit=2)
    assert [f.domain for f in page] == ["*.c.example", "a.example"]
    assert nxt == "a.example"
    page, nxt = store.list_acme(after=nxt, limit=2)
    assert ([f.domain for f in page], nxt) == (["b.example"], None)


def test_records_of_detached_domains_and_stale_challenges_are_pruned(store: Store) -> None:
    store.create_app(AppSpec("shop"))
    store.attach_domain("a.example", "shop")
    store.record_acme("a.example", issuance.Record(issuance.Status.PENDING))
    store.put_challenge(TOKEN, KEYAUTH, domain="a.example")
    store.detach_domain("a.example")
    assert store.prune_acme(challenges_before=0.0) == []
    assert store.list_challenges() != []
    assert store.prune_acme(challenges_before=store.clock() + 1) == [TOKEN]
    assert store.list_challenges() == []
    store.attach_domain("a.example", "shop")
    assert store.acme_domain("a.example").record is None


def test_an_acme_certificate_never_replaces_an_upload(store: Store) -> None:
    chain, key = pki.site("shop.example")
    store.put_cert("shop.example", chain, key)
    before = store.head()
    other_chain, other_key = pki.site("shop.example")
    with pytest.raises(Conflict, match="uploaded"):
        store.put_cert("shop.example", other_chain, other_key, source="acme")
    assert store.head() == before
    assert store.get_cert("shop.example").source == "upload"
    # an ACME certificate is replaced by an upload, and by a renewal
    store.delete_cert("shop.example")
    store.put_cert("shop.example", other_chain, other_key, source="acme")
    store.put_cert("shop.example", chain, key, source="acme")
    store.put_cert("shop.example", other_chain, other_key)
    assert store.get_cert("shop.example").source == "upload"
    with pytest.raises(InvalidInput, match="source"):
        store.put_cert("shop.example", chain, key, source="bogus")


def test_an_uploaded_wildcard_covers_the_names_one_label_below_it(store: Store) -> None:
    """The edge serves a name's exact certificate first, then the wildcard one label up; so
    an uploaded wildcard wins for the names it covers only if ACME leaves them alone: none
    is ordered, an ACME certificate one of them had is withdrawn (it would shadow the upload,
    and expire there unrenewed), and an order in flight for one is refused. The parent and
    names two labels down are not covered."""
    store.create_app(AppSpec("shop"))
    for d in ("shop.example", "www.shop.example", "a.b.shop.example", "*.shop.example"):
        store.attach_domain(d, "shop")
    acme_chain, acme_key = pki.site("www.shop.example")
    store.put_cert("www.shop.example", acme_chain, acme_key, source="acme")
    before = store.head()
    wild_chain, wild_key = pki.site("*.shop.example")
    store.put_cert("*.shop.example", wild_chain, wild_key)
    with pytest.raises(NotFound):
        store.get_cert("www.shop.example")
    assert ops.cert_deleted("www.shop.example") in _ops_after(store, before)
    facts = {f.domain: f for f in store.acme_facts()}
    assert facts["www.shop.example"].cert_source == "upload"
    now = store.clock()
    views = {d: issuance.status(f, now, issuance.Policy()) for d, f in facts.items()}
    assert views == {
        "*.shop.example": issuance.Status.UPLOADED,
        "www.shop.example": issuance.Status.UPLOADED,
        "shop.example": issuance.Status.PENDING,
        "a.b.shop.example": issuance.Status.PENDING,
    }
    assert store.acme_domain("www.shop.example").cert_source == "upload"
    page, _ = store.list_acme(limit=10)
    assert {f.domain: f.cert_source for f in page}["www.shop.example"] == "upload"
    plan = issuance.plan(store.acme_facts(), now, issuance.Policy())
    assert {w.domain for w in plan} == {"shop.example", "a.b.shop.example"}
    head = store.head()
    with pytest.raises(Conflict, match=r"\*\.shop\.example"):
        store.put_cert("www.shop.example", acme_chain, acme_key, source="acme")
    assert store.head() == head
    # an exact upload still goes beside it; deleting the wildcard hands the names back
    store.put_cert("www.shop.example", *pki.site("www.shop.example"))
    store.delete_cert("www.shop.example")
    store.delete_cert("*.shop.example")
    assert store.acme_domain("www.shop.example").cert_source is None


def test_acme_certificates_an_uploaded_wildcard_covers_are_withdrawn_at_migrate(
    store: Store,
) -> None:
    """A store from a sixpod that ordered them holds both: the upload wins from the start."""
    store.put_cert("*.shop.example", *pki.site("*.shop.example"))
    store.put_cert("www.shop.example", *pki.site("www.shop.example"))
    store.put_cert("a.b.shop.example", *pki.site("a.b.shop.example"))
    with store.engine.begin() as conn:  # as an earlier release left them
        conn.exec_driver_sql("UPDATE certs SET source = 'acme' WHERE domain <> '*.shop.example'")
    before = store.head()
    store.migrate()
    assert _ops_after(store, before) == [ops.cert_deleted("www.shop.example")]
    assert [c.domain for c in store.list_certs().items] == ["*.shop.example", "a.b.shop.example"]
    store.migrate()
    assert store.head() == before + 1
