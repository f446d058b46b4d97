"""Shuffle shards by rendezvous (highest-random-weight) hashing, pure and deterministic.

An app's ranking of the pool orders every VIP of a family by ``blake2b(app, seed, vip)``;
its shard is the top ``size``. A VIP added to the pool enters a shard only by beating the
shard's weakest member (which it then replaces: one move); a VIP removed is replaced by the
next in the ranking (one move); no other member moves. The ranking depends only on the app's
name and ``shard_seed`` and the VIP itself, so it is the same in every process and host, and
bumping the seed draws an independent shard (re-sharding).

Optionally :func:`capped_shards` bounds how many VIPs any two apps share (``max_overlap``):
apps are placed in name order, each taking its best-ranked VIPs that keep every pairwise
overlap within the cap, so stability then also depends on the apps placed before it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Any

IPAddress = IPv4Address | IPv6Address


def _base(app: str, seed: int) -> Any:
    h = hashlib.blake2b(digest_size=8, person=b"sixpod-razor")
    h.update(app.encode("utf-8") + b"\x00" + str(seed).encode("ascii"))
    return h


def ranking(app: str, seed: int, pool: Sequence[IPAddress]) -> list[IPAddress]:
    """Every VIP of ``pool`` in the app's rendezvous order, best first."""
    base = _base(app, seed)
    scored = []
    for vip in pool:
        h = base.copy()
        h.update(vip.packed)
        scored.append((h.digest(), vip.packed, vip))
    scored.sort(reverse=True)
    return [vip for _, _, vip in scored]


def shard(app: str, seed: int, pool: Sequence[IPAddress], size: int) -> tuple[IPAddress, ...]:
    """The app's shuffle shard: its ``size`` best-ranked VIPs of ``pool`` (one family)."""
    return tuple(ranking(app, seed, pool)[:size])


def capped_shards(
    apps: Mapping[str, int], pool: Sequence[IPAddress], size: int, max_overlap: int
) -> dict[str, tuple[IPAddress, ...]]:
    """Shards of every app such that two apps share at most ``max_overlap`` VIPs where the
    pool allows; an app that cannot be placed within the cap fills with its best remaining."""
    holders: dict[IPAddress, list[str]] = {}
    out: dict[str, tuple[IPAddress, ...]] = {}
    for app in sorted(apps):
        chosen = _place(ranking(app, apps[app], pool), holders, size, max_overlap)
        for vip in chosen:
            holders.setdefault(vip, []).append(app)
        out[app] = chosen
    return out


def _place(
    order: Iterable[IPAddress],
    holders: Mapping[IPAddress, Sequence[str]],
    size: int,
    max_overlap: int,
) -> tuple[IPAddress, ...]:
    """One app's capped shard: its best-ranked VIPs (``order``) that keep its overlap with
    every app placed before it (``holders``: VIP -> those apps) within the cap."""
    mine: dict[str, int] = {}
    chosen: list[IPAddress] = []
    skipped: list[IPAddress] = []
    for vip in order:
        if len(chosen) == size:
            break
        others = holders.get(vip, ())
        if any(mine.get(o, 0) >= max_overlap for o in others):
            skipped.append(vip)
            continue
        chosen.append(vip)
        for o in others:
            mine[o] = mine.get(o, 0) + 1
    chosen += skipped[: size - len(chosen)]
    return tuple(chosen)


def moved(before: Iterable[IPAddress], after: Iterable[IPAddress]) -> int:
    """How many members of a shard changed (those that left it)."""
    return len(set(before) - set(after))


class Shards:
    """The shards of every app per family, cached by (app, seed) with the next members in
    rank order (the top ``2 * size``, for the pool fallback), recomputed only when the pool
    or the cap changes; :meth:`prune` drops the pairs of old seeds and gone apps. Packed
    addresses are interned: one bytes object per pool VIP."""

    def __init__(self, size: int, max_overlap: int | None = None) -> None:
        self.size = size
        self.depth = 2 * size
        self.max_overlap = max_overlap
        self._pools: tuple[tuple[IPAddress, ...], tuple[IPAddress, ...]] = ((), ())
        self._packed_of: dict[IPAddress, bytes] = {}
        self._top: dict[tuple[str, int], tuple[tuple[IPAddress, ...], tuple[IPAddress, ...]]] = {}
        self._ptop: dict[tuple[str, int], tuple[tuple[bytes, ...], tuple[bytes, ...]]] = {}
        self._capped: dict[str, tuple[tuple[IPAddress, ...], tuple[IPAddress, ...]]] = {}
        self._capped_key: object = None
        self._capped_packed: dict[str, tuple[tuple[bytes, ...], tuple[bytes, ...]]] = {}

    def set_pool(self, pool: Iterable[IPAddress]) -> None:
        """Use this pool from now on (the cache is dropped only if it changed)."""
        ordered = sorted(pool, key=lambda ip: (ip.version, ip.packed))
        pools = (
            tuple(ip for ip in ordered if ip.version == 4),
            tuple(ip for ip in ordered if ip.version == 6),
        )
        if pools != self._pools:
            self._pools = pools
            self._packed_of = {ip: ip.packed for ip in ordered}
            self._top.clear()
            self._ptop.clear()
            self._capped_key = None

    def ranking(self, app: str, seed: int) -> tuple[list[IPAddress], list[IPAddress]]:
        """(IPv4, IPv6) full rankings of the pool for one app (computed, not cached)."""
        return ranking(app, seed, self._pools[0]), ranking(app, seed, self._pools[1])

    def top(self, app: str, seed: int) -> tuple[tuple[IPAddress, ...], tuple[IPAddress, ...]]:
        """The first ``depth`` of each ranking (cached)."""
        key = (app, seed)
        got = self._top.get(key)
        if got is None:
            r4, r6 = self.ranking(app, seed)
            got = (tuple(r4[: self.depth]), tuple(r6[: self.depth]))
            self._top[key] = got
        return got

    def packed_top(self, app: str, seed: int) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """:meth:`top` as packed addresses (cheap to hash and to encode)."""
        key = (app, seed)
        got = self._ptop.get(key)
        if got is None:
            p = self._packed_of
            t4, t6 = self.top(app, seed)
            got = (tuple(p[ip] for ip in t4), tuple(p[ip] for ip in t6))
            self._ptop[key] = got
        return got

    def packed_ranking(self, app: str, seed: int, family: int) -> tuple[bytes, ...]:
        """The whole ranking of one family (0: IPv4, 1: IPv6), packed; computed, not cached."""
        p = self._packed_of
        return tuple(p[ip] for ip in ranking(app, seed, self._pools[family]))

    def packed_shards(
        self, apps: Mapping[str, int]
    ) -> dict[str, tuple[tuple[bytes, ...], tuple[bytes, ...]]]:
        """(IPv4 shard, IPv6 shard) of every app as packed addresses."""
        if self.max_overlap is None:
            self.prune(apps)
            size = self.size
            out = {}
            for app, seed in apps.items():
                r4, r6 = self.packed_top(app, seed)
                out[app] = (r4[:size], r6[:size])
            return out
        shards = self.shards(apps)
        if not self._capped_packed:
            p = self._packed_of
            self._capped_packed = {
                a: (tuple(p[ip] for ip in s4), tuple(p[ip] for ip in s6))
                for a, (s4, s6) in shards.items()
            }
        return dict(self._capped_packed)

    def prune(self, apps: Mapping[str, int]) -> None:
        """Forget the rankings of (app, seed) pairs ``apps`` no longer has (old seeds, gone
        apps) once they are as many as the current ones: the cache stays within about
        twice the apps, and the work is paid once per that many changes."""
        if len(self._top) <= 2 * len(apps) + 64:
            return
        for key in [k for k in self._top if apps.get(k[0]) != k[1]]:
            del self._top[key]
            self._ptop.pop(key, None)

    def shards_with_seeds(
        self, apps: Mapping[str, int], app: str, seeds: Iterable[int]
    ) -> Iterator[tuple[int, tuple[IPAddress, ...], tuple[IPAddress, ...]]]:
        """``(seed, IPv4 shard, IPv6 shard)`` ``app`` would get with each of ``seeds`` (a
        re-shard's candidates), as :meth:`shards` would place it: its top ``size``, or with
        ``max_overlap`` its capped placement after the apps before it in name order (whose
        shards its seed does not change). Computed, not cached."""
        if self.max_overlap is None:
            for seed in seeds:
                r4, r6 = self.ranking(app, seed)
                yield seed, tuple(r4[: self.size]), tuple(r6[: self.size])
            return
        current = self.shards(apps)
        holders: tuple[dict[IPAddress, list[str]], ...] = ({}, {})
        for other in sorted(apps):
            if other >= app:
                break
            for fam in (0, 1):
                for vip in current[other][fam]:
                    holders[fam].setdefault(vip, []).append(other)
        for seed in seeds:
            r4, r6 = self.ranking(app, seed)
            yield (
                seed,
                _place(r4, holders[0], self.size, self.max_overlap),
                _place(r6, holders[1], self.size, self.max_overlap),
            )

    def shards(self, apps: Mapping[str, int]) -> dict[str, tuple[tuple[IPAddress, ...], ...]]:
        """(IPv4 shard, IPv6 shard) of every app."""
        self.prune(apps)
        if self.max_overlap is None:
            out: dict[str, tuple[tuple[IPAddress, ...], ...]] = {}
            for app, seed in apps.items():
                t4, t6 = self.top(app, seed)
                out[app] = (t4[: self.size], t6[: self.size])
            return out
        capped_key = (frozenset(apps.items()), self._pools)
        if capped_key != self._capped_key:
            c4 = capped_shards(apps, self._pools[0], self.size, self.max_overlap)
            c6 = capped_shards(apps, self._pools[1], self.size, self.max_overlap)
            self._capped = {a: (c4[a], c6[a]) for a in apps}
            self._capped_key = capped_key
            self._capped_packed = {}
        return dict(self._capped)
