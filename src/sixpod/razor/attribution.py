"""Attribution during an attack, pure: which apps' shards hold the attacked VIPs, and what to
change to move the victim away (re-shard it, pull the attacked VIPs).

With shuffle sharding an attacker who targets one customer's name only learns that app's
shard, so the attacked VIPs fall inside it. An app whose shard holds every attacked VIP is a
prime suspect; an uninvolved app holds each attacked VIP only with probability S/N. Apps are
ranked by how many attacked VIPs their shards hold, then by how unlikely that is by chance.
An attack spread over more VIPs than any shard holds points at the shared name (or at the
addresses themselves), which no re-shard can help.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from sixpod import addr
from sixpod.razor.shard import Shards
from sixpod.razor.state import RazorState

IPAddress = IPv4Address | IPv6Address
SEED_SEARCH = 256  # seeds tried for a fresh shard


@dataclass(frozen=True, slots=True)
class Suspect:
    app: str
    hits: int  # attacked VIPs in the app's shards
    attacked: int  # attacked VIPs in the pool
    shard_size: int  # VIPs in the app's shards (both families)
    chance: float  # probability an uninvolved app's shards hold this many or more

    @property
    def coverage(self) -> float:
        return self.hits / self.attacked if self.attacked else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "app": self.app,
            "hits": self.hits,
            "attacked": self.attacked,
            "coverage": round(self.coverage, 4),
            "shard_size": self.shard_size,
            "chance": float(f"{self.chance:.3g}"),
        }


@dataclass(frozen=True, slots=True)
class ReshardPlan:
    """Change ``app``'s seed to ``new_seed`` and blackhole ``pull`` (attacked VIPs)."""

    app: str
    old_seed: int
    new_seed: int
    old_shard: tuple[IPAddress, ...]
    new_shard: tuple[IPAddress, ...]
    pull: tuple[IPAddress, ...]

    def to_json(self) -> dict[str, object]:
        fmt = addr.format_ip
        return {
            "app": self.app,
            "old_seed": self.old_seed,
            "new_seed": self.new_seed,
            "old_shard": [fmt(ip) for ip in self.old_shard],
            "new_shard": [fmt(ip) for ip in self.new_shard],
            "kept": len(set(self.old_shard) & set(self.new_shard)),
            "pull": [fmt(ip) for ip in self.pull],
        }


def _tail(hits: int, draws: int, good: int, total: int) -> float:
    """P(X >= hits) for X hypergeometric: ``draws`` shard members from ``total`` VIPs of
    which ``good`` are attacked."""
    if hits <= 0:
        return 1.0
    denom = math.comb(total, draws)
    if denom == 0:
        return 0.0
    upper = min(draws, good)
    num = sum(
        math.comb(good, i) * math.comb(total - good, draws - i) for i in range(hits, upper + 1)
    )
    return num / denom


def rank_apps(
    attacked: Iterable[IPAddress],
    state: RazorState,
    shards: Shards,
    *,
    limit: int | None = None,
) -> list[Suspect]:
    """Apps whose shards hold attacked VIPs, most likely target first."""
    hit = set(attacked)
    shards.set_pool(state.vips)
    pool = list(state.vips)
    attacked_in_pool = [ip for ip in hit if ip in state.vips]
    out = []
    for app, (s4, s6) in shards.shards(dict(state.apps)).items():
        members = (*s4, *s6)
        hits = sum(1 for ip in members if ip in hit)
        if not hits:
            continue
        chance = 1.0
        for fam, sh in ((4, s4), (6, s6)):
            fam_pool = sum(1 for ip in pool if ip.version == fam)
            fam_hit = sum(1 for ip in attacked_in_pool if ip.version == fam)
            fam_hits = sum(1 for ip in sh if ip in hit)
            chance *= _tail(fam_hits, len(sh), fam_hit, fam_pool)
        out.append(Suspect(app, hits, len(attacked_in_pool), len(members), chance))
    out.sort(key=lambda s: (-s.hits, s.chance, s.app))
    return out[:limit] if limit is not None else out


def plan_reshard(
    app: str, attacked: Iterable[IPAddress], state: RazorState, shards: Shards
) -> ReshardPlan:
    """The seed after ``app``'s current one whose shards avoid every attacked VIP and keep
    the fewest old members (fresh VIPs), and the attacked VIPs of the old shard to pull.
    Shards are the ones Razor serves: under ``max_overlap``, the capped placement."""
    if app not in state.apps:
        raise KeyError(app)
    hit = set(attacked)
    shards.set_pool(state.vips)
    apps = dict(state.apps)
    seed = apps[app]
    o4, o6 = shards.shards(apps)[app]
    old = (*o4, *o6)
    best: tuple[tuple[int, int, int], tuple[IPAddress, ...]] | None = None
    candidates = range(seed + 1, seed + 1 + SEED_SEARCH)
    for candidate, c4, c6 in shards.shards_with_seeds(apps, app, candidates):
        new = (*c4, *c6)
        # (attacked kept, old kept, seed): the lowest wins
        score = (sum(1 for ip in new if ip in hit), len(set(new) & set(old)), candidate)
        if best is None or score < best[0]:
            best = (score, new)
        if score[0] == 0 and score[1] == 0:
            break
    assert best is not None
    pull = tuple(ip for ip in old if ip in hit)
    return ReshardPlan(app, seed, best[0][2], old, best[1], pull)


def apps_holding(
    vips: Iterable[IPAddress], shard_map: Mapping[str, tuple[tuple[IPAddress, ...], ...]]
) -> dict[IPAddress, list[str]]:
    """VIP → apps whose shard holds it (for reports)."""
    out: dict[IPAddress, list[str]] = {ip: [] for ip in vips}
    for app, fams in shard_map.items():
        for sh in fams:
            for ip in sh:
                if ip in out:
                    out[ip].append(app)
    return out
