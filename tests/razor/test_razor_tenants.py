"""Razor following tenant state live: store -> publisher -> Redis primary -> replica -> Razor."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path

import pytest
from test_razor import Razor, _ips, razor, wait_until

from razorkit import config
from sixpod.inventory.lock import parse_lock
from sixpod.lab.redisproc import RedisServer, redis_server
from sixpod.lab.redisproc import wait_until as wait_redis
from sixpod.razor.shard import shard
from sixpod.tenants.model import AppPatch, AppSpec, VipSpec
from sixpod.tenants.publisher import Publisher, PublisherSettings
from sixpod.tenants.store import Store

pytestmark = pytest.mark.integration

LOCK = Path(__file__).resolve().parents[2] / "examples" / "pod.lock"
ZONE = "route.example.net"


@pytest.fixture
def pod(tmp_path: Path) -> Iterator[tuple[Store, RedisServer]]:
    lock = parse_lock(LOCK.read_text(), "pod.lock")[0]
    store = Store(f"sqlite:///{tmp_path / 't.db'}", lock=lock)
    store.migrate()
    store.sync_pool()
    with (
        redis_server(tmp_path) as primary,
        redis_server(tmp_path, replica_of=primary) as replica,
    ):
        wait_redis(lambda: replica.info("replication")["master_link_status"] == "up")
        client = primary.client()
        publisher = Publisher(store, client, PublisherSettings(debounce=0))
        store.on_commit = publisher.notify
        stop = threading.Event()
        thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
        thread.start()
        try:
            yield store, replica
        finally:
            stop.set()
            publisher.wake.set()
            thread.join(timeout=10)
            client.close()
            store.close()


def test_razor_follows_vip_states_and_shards_from_the_replica(
    tmp_path: Path, pod: tuple[Store, RedisServer]
) -> None:
    store, replica = pod
    store.create_app(AppSpec("shop", shard_seed=1))
    tenants = {"address": replica.address, "password_file": str(replica.password_file)}
    extra = {"tenants": tenants, "state_file": None, "pool": {"lock": str(LOCK)}}
    with razor(tmp_path / "razor", {}, **extra) as server:
        name = f"shop.{ZONE}"

        def shard_of(seed: int) -> set[object]:
            pool = [ip for ip in server_pool() if ip.version == 4]
            return set(shard("shop", seed, pool, 24))

        wait_until(lambda: _answers(server, name) <= shard_of(1), timeout=10)
        victim = sorted(_answers(server, name))[0]
        took = _time_until_gone(server, store, name, victim)
        assert took < 1.0, f"a blackholed VIP stayed in answers for {took:.2f} s"
        for _ in range(30):
            got = _answers(server, name)
            assert victim not in got
            assert got <= shard_of(1)
        store.update_app("shop", AppPatch(shard_seed=2))  # re-shard: answers move to the new shard
        wait_until(lambda: _answers(server, name) <= shard_of(2) - {victim}, timeout=5)


def server_pool() -> list[object]:
    lock = parse_lock(LOCK.read_text(), "pod.lock")[0]
    return [*lock.vips4, *lock.vips6]


def _answers(server: Razor, name: str) -> set[object]:
    return _ips(server.query(name, "A"))


def _time_until_gone(server: Razor, store: Store, name: str, victim: object) -> float:
    import time

    store.set_vip(VipSpec.parse(str(victim), "blackholed", "DDoS"))
    start = time.monotonic()
    wait_until(lambda: all(victim not in _answers(server, name) for _ in range(20)), timeout=5)
    return time.monotonic() - start


def test_razor_attribute_cli_reads_the_replica(
    tmp_path: Path, pod: tuple[Store, RedisServer]
) -> None:
    import json
    import subprocess
    import sys

    store, replica = pod
    store.create_app(AppSpec("shop", shard_seed=1))
    store.create_app(AppSpec("blog", shard_seed=5))
    wait_redis(lambda: replica.client().exists("sixpod:app:blog"))
    cfg = {
        "zone": ZONE,
        "nameservers": [{"name": f"ns1.{ZONE}", "addresses": ["2001:db8:53::1"]}],
        "pool": {"lock": str(LOCK)},
        "tenants": {"address": replica.address, "password_file": str(replica.password_file)},
    }
    path = tmp_path / "razor.yaml"
    path.write_text(json.dumps(cfg))
    v4 = [ip for ip in server_pool() if ip_address(str(ip)).version == 4]
    attacked = sorted(shard("shop", 1, v4, 16))[:3]
    sixpod = str(Path(sys.executable).with_name("sixpod"))
    out = subprocess.run(
        [sixpod, "razor", "attribute", "--config", str(path), "--json", *map(str, attacked)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    ranked = json.loads(out.stdout)
    assert json.dumps(ranked).find("shop") >= 0


def test_razor_stays_silent_until_the_tenant_state_is_there(tmp_path: Path) -> None:
    """Redis without tenant state: Razor answers nothing (no NXDOMAIN for apps, no VIP that
    should be pulled) until the publisher has written it."""
    import time

    lock = parse_lock(LOCK.read_text(), "pod.lock")[0]
    store = Store(f"sqlite:///{tmp_path / 't.db'}", lock=lock)
    store.migrate()
    store.sync_pool()
    store.create_app(AppSpec("shop", shard_seed=1))
    with redis_server(tmp_path) as primary:
        client = primary.client()
        publisher = Publisher(store, client, PublisherSettings(debounce=0))
        stop = threading.Event()
        thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
        timer = threading.Timer(3.0, thread.start)  # the state appears 3 s from now
        tenants = {"address": primary.address, "password_file": str(primary.password_file)}
        extra = {"tenants": tenants, "state_file": None, "pool": {"lock": str(LOCK)}}
        start = time.monotonic()
        timer.start()
        try:
            with razor(tmp_path / "razor", {}, **extra) as server:
                assert time.monotonic() - start >= 3.0, "Razor answered before it had the state"
                assert _answers(server, f"shop.{ZONE}")
        finally:
            timer.cancel()
            stop.set()
            publisher.wake.set()
            if thread.is_alive():
                thread.join(timeout=10)
            client.close()
            store.close()


def test_attribution_reads_the_tenants_once_through_the_reader(
    tmp_path: Path, pod: tuple[Store, RedisServer]
) -> None:
    """``load_tenants`` (attribution, the CLI): VIP states and seeds of the replica, kept to
    Razor's pool; Redis without tenant state, or down, is a ConfigError naming it."""
    from sixpod.razor.errors import ConfigError
    from sixpod.razor.feed import StaticFeed
    from sixpod.tenants.model import VipState

    store, replica = pod
    store.create_app(AppSpec("shop", shard_seed=3))
    victim = server_pool()[0]
    store.set_vip(VipSpec.parse(str(victim), "blackholed", "DDoS"))
    wait_redis(lambda: replica.client().hexists("sixpod:vip", str(victim)))
    pool = [str(victim), str(server_pool()[1]), "192.0.2.77"]
    tenants = {"address": replica.address, "password_file": str(replica.password_file)}
    got = StaticFeed(config(pool={"vips": pool}, tenants=tenants)).load()
    assert got.apps == {"shop": 3}
    assert got.vips[victim] is VipState.BLACKHOLED
    assert got.vips[ip_address("192.0.2.77")] is VipState.ACTIVE
    assert set(got.vips) == {ip_address(p) for p in pool}
    assert got.revision >= 2
    with redis_server(tmp_path) as empty:
        bare = {"address": empty.address, "password_file": str(empty.password_file)}
        with pytest.raises(ConfigError, match="has no tenant state"):
            StaticFeed(config(pool={"vips": pool}, tenants=bare)).load()
    with pytest.raises(ConfigError, match=f"Redis at {empty.address}"):
        StaticFeed(config(pool={"vips": pool}, tenants=bare)).load()
    missing = {**tenants, "password_file": str(tmp_path / "nope")}
    with pytest.raises(ConfigError, match="cannot read"):
        StaticFeed(config(pool={"vips": pool}, tenants=missing)).load()
