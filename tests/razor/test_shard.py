"""Shuffle shards: stable per app, always within the pool, minimal movement (measured)."""

from __future__ import annotations

import hashlib
import random
from ipaddress import ip_address

from sixpod.razor.shard import Shards, capped_shards, moved, ranking, shard

POOL = [ip_address(f"2001:db8:ffff::{i:x}") for i in range(1, 513)]
APPS = {f"app{i}": 0 for i in range(200)}
S = 16


def test_shard_is_stable_and_within_the_pool() -> None:
    a = shard("shop", 0, POOL, S)
    assert a == shard("shop", 0, list(reversed(POOL)), S)  # order of the pool is irrelevant
    assert len(set(a)) == S
    assert set(a) <= set(POOL)
    assert shard("shop", 1, POOL, S) != a  # a new seed draws a new shard
    assert shard("blog", 0, POOL, S) != a
    assert ranking("shop", 0, POOL)[:S] == list(a)


def test_golden_shard() -> None:
    # Must never change across versions or hosts: every Razor must agree.
    assert [str(ip) for ip in shard("shop", 0, POOL, 4)] == GOLDEN


GOLDEN = ["2001:db8:ffff::de", "2001:db8:ffff::d9", "2001:db8:ffff::186", "2001:db8:ffff::da"]


def _moves(before: list, after: list) -> list[int]:  # type: ignore[type-arg]
    return [moved(shard(a, 0, before, S), shard(a, 0, after, S)) for a in APPS]


def test_adding_vips_moves_few_members() -> None:
    grown = [*POOL, *(ip_address(f"2001:db8:fffe::{i:x}") for i in range(1, 33))]
    moves = _moves(POOL, grown)
    # a new VIP enters a shard only by displacing its weakest member: at most one move per
    # new VIP in the shard; the expectation is S * 32/544 ~ 0.94 per app.
    assert max(moves) <= 32
    total = sum(moves)
    assert total / len(APPS) < 2.0
    for a in APPS:
        new = set(shard(a, 0, grown, S)) - set(shard(a, 0, POOL, S))
        assert len(new) == moved(shard(a, 0, POOL, S), shard(a, 0, grown, S))
        assert all(ip not in POOL for ip in new)  # only new VIPs come in


def test_removing_vips_moves_only_the_removed() -> None:
    rng = random.Random(1)
    gone = set(rng.sample(POOL, 32))
    shrunk = [ip for ip in POOL if ip not in gone]
    for a in APPS:
        before = shard(a, 0, POOL, S)
        after = shard(a, 0, shrunk, S)
        assert moved(before, after) == len(set(before) & gone)  # exactly the removed members
    moves = _moves(POOL, shrunk)
    assert sum(moves) / len(APPS) < 2.0  # expected S * 32/512 = 1


def test_rehash_of_everything_would_move_almost_all() -> None:
    # the anchor: a plain hash-mod shard moves nearly every member when the pool grows
    def modulo(app: str, pool: list) -> set:  # type: ignore[type-arg]
        digests = (hashlib.sha256(f"{app}/{i}".encode()).digest() for i in range(S))
        return {pool[int.from_bytes(d[:8], "big") % len(pool)] for d in digests}

    grown = [*POOL, ip_address("2001:db8:fffe::1")]
    naive = sum(len(modulo(a, POOL) - modulo(a, grown)) for a in APPS) / len(APPS)
    ours = sum(_moves(POOL, grown)) / len(APPS)
    assert ours < 0.2
    assert naive > 10


def test_capped_overlap() -> None:
    pool = POOL[:128]
    apps = {f"a{i}": 0 for i in range(40)}
    capped = capped_shards(apps, pool, 8, max_overlap=1)
    names = sorted(capped)
    worst = max(
        len(set(capped[x]) & set(capped[y])) for i, x in enumerate(names) for y in names[i + 1 :]
    )
    assert worst <= 1
    assert all(len(set(v)) == 8 for v in capped.values())
    plain = {a: shard(a, 0, pool, 8) for a in apps}
    worst_plain = max(
        len(set(plain[x]) & set(plain[y])) for i, x in enumerate(names) for y in names[i + 1 :]
    )
    assert worst_plain > 1  # without the cap some pairs share more


def test_shards_cache_follows_pool_and_seeds() -> None:
    s = Shards(S)
    s.set_pool(POOL)
    one = s.shards({"shop": 0, "blog": 0})
    assert one["shop"][1] == shard("shop", 0, POOL, S)
    assert one["shop"][0] == ()
    s.set_pool(POOL[:100])
    assert set(s.shards({"shop": 0})["shop"][1]) <= set(POOL[:100])
    assert s.shards({"shop": 5})["shop"][1] == shard("shop", 5, POOL[:100], S)
    c = Shards(4, max_overlap=0)
    c.set_pool(POOL[:64])
    got = c.shards({"a": 0, "b": 0})
    assert not set(got["a"][1]) & set(got["b"][1])
