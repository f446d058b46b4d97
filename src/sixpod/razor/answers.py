"""Pre-encoded answers: built from (config, state) when the state changes, never per query.

Every answer is an :class:`Answer`: the header flags and counts for each (RD, CD, OPT)
variant, and the sections after the echoed question as bytes. Owner names of answer records
are compression pointers to the question (``C00C``), so a record spliced after any spelling
of the question is valid, and the original case is echoed for free.

A random answer (k of h VIPs) keeps ``permutations`` random orders of its h records, each
joined with its first k-1 records appended; a query takes a random window of k consecutive
records from a random one of them: one slice, k distinct VIPs, every VIP equally likely.
:meth:`Tables.reshuffle` replaces one order per answer set every ``reshuffle_interval``, so
the windows drawn change over time as well as per query.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import NamedTuple

from sixpod.razor import wire
from sixpod.razor.config import RazorConfig, is_app_label
from sixpod.razor.errors import NOERROR, NXDOMAIN
from sixpod.razor.shard import Shards
from sixpod.razor.source import RazorState

IPAddress = IPv4Address | IPv6Address
QUESTION_NAME = 12  # offset of the question name in every message
DEFAULT = 0  # qtype key of a name's answer for any type not listed


class Answer(NamedTuple):
    """One answer as bytes. ``hdr[i]`` is flags + counts for variant ``i`` = RD (1) | CD (2)
    | OPT present (4); the body is ``prefix + blobs[p][o*rl : o*rl + span] + suffix``."""

    aid: int  # identity of the response class, for rate limiting
    rcode: int
    hdr: tuple[bytes, ...]
    prefix: bytes
    blobs: list[bytes]
    n: int  # window starts (1 for a fixed answer)
    rl: int  # bytes per record in the window
    span: int  # bytes of the window
    suffix: bytes
    fixed: int  # len(prefix) + span + len(suffix)
    rrs: tuple[bytes, ...]  # the window's records, for reshuffling
    k: int
    mask: int  # len(blobs) - 1 (a power of two minus one)


def _headers(
    rcode: int, an: int, ns: int, ar: int, *, aa: bool = True, tc: bool = False
) -> tuple[bytes, ...]:
    out = []
    for variant in range(8):
        b2 = 0x80 | (0x04 if aa else 0) | (0x02 if tc else 0) | (variant & 1)
        b3 = (0x10 if variant & 2 else 0) | (rcode & 0x0F)
        extra = 1 if variant & 4 else 0
        out.append(struct.pack("!BBHHHH", b2, b3, 1, an, ns, ar + extra))
    return tuple(out)


_ids = iter(range(1, 2**62))


def fixed(
    rcode: int, an: int, ns: int, ar: int, body: bytes, *, tc: bool = False, aa: bool = True
) -> Answer:
    """An answer whose sections never change between queries."""
    return Answer(
        next(_ids), rcode, _headers(rcode, an, ns, ar, tc=tc, aa=aa), b"", [body], 1, 0, len(body),
        b"", len(body), (), 0, 0,
    )  # fmt: skip


def _orders(rrs: list[bytes], k: int, count: int, rng: random.Random) -> list[bytes]:
    out = []
    for _ in range(count):
        p = rrs[:]
        rng.shuffle(p)
        out.append(b"".join(p + p[: k - 1]) if len(p) > k else b"".join(p))
    return out


def sampled(
    rrs: list[bytes], k: int, *, prefix: bytes = b"", prefix_count: int = 0,
    permutations: int, rng: random.Random,
) -> Answer:  # fmt: skip
    """k of ``rrs`` (records of equal length) per query, in random order; all if fewer."""
    rl = len(rrs[0])
    take = min(k, len(rrs))
    n = len(rrs) if len(rrs) > k else 1
    blobs = _orders(rrs, k, permutations, rng)
    span = take * rl
    return Answer(
        next(_ids), NOERROR, _headers(NOERROR, prefix_count + take, 0, 0), prefix, blobs, n, rl,
        span, b"", len(prefix) + span, tuple(rrs), k, len(blobs) - 1,
    )  # fmt: skip


@dataclass
class Zone:
    """A zone's apex and what a name below it that does not exist gets."""

    apex: bytes  # lowercase wire
    soa_tail: bytes  # SOA record after its owner name
    _nx: dict[int, Answer] = field(default_factory=dict)
    _nodata: dict[int, Answer] = field(default_factory=dict)
    nx_aid: int = field(default_factory=lambda: next(_ids))  # one RRL class per zone

    def nodata(self, qname_len: int) -> Answer:
        """NODATA (NOERROR, no answer) with the SOA, its owner pointing at the apex."""
        got = self._nodata.get(qname_len)
        if got is None:
            owner = wire.pointer(QUESTION_NAME + qname_len - len(self.apex))
            got = fixed(NOERROR, 0, 1, 0, owner + self.soa_tail)
            self._nodata[qname_len] = got
        return got

    def nxdomain(self, qname_len: int) -> Answer:
        """NXDOMAIN with the SOA, its owner pointing at the apex inside the question."""
        got = self._nx.get(qname_len)
        if got is None:
            owner = wire.pointer(QUESTION_NAME + qname_len - len(self.apex))
            got = fixed(NXDOMAIN, 0, 1, 0, owner + self.soa_tail)._replace(aid=self.nx_aid)
            self._nx[qname_len] = got
        return got


@dataclass
class Tables:
    """Everything the hot path looks up: lowercase wire name → qtype → :class:`Answer`."""

    names: dict[bytes, dict[int, Answer]]
    zones: dict[bytes, Zone]
    sampled: list[Answer]
    apps: int = 0
    skipped_apps: tuple[str, ...] = ()
    revision: int = 0

    def reshuffle(self, slot: int, rng: random.Random, budget: int | None = None) -> None:
        """Draw new random orders into ``slot`` of every sampled answer (or ``budget`` of
        them, starting at a cursor, so huge tables spread the work over several ticks)."""
        items = self.sampled if budget is None else self.sampled[:budget]
        for a in items:
            if a.n > 1 or len(a.rrs) > 1:
                a.blobs[slot % len(a.blobs)] = _orders(list(a.rrs), a.k, 1, rng)[0]
        if budget is not None and budget < len(self.sampled):
            self.sampled = self.sampled[budget:] + self.sampled[:budget]

    def zone_of(self, qname_lower: bytes) -> Zone | None:
        """The zone whose apex is ``qname_lower`` or an ancestor of it."""
        for suffix in wire.suffixes(qname_lower):
            zone = self.zones.get(suffix)
            if zone is not None:
                return zone
        return None


def _rrs(packed: Iterable[bytes], ttl: int, owner: bytes = b"\xc0\x0c") -> list[bytes]:
    """A/AAAA records of packed addresses (4 bytes: A, 16: AAAA)."""
    return [wire.record(owner, wire.A if len(p) == 4 else wire.AAAA, ttl, p) for p in packed]


def _lw(name: str) -> bytes:
    return wire.name_to_wire(name).lower()


class Builder:
    """Builds :class:`Tables` from the config and a :class:`RazorState`; keeps the shard
    cache between builds so only a pool or seed change recomputes rankings."""

    def __init__(self, cfg: RazorConfig, rng: random.Random | None = None) -> None:
        self.cfg = cfg
        self.rng = rng or random.Random()
        self.shards = Shards(cfg.shard_size, cfg.max_overlap)
        # Answers of the last build by (prefix, owner, VIPs): a state change rebuilds only
        # the answer sets whose VIPs changed (a pulled VIP touches ~S/N of the apps).
        self._memo: dict[tuple[bytes, bytes, tuple[bytes, ...]], Answer] = {}

    # -- VIP selection (pure given the shard cache) -------------------------------------

    def app_vips(
        self,
        app: str,
        seed: int,
        shard: tuple[tuple[bytes, ...], ...],
        active: frozenset[bytes],
    ) -> tuple[list[bytes], list[bytes]]:
        """The (packed) VIPs an app's answers draw from, per family, after the fallback."""
        k = self.cfg.answers
        out: list[list[bytes]] = []
        for fam in (0, 1):
            healthy = [ip for ip in shard[fam] if ip in active]
            if len(healthy) < k:
                if self.cfg.fallback == "nodata":
                    healthy = []
                else:
                    members = set(shard[fam])
                    for ip in self.shards.packed_ranking(app, seed)[fam]:
                        if len(healthy) >= k:
                            break
                        if ip in active and ip not in members:
                            healthy.append(ip)
            out.append(healthy)
        return out[0], out[1]

    # -- tables --------------------------------------------------------------------------

    def build(self, state: RazorState) -> Tables:
        cfg = self.cfg
        rng = self.rng
        perms = cfg.permutations
        k = cfg.answers
        soa = cfg.soa
        neg_ttl = min(soa.ttl, soa.minimum)
        self.shards.set_pool(state.vips)
        active = frozenset(ip.packed for ip in state.active())
        pool4 = sorted(ip for ip in active if len(ip) == 4)
        pool6 = sorted(ip for ip in active if len(ip) == 16)
        names: dict[bytes, dict[int, Answer]] = {}
        zones: dict[bytes, Zone] = {}
        sampled_list: list[Answer] = []
        hinfo = wire.hinfo_rdata(b"RFC8482", b"")
        any_answer = fixed(NOERROR, 1, 0, 0, wire.record(b"\xc0\x0c", wire.HINFO, soa.ttl, hinfo))
        ns_names = [ns.name for ns in cfg.nameservers]
        memo = self._memo
        used: dict[tuple[bytes, bytes, tuple[bytes, ...]], Answer] = {}

        def random_answer(
            ips: list[bytes], prefix: bytes = b"", owner: bytes = b"\xc0\x0c"
        ) -> Answer:
            key = (prefix, owner, tuple(ips))
            a = used.get(key) or memo.get(key)
            if a is None:
                a = sampled(
                    _rrs(ips, cfg.ttl, owner), k, prefix=prefix, prefix_count=1 if prefix else 0,
                    permutations=perms, rng=rng,
                )  # fmt: skip
            if key not in used:
                used[key] = a
                sampled_list.append(a)
            return a

        def add_zone(apex_name: str) -> tuple[bytes, Zone]:
            apex = _lw(apex_name)
            mname = _lw(soa.mname or ns_names[0])
            rname = _lw(soa.rname or f"hostmaster.{apex_name}")
            rdata = wire.soa_rdata(
                mname, rname, soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum
            )
            tail = struct.pack("!HHIH", wire.SOA, wire.IN, neg_ttl, len(rdata)) + rdata
            zone = Zone(apex, tail)
            zones[apex] = zone
            entry: dict[int, Answer] = {}
            entry[wire.SOA] = fixed(
                NOERROR, 1, 0, 0, wire.record(b"\xc0\x0c", wire.SOA, soa.ttl, rdata)
            )
            glue = [
                r
                for ns in cfg.nameservers
                if ns.name == apex_name or ns.name.endswith("." + apex_name)
                for r in _rrs((a.packed for a in ns.addresses), soa.ttl, wire.name_to_wire(ns.name))
            ]
            ns_rrs = b"".join(
                wire.record(b"\xc0\x0c", wire.NS, soa.ttl, wire.name_to_wire(n)) for n in ns_names
            )
            entry[wire.NS] = fixed(NOERROR, len(ns_names), 0, len(glue), ns_rrs + b"".join(glue))
            entry[wire.ANY] = any_answer
            names[apex] = entry
            return apex, zone

        def negative(name: bytes, zone: Zone) -> Answer:
            return zone.nodata(len(name))

        def leaf(name: bytes, zone: Zone) -> dict[int, Answer]:
            entry = names.get(name)
            if entry is None:
                entry = names[name] = {}
                entry[wire.ANY] = any_answer
            entry.setdefault(DEFAULT, negative(name, zone))
            return entry

        def set_family(
            entry: dict[int, Answer],
            name: bytes,
            zone: Zone,
            v4: list[bytes],
            v6: list[bytes],
        ) -> None:
            fams: tuple[tuple[int, list[bytes]], ...] = ((wire.A, v4), (wire.AAAA, v6))
            for qtype, ips in fams:
                entry[qtype] = random_answer(ips) if ips else negative(name, zone)

        # The route zone: apex (the shared name), nameservers, one name per app.
        apex, zone = add_zone(cfg.zone)
        set_family(names[apex], apex, zone, pool4, pool6)
        names[apex][DEFAULT] = negative(apex, zone)
        fixed_names = {apex}
        for ns in cfg.nameservers:
            n = _lw(ns.name)
            if zone.apex == n or not n.endswith(b"\x00") or not ns.name.endswith("." + cfg.zone):
                continue
            e = leaf(n, zone)
            g4 = [ip.packed for ip in ns.addresses if ip.version == 4]
            g6 = [ip.packed for ip in ns.addresses if ip.version == 6]
            for qtype, ips in ((wire.A, g4), (wire.AAAA, g6)):
                e[qtype] = (
                    fixed(NOERROR, len(ips), 0, 0, b"".join(_rrs(ips, soa.ttl)))
                    if ips
                    else negative(n, zone)
                )
            fixed_names.add(n)
        valid = {a: s for a, s in state.apps.items() if is_app_label(a)}
        skipped = tuple(sorted(set(state.apps) - set(valid)))
        shard_map = self.shards.packed_shards(valid)
        app_sets: dict[str, tuple[list[bytes], list[bytes]]] = {}
        for app, seed in valid.items():
            v4, v6 = self.app_vips(app, seed, shard_map[app], active)
            app_sets[app] = (v4, v6)
            n = _lw(f"{app}.{cfg.zone}")
            if n in fixed_names:
                continue
            set_family(leaf(n, zone), n, zone, v4, v6)
        # Empty non-terminals (names with something below them) answer NODATA, not NXDOMAIN.
        for n in list(names):
            if n == apex:
                continue
            for anc in wire.suffixes(n)[1:]:
                if anc == apex:
                    break
                if anc not in names:
                    names[anc] = {DEFAULT: negative(anc, zone)}

        # Customer zones: apex A/AAAA from the app's shard; www CNAME <app>.<zone>, chased.
        for cz in cfg.customer_zones:
            capex, czone = add_zone(cz.name)
            sets = app_sets.get(cz.app)
            set_family(names[capex], capex, czone, *(sets or ([], [])))
            names[capex][DEFAULT] = negative(capex, czone)
            if not cz.www:
                continue
            www = _lw(f"www.{cz.name}")
            target = wire.name_to_wire(f"{cz.app}.{cfg.zone}")
            cname = wire.record(b"\xc0\x0c", wire.CNAME, cfg.ttl, target)
            target_at = QUESTION_NAME + len(www) + 4 + len(cname) - len(target)
            entry = names[www] = {}
            if sets is None:  # the target does not exist (RFC 6604: rcode of the last name)
                dead = fixed(NXDOMAIN, 1, 1, 0, cname + wire.name_to_wire(cfg.zone) + zone.soa_tail)
                entry[DEFAULT] = dead
                entry[wire.CNAME] = fixed(NOERROR, 1, 0, 0, cname)
                continue
            entry[DEFAULT] = fixed(NOERROR, 1, 0, 0, cname)
            for qtype, ips in ((wire.A, sets[0]), (wire.AAAA, sets[1])):
                if not ips:
                    tail = wire.name_to_wire(cfg.zone) + zone.soa_tail
                    entry[qtype] = fixed(NOERROR, 1, 1, 0, cname + tail)
                    continue
                entry[qtype] = random_answer(ips, cname, wire.pointer(target_at))
        self._memo = used
        return Tables(names, zones, sampled_list, len(valid), skipped, state.revision)
