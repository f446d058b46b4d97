"""The store on SQLite and on a real PostgreSQL: outbox, revisions, migrations, snapshots."""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pgproc import Postgres
from sixpod.inventory.lock import Lock
from sixpod.tenants import ops
from sixpod.tenants.errors import Conflict, InvalidInput, Unavailable
from sixpod.tenants.model import AppSpec, EndpointRef, EndpointSpec
from sixpod.tenants.schema import SCHEMA_VERSION
from sixpod.tenants.store import Store
from tenantkit import open_store

DATA = Path(__file__).parent / "data"


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


def eps(lock: Lock, node: str, n: int, port: int = 80) -> list[EndpointSpec]:
    return [EndpointSpec.parse(str(lock.nodes[node].prefix[i]), port) for i in range(1, n + 1)]


def test_outbox_is_gapless_and_in_commit_order_under_concurrent_writers(
    any_store: Store, small_lock: Lock
) -> None:
    for a in ("a", "b", "c", "d"):
        any_store.create_app(AppSpec(a))
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
    any_store.create_app(AppSpec("a"))
    any_store.create_app(AppSpec("b"))
    any_store.set_endpoints("a", eps(small_lock, "edge1", 2))
    head = any_store.head()
    with pytest.raises(Conflict, match="belongs to app 'a'"):
        any_store.set_endpoints("b", eps(small_lock, "edge2", 1) + eps(small_lock, "edge1", 1))
    with pytest.raises(InvalidInput, match="twice"):
        any_store.set_endpoints("b", eps(small_lock, "edge2", 1) * 2)
    assert any_store.head() == head
    assert any_store.list_endpoints("b").items == []


def test_snapshot_is_the_state_as_ops(any_store: Store, small_lock: Lock) -> None:
    any_store.create_app(AppSpec("a", owner="o", settings={"k": "v"}))
    any_store.set_endpoints("a", eps(small_lock, "edge1", 3))
    any_store.attach_domain("www.a.example", "a")
    snap = any_store.snapshot(chunk=4)
    revision = next(snap)
    assert revision == any_store.head()
    got = [op for chunk in snap for op in chunk]  # type: ignore[union-attr]
    kinds = [op.KIND for op in got]
    assert kinds.count("ep") == 3
    assert ops.app("a", "o", 0, {"k": "v"}) in got
    assert ops.domain("www.a.example", "a") in got
    assert kinds.count("vip") == len(small_lock.vips4) + len(small_lock.vips6)


def test_upgrade_from_schema_1_keeps_data(tmp_path: Path, small_lock: Lock) -> None:
    """A database as sixpod 0.1 created it (schema 1, captured) is upgraded in place."""
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript((DATA / "schema_v1.sql").read_text())
        conn.execute(
            "INSERT INTO apps (name, owner, shard_seed, settings, revision) "
            "VALUES ('kept', 'me', 0, '{}', 1)"
        )
        conn.execute(
            "INSERT INTO endpoints (app, address, port, node, weight, state, revision) "
            "VALUES ('kept', '2001:db8:200:1::5', 80, 'edge1', 100, 'up', 1)"
        )
        conn.execute("UPDATE revision SET value = 1")
    conn.close()
    store = Store(f"sqlite:///{db}", lock=small_lock)
    assert store.schema_version() == 1
    assert store.migrate() == SCHEMA_VERSION == 5
    assert store.schema_version() == 5
    assert store.get_app("kept").app.owner == "me"
    assert [e.text for e in store.list_endpoints("kept").items] == ["[2001:db8:200:1::5]:80"]
    assert store.publisher_row().epoch == ""
    with store.engine.connect() as conn:
        assert "ix_endpoints_node" in {i["name"] for i in sa.inspect(conn).get_indexes("endpoints")}
        assert sa.inspect(conn).has_table("certs")
        assert sa.inspect(conn).has_table("acme")
        assert sa.inspect(conn).has_table("acme_challenges")
    assert store.list_certs().items == []
    assert store.list_challenges() == []
    store.sync_pool()
    store.set_endpoints("kept", [EndpointSpec.parse("2001:db8:200:1::6", 80)])
    assert store.head() > 1
    assert store.migrate() == 5  # a second run changes nothing
    store.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'n.db'}")
    store.migrate()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(Unavailable, match="newer than this sixpod"):
        store.migrate()
    store.close()


def test_lease_and_fencing_tokens(any_store: Store) -> None:
    a = any_store.acquire_lease("a", ttl=60)
    assert a == 1
    assert any_store.acquire_lease("b", ttl=60) is None
    assert any_store.acquire_lease("a", ttl=60) == 1
    any_store.release_lease("a")
    assert any_store.acquire_lease("b", ttl=60) == 2


def test_controllers_starting_together_on_postgresql_both_migrate(
    postgres: Postgres, small_lock: Lock
) -> None:
    url = postgres.create_database(f"m_{secrets.token_hex(4)}")
    stores = [Store(url, lock=small_lock) for _ in range(3)]
    results: list[object] = []

    def start(s: Store) -> None:
        try:
            results.append(s.migrate())
        except BaseException as e:  # pragma: no cover - reported below
            results.append(e)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [SCHEMA_VERSION] * 3
    for s in stores:
        s.close()


def test_many_small_removals_never_take_more_than_the_pod_share(
    tmp_path: Path, small_lock: Lock
) -> None:
    """The pod total is counted at most every few seconds; removals made since then are
    not in the pod any more, so they must not pad the base the share is taken of."""
    from sixpod.tenants.errors import ChurnGuardTripped
    from sixpod.tenants.guard import GuardLimits

    now = [1000.0]
    store = open_store(
        f"sqlite:///{tmp_path / 'g.db'}",
        small_lock,
        guard=GuardLimits(app_share=0.5, pod_share=0.2, min_endpoints=4, window=60),
        clock=lambda: now[0],
    )
    base = small_lock.nodes["edge1"].prefix
    for a in range(30):
        store.create_app(AppSpec(f"app{a}"))
        store.set_endpoints(
            f"app{a}", [EndpointSpec.parse(str(base[a * 100 + i + 1]), 80) for i in range(40)]
        )
    removed, refused = 0, None
    for a in range(30):
        for step in range(2):  # 16 of 40: within the app share
            gone = [EndpointRef.parse(f"[{base[a * 100 + step * 8 + i + 1]}]:80") for i in range(8)]
            try:
                store.set_endpoints(f"app{a}", [], remove=gone)
            except ChurnGuardTripped as e:
                refused = e
                break
            removed += 8
            now[0] += 0.01
        if refused:
            break
    assert refused is not None
    assert "the pod would lose" in str(refused)
    assert removed <= 0.2 * 1200
    store.close()


def test_the_pod_total_is_recounted_off_the_write_path(tmp_path: Path, small_lock: Lock) -> None:
    """Counting a million endpoints takes tens of milliseconds: a stale count is refreshed in
    the background while writes go on with the old one; only one too old for the churn
    window is redone inline."""
    from sixpod.tenants.guard import GuardLimits

    now = [1000.0]
    store = open_store(
        f"sqlite:///{tmp_path / 'c.db'}",
        small_lock,
        guard=GuardLimits(window=60),
        clock=lambda: now[0],
    )
    store.create_app(AppSpec("a"))
    base = small_lock.nodes["edge1"].prefix
    store.set_endpoints("a", [EndpointSpec.parse(str(base[i + 1]), 80) for i in range(3)])
    assert store.endpoint_total_cached(now[0]) == (3, 1000.0)
    store.set_endpoints("a", [EndpointSpec.parse(str(base[9]), 80)])
    release, counting = threading.Event(), threading.Event()
    real = store.endpoint_total

    def slow_count() -> int:
        counting.set()
        release.wait(10)
        return real()

    store.endpoint_total = slow_count  # type: ignore[method-assign]
    now[0] += 6  # stale: refreshed in the background, the old count is used meanwhile
    assert store.endpoint_total_cached(now[0]) == (3, 1000.0)
    assert counting.wait(10)
    assert store.endpoint_total_cached(now[0]) == (3, 1000.0)  # one refresh at a time
    release.set()
    for _ in range(500):
        if store.endpoint_total_cached(now[0])[0] == 4:
            break
        time.sleep(0.01)
    assert store.endpoint_total_cached(now[0]) == (4, 1006.0)
    store.endpoint_total = lambda: 7  # type: ignore[method-assign]
    now[0] += 12  # older than the safe bound: counted inline
    assert store.endpoint_total_cached(now[0]) == (7, 1018.0)
