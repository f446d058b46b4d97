"""The store on SQLite and on a real PostgreSQL: outbox, revisions, migrations, snapshots."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import open_store

from sixpod.inventory.lock import Lock
from sixpod.tenants import ops
from sixpod.tenants.errors import Conflict, InvalidInput
from sixpod.tenants.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path, small_lock: Lock) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tenants.db'}"
    else:
        pg = request.getfixturevalue("postgres")
        url = pg.create_database(f"t_{secrets.token_hex(4)}")
    s = open_store(url, small_lock)
    yield s
    s.close()


def eps(lock: Lock, node: str, n: int, port: int = 80) -> list[dict[str, object]]:
    return [{"address": str(lock.nodes[node].prefix[i]), "port": port} for i in range(1, n + 1)]


def test_outbox_is_gapless_and_in_commit_order_under_concurrent_writers(
    any_store: Store, small_lock: Lock
) -> None:
    for a in ("a", "b", "c", "d"):
        any_store.create_app(a)
    start = any_store.head()
    errors: list[BaseException] = []

    def writer(app: str, port: int) -> None:
        try:
            for i in range(1, 16):
                any_store.set_endpoints(app, eps(small_lock, "edge1", i, port)[-1:])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(a, 80 + n)) for n, a in enumerate("abcd")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rows = any_store.outbox_after(start, limit=1000)
    assert [r.revision for r in rows] == list(range(start + 1, any_store.head() + 1))
    assert len(rows) == 60


def test_unique_endpoint_and_nothing_stored_on_error(any_store: Store, small_lock: Lock) -> None:
    any_store.create_app("a")
    any_store.create_app("b")
    any_store.set_endpoints("a", eps(small_lock, "edge1", 2))
    head = any_store.head()
    with pytest.raises(Conflict, match="belongs to app 'a'"):
        any_store.set_endpoints("b", eps(small_lock, "edge2", 1) + eps(small_lock, "edge1", 1))
    with pytest.raises(InvalidInput, match="twice"):
        any_store.set_endpoints("b", eps(small_lock, "edge2", 1) * 2)
    assert any_store.head() == head
    assert any_store.list_endpoints("b").items == []


def test_snapshot_is_the_state_as_ops(any_store: Store, small_lock: Lock) -> None:
    any_store.create_app("a", owner="o", settings={"k": "v"})
    any_store.set_endpoints("a", eps(small_lock, "edge1", 3))
    any_store.attach_domain("www.a.example", "a")
    snap = any_store.snapshot(chunk=4)
    revision = next(snap)
    assert revision == any_store.head()
    got = [op for chunk in snap for op in chunk]  # type: ignore[union-attr]
    kinds = [op[0] for op in got]
    assert kinds.count("ep") == 3
    assert ops.app("a", "o", 0, {"k": "v"}) in got
    assert ops.domain("www.a.example", "a") in got
    assert kinds.count("vip") == len(small_lock.vips4) + len(small_lock.vips6)


def test_upgrade_from_schema_1_keeps_data(tmp_path: Path, small_lock: Lock) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Store(url, lock=small_lock)
    assert old.migrate(target=1) == 1
    old.sync_pool()
    old.create_app("kept", owner="me")
    old.set_endpoints("kept", eps(small_lock, "edge1", 2))
    old.close()
    new = Store(url, lock=small_lock)
    assert new.schema_version() == 1
    new.migrate()
    assert new.schema_version() == 2
    assert new.get_app("kept")["owner"] == "me"
    assert len(new.list_endpoints("kept").items) == 2
    with new.engine.connect() as conn:
        assert "ix_endpoints_node" in {i["name"] for i in sa.inspect(conn).get_indexes("endpoints")}
    new.close()


def test_lease_and_fencing_tokens(any_store: Store) -> None:
    a = any_store.acquire_lease("a", ttl=60)
    assert a == 1
    assert any_store.acquire_lease("b", ttl=60) is None
    assert any_store.acquire_lease("a", ttl=60) == 1
    any_store.release_lease("a")
    assert any_store.acquire_lease("b", ttl=60) == 2
