"""Publisher and reader against real Redis: a primary and a replica on loopback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

import pki
from sixpod.inventory.lock import Lock
from sixpod.lab.redisproc import RedisServer, async_wait_until, redis_server, wait_until
from sixpod.tenants import sealed
from sixpod.tenants.errors import Fenced
from sixpod.tenants.guard import GuardLimits
from sixpod.tenants.model import AppSpec, Changed, EndpointRef, EndpointSpec, VipSpec
from sixpod.tenants.publisher import Publisher, PublisherSettings
from sixpod.tenants.reader import ReaderSettings, TenantReader, TenantState
from sixpod.tenants.store import Store
from tenantkit import RunningPublisher

pytestmark = pytest.mark.integration


def eps(lock: Lock, node: str, first: int, n: int, port: int = 80) -> list[EndpointSpec]:
    base = lock.nodes[node].prefix
    return [EndpointSpec.parse(str(base[i]), port) for i in range(first, first + n)]


def reader_for(server: RedisServer, **kw: Any) -> TenantReader:
    return TenantReader(
        ReaderSettings(address=server.endpoint, password_file=str(server.password_file), **kw)
    )


def store_view(store: Store) -> dict[str, set[str]]:
    view: dict[str, set[str]] = {}
    for a in store.list_apps(limit=1000).items:
        items = store.list_endpoints(a.app.name, limit=1000).items
        view[a.app.name] = {f"{i.text} {i.endpoint.weight} {i.endpoint.state.value}" for i in items}
    return view


def reader_view(state: TenantState) -> dict[str, set[str]]:
    return {a: {f"{k} {v}" for k, v in state.upstreams_raw.get(a, {}).items()} for a in state.apps}


async def until_revision(reader: TenantReader, revision: int, timeout: float = 10.0) -> None:
    async def reached() -> bool:
        return reader.state.revision >= revision

    await async_wait_until(reached, timeout=timeout, what=f"reader at revision {revision}")


def test_replica_reader_follows_the_store(
    store: Store, primary: RedisServer, replica: RedisServer, small_lock: Lock
) -> None:
    async def main() -> None:
        with RunningPublisher(store, primary):
            reader = reader_for(replica)
            seen: list[Changed] = []
            reader.add_listener(lambda _s, c: seen.append(c))
            await reader.start()
            try:
                await asyncio.wait_for(reader.ready.wait(), 10)
                store.create_app(AppSpec("shop", owner="acme", settings={"tls": True}))
                w = store.set_endpoints("shop", eps(small_lock, "edge1", 1, 5))
                store.attach_domain("www.shop.example", "shop")
                head = store.set_vip(
                    VipSpec.parse(str(small_lock.vips4[0]), "drained", "maint")
                ).revision
                await until_revision(reader, head)
                st = reader.state
                assert st.apps["shop"].settings == {"tls": True}
                assert len(st.upstreams("shop")) == 5
                assert st.app_for_host("www.shop.example") == "shop"
                assert st.vips[small_lock.vips4[0]].state == "drained"
                assert any(w.revision <= c.revision and "shop" in c.apps for c in seen)
                assert reader.last_lag is not None
                assert reader.last_lag < 5
                assert reader_view(st) == store_view(store)
            finally:
                await reader.stop()

    asyncio.run(main())


def test_primary_restarted_empty_is_rebuilt_and_no_edge_sees_an_empty_list(
    tmp_path: Path, store: Store, small_lock: Lock
) -> None:
    fast = {"repl-ping-replica-period": "1"}
    store.create_app(AppSpec("shop"))
    store.set_endpoints("shop", eps(small_lock, "edge1", 1, 8))

    async def main() -> None:
        with redis_server(tmp_path, config=fast) as first:
            port, password = first.port, first.password
            with redis_server(tmp_path, replica_of=first) as replica:
                wait_until(lambda: replica.info("replication")["master_link_status"] == "up")
                reader = reader_for(replica)
                sizes: list[int] = []
                reader.add_listener(
                    lambda s, _c: sizes.append(len(s.upstreams_raw.get("shop", {})))
                )
                runner = RunningPublisher(store, first)
                with runner as pub:
                    await reader.start()
                    await until_revision(reader, store.head())
                    epoch = reader.state.epoch
                    first.stop()  # the primary dies; it comes back with nothing
                    with redis_server(tmp_path, port=port, password=password, config=fast):
                        # the publisher's client reconnects to the same address by itself
                        w = store.set_endpoints("shop", eps(small_lock, "edge1", 20, 1))

                        async def resynced() -> bool:
                            return (
                                reader.state.epoch != epoch and reader.state.revision >= w.revision
                            )

                        deadline = time.monotonic() + 20
                        while not await resynced():
                            sizes.append(len(reader.state.upstreams_raw.get("shop", {})))
                            assert time.monotonic() < deadline, "reader did not resynchronise"
                            await asyncio.sleep(0.01)
                        assert len(reader.state.upstreams("shop")) == 9
                        assert reader.resyncs >= 2
                        assert pub.metrics.rebuilds._value.get() >= 2
                await reader.stop()
                assert sizes
                assert min(sizes) >= 8, "an edge saw a shrunken or empty upstream list"

    asyncio.run(main())


def test_primary_restarted_empty_is_rebuilt_without_waiting_for_a_write(
    tmp_path: Path, store: Store, small_lock: Lock
) -> None:
    store.create_app(AppSpec("shop"))
    store.set_endpoints("shop", eps(small_lock, "edge1", 1, 3))
    with redis_server(tmp_path) as first:
        port, password = first.port, first.password
        with RunningPublisher(store, first, poll=0.05) as pub:
            wait_until(lambda: first.client().hget("sixpod:meta", "state") == "ready")
            first.stop()
            with redis_server(tmp_path, port=port, password=password) as second:
                client = second.client()
                # no write to the store: the publisher notices the empty primary by itself
                wait_until(lambda: client.hget("sixpod:meta", "state") == "ready", timeout=10)
                assert int(client.hget("sixpod:meta", "revision") or -1) == store.head()
                assert client.hlen("sixpod:up:shop") == 3
                assert pub.metrics.rebuilds._value.get() >= 2


def test_a_stale_publisher_is_fenced(store: Store, primary: RedisServer) -> None:
    c1, c2 = primary.client(), primary.client()
    a = Publisher(store, c1, PublisherSettings(holder="a", lease=60, debounce=0))
    b = Publisher(store, c2, PublisherSettings(holder="b", lease=60, debounce=0))
    a._keep_lease()
    a.step()
    store.create_app(AppSpec("one"))
    a.step()
    assert c1.hget("sixpod:meta", "revision") == str(store.head())
    store.release_lease("a")  # as if a paused past its lease
    b._keep_lease()
    assert b.fence == 2
    store.create_app(AppSpec("two"))
    b.step()
    store.create_app(AppSpec("three"))
    with pytest.raises(Fenced):
        a.step()
    assert c1.exists("sixpod:app:two")
    b.step()
    assert c1.hget("sixpod:meta", "revision") == str(store.head())
    assert c1.hget("sixpod:meta", "fence") == "2"


def test_replay_is_idempotent(store: Store, primary: RedisServer) -> None:
    c = primary.client()
    p = Publisher(store, c, PublisherSettings(debounce=0))
    p._keep_lease()
    p.step()
    store.create_app(AppSpec("one"))
    p.step()
    length = c.xlen("sixpod:log")
    before = c.hgetall("sixpod:app:one")
    p.published -= 1  # forget having published the last change; it is sent again
    p.step()
    assert c.xlen("sixpod:log") == length
    assert c.hgetall("sixpod:app:one") == before
    assert p.published == store.head()


def test_churn_guard_holds_what_two_controllers_removed_until_forced(
    tmp_path: Path, small_lock: Lock, primary: RedisServer
) -> None:
    """Each controller's store sees 3 of 10 removed; the publisher sees 6 and holds them."""
    from tenantkit import open_store

    limits = GuardLimits(app_share=0.5, pod_share=1.0, min_endpoints=4, window=60)
    url = f"sqlite:///{tmp_path / 'g.db'}"
    one = open_store(url, small_lock, guard=limits)
    two = Store(url, lock=small_lock, guard=limits)
    c = primary.client()
    p = Publisher(one, c, PublisherSettings(guard=limits, debounce=0))
    p._keep_lease()
    one.create_app(AppSpec("shop"))
    one.create_app(AppSpec("blog"))
    items = eps(small_lock, "edge1", 1, 10)
    one.set_endpoints("shop", items)
    p.step()
    texts = [EndpointRef(i.address, 80) for i in items]
    # a replace (4 new, 4 old out) is no loss, even in one batch:
    one.set_endpoints("shop", eps(small_lock, "edge1", 20, 4))
    one.set_endpoints("shop", [], remove=texts[6:10])
    p.step()
    assert p.trip is None
    assert c.hlen("sixpod:up:shop") == 10
    blog = one.set_endpoints("blog", eps(small_lock, "edge2", 1, 1)).revision
    one.set_endpoints("shop", [], remove=texts[:3])
    two.set_endpoints("shop", [], remove=texts[3:6])
    p.step()  # ships the blog change before the first removal, holds the rest
    assert p.published == blog
    assert c.hlen("sixpod:up:blog") == 1
    p.step()
    assert p.trip is not None
    assert "10 of 14" in p.trip.reason  # the replace's 4 removals count too, per app
    assert p.metrics.guard_tripped._value.get() == 1
    assert c.hlen("sixpod:up:shop") == 10
    vip = VipSpec.parse(str(small_lock.vips4[0]), "blackholed")
    one.set_vip(vip)  # later changes wait behind the hold
    p.step()
    assert c.hget("sixpod:vip", str(small_lock.vips4[0])).startswith("active")
    one.force_through(one.head())
    p.step()
    assert p.trip is None
    assert c.hlen("sixpod:up:shop") == 4
    assert c.hget("sixpod:vip", str(small_lock.vips4[0])).startswith("blackholed")
    two.close()
    one.close()


def test_the_publishers_brake_holds_many_small_removals_at_the_pod_share(
    tmp_path: Path, small_lock: Lock, primary: RedisServer
) -> None:
    """Two controllers each stay under the pod share; the publisher adds them up against
    the pod as it is now, not as it was counted a few seconds ago."""
    from tenantkit import open_store

    now = [1000.0]
    limits = GuardLimits(app_share=0.5, pod_share=0.2, min_endpoints=4, window=60)
    url = f"sqlite:///{tmp_path / 'g.db'}"
    one = open_store(url, small_lock, guard=limits, clock=lambda: now[0])
    two = Store(url, lock=small_lock, guard=limits, clock=lambda: now[0])
    c = primary.client()
    p = Publisher(one, c, PublisherSettings(guard=limits, debounce=0), clock=lambda: now[0])
    p._keep_lease()
    base = small_lock.nodes["edge1"].prefix
    for a in range(30):
        one.create_app(AppSpec(f"app{a}"))
        one.set_endpoints(
            f"app{a}", [EndpointSpec.parse(str(base[a * 100 + i + 1]), 80) for i in range(40)]
        )
    while p.step():
        pass
    for a in range(30):
        for step, store in enumerate((one, two)):
            gone = [EndpointRef.parse(f"[{base[a * 100 + step * 8 + i + 1]}]:80") for i in range(8)]
            store.set_endpoints(f"app{a}", [], remove=gone)
            now[0] += 0.01
            while p.step():
                now[0] += 0.01
    edges = sum(c.hlen(f"sixpod:up:app{a}") for a in range(30))
    assert p.trip is not None
    assert p.trip.app is None
    assert 1200 - edges <= 0.2 * 1200
    two.close()
    one.close()


def test_reader_keeps_serving_while_its_redis_is_down(
    tmp_path: Path, store: Store, primary: RedisServer, small_lock: Lock
) -> None:
    store.create_app(AppSpec("shop"))
    store.set_endpoints("shop", eps(small_lock, "edge1", 1, 4))

    async def main() -> None:
        with (
            RunningPublisher(store, primary),
            redis_server(tmp_path, replica_of=primary) as replica,
        ):
            port, password = replica.port, replica.password
            reader = reader_for(replica, retry=0.1)
            await reader.start()
            await until_revision(reader, store.head())
            replica.stop()

            async def disconnected() -> bool:
                return not reader.connected

            await async_wait_until(disconnected, timeout=10, what="the reader noticing")
            assert len(reader.state.upstreams("shop")) == 4  # the last good state
            w = store.set_endpoints("shop", eps(small_lock, "edge1", 10, 1))
            with redis_server(tmp_path, replica_of=primary, port=port, password=password):
                await until_revision(reader, w.revision, timeout=20)
                assert len(reader.state.upstreams("shop")) == 5
                assert reader.connected
            await reader.stop()

    asyncio.run(main())


def test_publisher_and_reader_over_a_postgresql_store(
    request: pytest.FixtureRequest, small_lock: Lock, primary: RedisServer, replica: RedisServer
) -> None:
    import secrets

    from tenantkit import open_store

    pg = request.getfixturevalue("postgres")
    store = open_store(pg.create_database(f"p_{secrets.token_hex(4)}"), small_lock)

    async def main() -> None:
        with RunningPublisher(store, primary):
            reader = reader_for(replica)
            await reader.start()
            try:
                store.create_app(AppSpec("shop"))
                for i in range(1, 6):
                    store.set_endpoints("shop", eps(small_lock, "edge2", i, 1))
                store.attach_domain("shop.example", "shop")
                await until_revision(reader, store.head())
                assert reader_view(reader.state) == store_view(store)
                assert reader.state.app_for_host("shop.example") == "shop"
            finally:
                await reader.stop()

    try:
        asyncio.run(main())
    finally:
        store.close()


def test_redis_holding_another_stores_data_is_rebuilt_not_adopted(
    tmp_path: Path, store: Store, primary: RedisServer, small_lock: Lock
) -> None:
    from tenantkit import open_store

    c = primary.client()
    a = Publisher(store, c, PublisherSettings(holder="a", debounce=0))
    a._keep_lease()
    store.create_app(AppSpec("from-a"))
    a.step()
    assert c.exists("sixpod:app:from-a")
    other = open_store(f"sqlite:///{tmp_path / 'other.db'}", small_lock)  # e.g. a restored backup
    other.create_app(AppSpec("from-b"))
    b = Publisher(other, c, PublisherSettings(holder="b", debounce=0))
    b._keep_lease()
    b.step()
    assert not c.exists("sixpod:app:from-a")
    assert c.exists("sixpod:app:from-b")
    assert b.metrics.rebuilds._value.get() == 1
    other.close()


def test_redis_ahead_of_a_restored_store_is_rebuilt(store: Store, primary: RedisServer) -> None:
    """Same epoch, but the commit at Redis's revision is not the store's: a restored backup
    reused those revisions for other changes. Redis must be rebuilt, not adopted."""
    import sqlalchemy as sa

    from sixpod.tenants.schema import outbox_t

    c = primary.client()
    first = Publisher(store, c, PublisherSettings(holder="a", debounce=0))
    first._keep_lease()
    store.create_app(AppSpec("one"))
    first.step()
    head = store.head()
    with store.engine.begin() as conn:  # the restored store committed another change there
        conn.execute(
            sa.update(outbox_t)
            .where(outbox_t.c.revision == head)
            .values(committed_at=outbox_t.c.committed_at + 1)
        )
    store.release_lease("a")
    second = Publisher(store, c, PublisherSettings(holder="b", debounce=0))
    second._keep_lease()
    second.step()
    assert second.metrics.rebuilds._value.get() == 1
    assert c.hget("sixpod:meta", "epoch") != first.epoch


def test_no_error_stops_the_publisher_thread(store: Store, primary: RedisServer) -> None:
    failures = [2]
    real = store.outbox_after

    def flaky(revision: int, *, limit: int = 5000) -> list[Any]:
        if failures[0]:
            failures[0] -= 1
            raise KeyError("a bug somewhere below")
        return real(revision, limit=limit)

    with RunningPublisher(store, primary) as pub:
        wait_until(lambda: pub.epoch is not None, timeout=10)  # attached: Redis rebuilt
        store.outbox_after = flaky  # type: ignore[method-assign]
        store.create_app(AppSpec("late"))
        wait_until(lambda: primary.client().exists("sixpod:app:late"), timeout=15)
        wait_until(lambda: pub.last_error is None, timeout=5)
        assert failures == [0]


def _every_value(client: Any) -> list[bytes]:
    """Every string, hash field value and stream entry field value in ``client``'s Redis."""
    out: list[Any] = []
    for k in client.keys("*"):
        kind = client.type(k)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            out.append(client.get(k))
        elif kind == "hash":
            out.extend(client.hgetall(k).values())
        elif kind == "stream":
            out.extend(v for _, fields in client.xrange(k) for v in fields.values())
        else:
            raise AssertionError(f"{k!r}: a {kind!r} this test does not read")
    return [v.encode() if isinstance(v, str) else v for v in out]


def test_certificates_reach_edge_readers_sealed_and_no_other_reader(
    store: Store, primary: RedisServer, replica: RedisServer
) -> None:
    chain, key = pki.site("shop.example.com", "*.shop.example.com")
    # the store keeps keys as SEC1 / PKCS#1 PEM (what the edge hands to OpenSSL)
    kept = (
        serialization.load_pem_private_key(key.encode(), None)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        .decode()
    )

    async def main() -> None:
        with RunningPublisher(store, primary):
            edge, razor = reader_for(replica, certs=True), reader_for(replica, upstreams=False)
            seen: list[Changed] = []
            edge.add_listener(lambda _s, c: seen.append(c))
            for r in (edge, razor):
                await r.start()
                await asyncio.wait_for(r.ready.wait(), 10)
            try:
                store.put_cert("shop.example.com", chain, key)
                head = store.head()
                await until_revision(edge, head)
                await until_revision(razor, head)
                got = edge.state.certs["shop.example.com"]
                assert got.chain == chain
                assert got.fingerprint == store.get_cert("shop.example.com").fingerprint
                assert sealed.unseal(got.sealed_key, got.domain, pki.SEAL_PRIVATE) == kept
                assert any("shop.example.com" in c.certs for c in seen)
                assert razor.state.certs == {}
                # every value Redis holds, read as values (DUMP compresses, so a key in
                # clear could hide in it): the key is only ever sealed text
                values = _every_value(primary.client())
                assert any(v.startswith(b"sealed1:") for v in values)
                assert not any(b"PRIVATE KEY" in v for v in values)
                raw_key = "".join(kept.splitlines()[1:-1]).encode()
                assert not any(raw_key[:40] in v for v in values)
                # a rebuild carries it too; a deletion takes it away
                epoch = edge.state.epoch
                primary.client().flushall()

                async def rebuilt() -> bool:
                    return edge.state.epoch != epoch

                await async_wait_until(rebuilt, timeout=20, what="a rebuild")
                assert "shop.example.com" in edge.state.certs
                store.delete_cert("shop.example.com")
                await until_revision(edge, store.head())
                assert edge.state.certs == {}
            finally:
                for r in (edge, razor):
                    await r.stop()

    asyncio.run(main())


def test_a_malformed_stream_entry_is_never_applied_nor_fatal(
    store: Store, primary: RedisServer, small_lock: Lock
) -> None:
    store.create_app(AppSpec("shop"))
    store.set_endpoints("shop", eps(small_lock, "edge1", 1, 3))

    async def main() -> None:
        with RunningPublisher(store, primary):
            reader = reader_for(primary, retry=0.05)
            await reader.start()
            try:
                await until_revision(reader, store.head())
                rev = reader.state.revision
                client = primary.client()
                client.xadd(
                    "sixpod:log",
                    {"prev": rev, "rev": rev + 1, "epoch": reader.state.epoch, "ts": "0",
                     "ops": '[["ep", "shop", "[2001:db8::1]:80", "heavy", "up"]]'},
                    id=f"{rev + 1}-0",
                )  # fmt: skip

                async def noticed() -> bool:
                    return reader.malformed >= 2  # and again after the resynchronisation

                await async_wait_until(noticed, timeout=10, what="the bad entry noticed")
                assert reader._task is not None
                assert not reader._task.done()
                assert len(reader.state.upstreams("shop")) == 3
                assert reader.state.revision == rev
            finally:
                await reader.stop()

    asyncio.run(main())


def test_one_malformed_cert_key_does_not_freeze_the_edge_readers_state(
    store: Store, primary: RedisServer, small_lock: Lock
) -> None:
    """A P:cert key without ``fp`` (or a non-numeric ``not_after``) raises in load_cert; the
    reader resynchronises, reads the same key again, and so never bootstraps: every later
    change of any tenant (endpoints, domains) stops reaching this edge."""
    store.create_app(AppSpec("shop"))
    store.set_endpoints("shop", eps(small_lock, "edge1", 1, 3))

    async def main() -> None:
        with RunningPublisher(store, primary):
            reader = reader_for(primary, retry=0.05, certs=True)
            await reader.start()
            try:
                await until_revision(reader, store.head())
                rev = reader.state.revision
                client = primary.client()
                client.hset("sixpod:cert:bad.example", mapping={"chain": "x", "key": "y"})
                # anything that makes the reader resynchronise (here a bad stream entry)
                client.xadd(
                    "sixpod:log",
                    {"prev": rev, "rev": rev + 1, "epoch": reader.state.epoch, "ts": "0",
                     "ops": '[["ep", "shop"]]'},
                    id=f"{rev + 1}-0",
                )  # fmt: skip
                client.xdel("sixpod:log", f"{rev + 1}-0")

                async def noticed() -> bool:
                    return reader.malformed >= 1

                await async_wait_until(noticed, timeout=10, what="the bad entry noticed")
                store.set_endpoints("shop", eps(small_lock, "edge1", 1, 5))
                await until_revision(reader, store.head(), timeout=5)
                assert len(reader.state.upstreams("shop")) == 5
                assert "bad.example" not in reader.state.certs
            finally:
                await reader.stop()

    asyncio.run(main())
