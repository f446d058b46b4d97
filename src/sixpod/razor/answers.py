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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import NamedTuple

from sixpod.razor import wire
from sixpod.razor.config import RazorConfig
from sixpod.razor.errors import NOERROR, NXDOMAIN
from sixpod.razor.shard import Shards
from sixpod.razor.state import RazorState
from sixpod.tenants.names import is_app_name

IPAddress = IPv4Address | IPv6Address
QUESTION_NAME = 12  # offset of the question name in every message
DEFAULT = 0  # qtype key of a name's answer for any type not listed


class Answer(NamedTuple):
    """One answer as bytes. ``hdr[i]`` is flags + counts for variant ``i`` = RD (1) | CD (2)
    | OPT present (4); the body is ``prefix + blobs[p][o*rl : o*rl + span] + suffix``."""

    aid: int  # the response class, for rate limiting: see response_class()
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
_new = tuple.__new__
NXDOMAIN_CLASS = -2  # the qtype part of a zone's NXDOMAIN response class


def response_class(name: bytes, qtype: int) -> int:
    """The RRL class of the answers to ``name`` (lowercase wire) and ``qtype`` (BIND's:
    the name and type asked; a zone's NXDOMAIN answers are one class, its apex with
    :data:`NXDOMAIN_CLASS`). It is what the answer is for, not what it holds, so a
    rebuild, a pulled VIP say, leaves every rate-limit bucket as it was. (Python's hash:
    stable within the worker process, which is where the buckets live; never -1, the
    class of cookie answers.)"""
    return hash((name, qtype))


def _classed(name: bytes, entry: dict[int, Answer]) -> None:
    """Give every answer of a name's entry its response class (in place)."""
    for qtype, a in entry.items():
        c = hash((name, qtype))  # response_class(), inlined: once per answer and rebuild
        if a.aid != c:  # a copy sharing the blobs list (reshuffles reach it); tuple.__new__
            entry[qtype] = _new(Answer, (c, *a[1:]))  # is twice as fast as _replace()


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


def _label_starts(name: bytes) -> Iterator[int]:
    """Offsets of the labels of a wire name (no pointers), the first first."""
    i = 0
    while name[i]:
        yield i
        i += name[i] + 1


class _Layout:
    """The sections of one fixed answer laid out after a question of ``qname_len`` bytes,
    every name (owners and names inside NS, SOA and CNAME data) compressed against the
    names before it (RFC 1035 4.1.4)."""

    def __init__(self, qname_len: int) -> None:
        self.base = QUESTION_NAME + qname_len + 4  # where the first record starts
        self.names = wire.Compressor()
        self.body = bytearray()

    @classmethod
    def after(cls, qname: bytes) -> _Layout:
        """Records answering ``qname`` (lowercase wire), which the question holds."""
        lay = cls(len(qname))
        lay.names.add(qname, QUESTION_NAME)
        return lay

    def rr(
        self, owner: bytes, rtype: int, ttl: int, rdata: bytes = b"", names: tuple[bytes, ...] = ()
    ) -> int:
        """Append a record whose data is ``names`` then ``rdata``; the offset of its data."""
        pos = self.base + len(self.body)
        head = self.names.encode(owner, pos)
        at = pos + len(head) + 10
        data = bytearray()
        for n in names:
            data += self.names.encode(n, at + len(data))
        data += rdata
        self.body += head + struct.pack("!HHIH", rtype, wire.IN, ttl, len(data)) + data
        return at


@dataclass
class Zone:
    """A zone's apex and SOA, and what a name below it that does not exist gets."""

    apex: bytes  # lowercase wire
    mname: bytes
    rname: bytes
    soa_numbers: bytes  # serial, refresh, retry, expire, minimum
    neg_ttl: int  # of the SOA in negative answers: min(soa.ttl, soa.minimum), RFC 2308
    _nx: dict[int, Answer] = field(default_factory=dict)
    _nodata: dict[int | bytes, Answer] = field(default_factory=dict)
    nx_aid: int = field(init=False)  # one RRL class per zone

    def soa_into(self, lay: _Layout, ttl: int | None = None) -> None:
        """Append the zone's SOA record (``neg_ttl`` unless ``ttl`` is given)."""
        ttl = self.neg_ttl if ttl is None else ttl
        lay.rr(self.apex, wire.SOA, ttl, self.soa_numbers, (self.mname, self.rname))

    def _negative(self, qname_len: int, qname: bytes | None = None) -> bytes:
        """The SOA for a question of ``qname_len`` bytes below the apex: its owner and the
        names in its data point into the question (the whole ``qname`` if known, else
        its apex)."""
        lay = _Layout(qname_len)
        if qname is None:
            lay.names.add(self.apex, QUESTION_NAME + qname_len - len(self.apex))
        else:
            lay.names.add(qname, QUESTION_NAME)
        self.soa_into(lay)
        return bytes(lay.body)

    def __post_init__(self) -> None:
        self.nx_aid = response_class(self.apex, NXDOMAIN_CLASS)
        # Names below the apex the SOA's names hold: a question ending in one of them
        # compresses past the apex, every other one only down to the apex.
        self._deep = {
            n[i:]
            for n in (self.mname, self.rname)
            if n.endswith(self.apex)
            for i in _label_starts(n)
            if len(n) - i > len(self.apex)
        }

    def nodata(self, qname: bytes) -> Answer:
        """NODATA (NOERROR, no answer) for ``qname`` (lowercase wire, in the zone) with the
        SOA, compressed against the question; names that get the same bytes share one."""
        key: int | bytes = len(qname)
        for i in _label_starts(qname):
            if len(qname) - i <= len(self.apex):
                break
            if qname[i:] in self._deep:
                key = qname
                break
        got = self._nodata.get(key)
        if got is None:
            got = fixed(NOERROR, 0, 1, 0, self._negative(len(qname), qname))
            self._nodata[key] = got
        return got

    def nxdomain(self, qname_len: int) -> Answer:
        """NXDOMAIN with the SOA, its owner pointing at the apex inside the question (any
        name of that length below the apex: the SOA cannot point at more of it)."""
        got = self._nx.get(qname_len)
        if got is None:
            got = fixed(NXDOMAIN, 0, 1, 0, self._negative(qname_len))._replace(aid=self.nx_aid)
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
    builder: _Build | None = None
    _cursor: int = 0

    def lazy(self, qname_lower: bytes) -> dict[int, Answer] | None:
        """Build an app's name on its first query (well-formed lowercase wire name in)."""
        return None if self.builder is None else self.builder.lazy(qname_lower)

    def reshuffle(self, slot: int, rng: random.Random, budget: int | None = None) -> None:
        """Draw new random orders into ``slot`` of every sampled answer (or ``budget`` of
        them from a cursor, so huge tables spread the work over several ticks). The list is
        never replaced: names built later (:meth:`lazy`) append to it."""
        total = len(self.sampled)
        count = total if budget is None else min(budget, total)
        for i in range(count):
            a = self.sampled[(self._cursor + i) % total]
            if a.n > 1 or len(a.rrs) > 1:
                a.blobs[slot % len(a.blobs)] = _orders(list(a.rrs), a.k, 1, rng)[0]
        if total:
            self._cursor = (self._cursor + count) % total

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
        self._hot: set[str] = set()  # apps whose names were built: rebuilt eagerly

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
                    order = self.shards.packed_top(app, seed)[fam]
                    for deep in (False, True):
                        if deep:  # rare: most of the next ranks are pulled too
                            order = self.shards.packed_ranking(app, seed, fam)[len(order) :]
                        for ip in order:
                            if len(healthy) >= k:
                                break
                            if ip in active and ip not in members:
                                healthy.append(ip)
                        if len(healthy) >= k:
                            break
            out.append(healthy)
        return out[0], out[1]

    # -- tables --------------------------------------------------------------------------

    def build(self, state: RazorState) -> Tables:
        """New tables for ``state``: the zones' fixed names, the customer zones, and the app
        names that were built before (app names are otherwise built on their first query:
        :meth:`Tables.lazy`), reusing every answer set whose VIPs did not change."""
        b = _Build(self, state)
        self._hot &= set(b.valid)
        self.shards.prune(b.valid)  # rankings of old seeds and gone apps
        b.static()
        b.customer_zones()
        for name, entry in b.names.items():
            _classed(name, entry)
        hot = self._hot & set(b.valid) if self.cfg.max_overlap is None else set(b.valid)
        for app in sorted(hot):
            b.app_entry(app)
        tables = Tables(
            b.names, b.zones, b.sampled, len(b.valid), b.skipped, state.revision, builder=b
        )
        self._memo = b.used
        return tables


class _Build:
    """One build: the context the fixed names, the app names (now or lazily) and the
    customer zones are made in."""

    def __init__(self, builder: Builder, state: RazorState) -> None:
        self.b = builder
        cfg = self.cfg = builder.cfg
        self.k = cfg.answers
        soa = cfg.soa
        builder.shards.set_pool(state.vips)
        self.active = frozenset(ip.packed for ip in state.active())
        self.valid = {a: s for a, s in state.apps.items() if is_app_name(a)}
        self.skipped = tuple(sorted(set(state.apps) - set(self.valid)))
        self.names: dict[bytes, dict[int, Answer]] = {}
        self.zones: dict[bytes, Zone] = {}
        self.sampled: list[Answer] = []
        self.used: dict[tuple[bytes, bytes, tuple[bytes, ...]], Answer] = {}
        self.built: set[str] = set()
        hinfo = wire.hinfo_rdata(b"RFC8482", b"")
        self.any_answer = fixed(
            NOERROR, 1, 0, 0, wire.record(b"\xc0\x0c", wire.HINFO, soa.ttl, hinfo)
        )
        self.ns_names = [ns.name for ns in cfg.nameservers]
        self.apex, self.zone = self.add_zone(cfg.zone)
        self.fixed_names = {self.apex}
        self._shards: dict[str, tuple[tuple[bytes, ...], tuple[bytes, ...]]] | None = None

    def random_answer(
        self, ips: list[bytes], prefix: bytes = b"", owner: bytes = b"\xc0\x0c"
    ) -> Answer:
        key = (prefix, owner, tuple(ips))
        a = self.used.get(key) or self.b._memo.get(key)
        if a is None:
            a = sampled(
                _rrs(ips, self.cfg.ttl, owner), self.k, prefix=prefix,
                prefix_count=1 if prefix else 0, permutations=self.cfg.permutations,
                rng=self.b.rng,
            )  # fmt: skip
        if key not in self.used:
            self.used[key] = a
            self.sampled.append(a)
        return a

    def add_zone(self, apex_name: str) -> tuple[bytes, Zone]:
        cfg = self.cfg
        soa = cfg.soa
        apex = _lw(apex_name)
        numbers = struct.pack("!IIIII", soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum)
        zone = Zone(
            apex,
            _lw(soa.mname or self.ns_names[0]),
            _lw(soa.rname or f"hostmaster.{apex_name}"),
            numbers,
            min(soa.ttl, soa.minimum),
        )
        self.zones[apex] = zone
        entry: dict[int, Answer] = {}
        lay = _Layout.after(apex)
        zone.soa_into(lay, soa.ttl)
        entry[wire.SOA] = fixed(NOERROR, 1, 0, 0, bytes(lay.body))
        lay = _Layout.after(apex)
        for n in self.ns_names:
            lay.rr(apex, wire.NS, soa.ttl, names=(_lw(n),))
        glue = 0
        for ns in cfg.nameservers:
            if ns.name == apex_name or ns.name.endswith("." + apex_name):
                for a in ns.addresses:
                    rtype = wire.A if a.version == 4 else wire.AAAA
                    lay.rr(_lw(ns.name), rtype, soa.ttl, a.packed)
                    glue += 1
        entry[wire.NS] = fixed(NOERROR, len(self.ns_names), 0, glue, bytes(lay.body))
        entry[wire.ANY] = self.any_answer
        self.names[apex] = entry
        return apex, zone

    def leaf(self, name: bytes, zone: Zone) -> dict[int, Answer]:
        entry = self.names.get(name)
        if entry is None:
            entry = {wire.ANY: self.any_answer}
        entry.setdefault(DEFAULT, zone.nodata(name))
        return entry

    def set_family(
        self, entry: dict[int, Answer], name: bytes, zone: Zone, v4: list[bytes], v6: list[bytes]
    ) -> None:
        fams: tuple[tuple[int, list[bytes]], ...] = ((wire.A, v4), (wire.AAAA, v6))
        for qtype, ips in fams:
            entry[qtype] = self.random_answer(ips) if ips else zone.nodata(name)

    def static(self) -> None:
        """The route zone's apex (the shared name) and its nameservers' names."""
        cfg, apex, zone = self.cfg, self.apex, self.zone
        pool4 = sorted(ip for ip in self.active if len(ip) == 4)
        pool6 = sorted(ip for ip in self.active if len(ip) == 16)
        self.set_family(self.names[apex], apex, zone, pool4, pool6)
        self.names[apex][DEFAULT] = zone.nodata(apex)
        for ns in cfg.nameservers:
            n = _lw(ns.name)
            if n == apex or not ns.name.endswith("." + cfg.zone):
                continue
            e = self.leaf(n, zone)
            g4 = [ip.packed for ip in ns.addresses if ip.version == 4]
            g6 = [ip.packed for ip in ns.addresses if ip.version == 6]
            for qtype, ips in ((wire.A, g4), (wire.AAAA, g6)):
                e[qtype] = (
                    fixed(NOERROR, len(ips), 0, 0, b"".join(_rrs(ips, cfg.soa.ttl)))
                    if ips
                    else zone.nodata(n)
                )
            self.names[n] = e
            self.fixed_names.add(n)
        # Empty non-terminals (names with something below them) answer NODATA, not NXDOMAIN.
        # App names are single labels under the apex, so only these names can make one.
        for n in list(self.names):
            if n == apex:
                continue
            for anc in wire.suffixes(n)[1:]:
                if anc == apex:
                    break
                if anc not in self.names:
                    self.names[anc] = {DEFAULT: zone.nodata(anc)}

    def app_sets(self, app: str) -> tuple[list[bytes], list[bytes]] | None:
        """The packed VIPs the app's answers draw from, or None for an unknown app."""
        seed = self.valid.get(app)
        if seed is None:
            return None
        shards = self.b.shards
        if shards.max_overlap is None:
            r4, r6 = shards.packed_top(app, seed)
            shard = (r4[: shards.size], r6[: shards.size])
        else:
            if self._shards is None:
                self._shards = shards.packed_shards(self.valid)
            shard = self._shards[app]
        return self.b.app_vips(app, seed, shard, self.active)

    def app_entry(self, app: str) -> dict[int, Answer] | None:
        """Build (and enter) the name of one app; None if it has none."""
        sets = self.app_sets(app)
        if sets is None:
            return None
        n = _lw(f"{app}.{self.cfg.zone}")
        if n in self.fixed_names:
            return self.names[n]
        entry = self.leaf(n, self.zone)
        self.set_family(entry, n, self.zone, *sets)
        _classed(n, entry)
        self.names[n] = entry
        self.built.add(app)
        self.b._hot.add(app)
        return entry

    def lazy(self, qname_lower: bytes) -> dict[int, Answer] | None:
        """The entry of ``<app>.<zone>`` built now, if such an app exists."""
        apex = self.apex
        if not qname_lower.endswith(apex) or not qname_lower:
            return None
        label_len = qname_lower[0]
        if label_len + 1 + len(apex) != len(qname_lower):
            return None  # not exactly one label under the apex
        app = qname_lower[1 : 1 + label_len].decode("ascii", "replace")
        return self.app_entry(app)

    def customer_zones(self) -> None:
        """Apex A/AAAA from the app's shard; ``www`` CNAME ``<app>.<zone>``, followed."""
        cfg, zone = self.cfg, self.zone
        for cz in cfg.customer_zones:
            capex, czone = self.add_zone(cz.name)
            sets = self.app_sets(cz.app)
            self.set_family(self.names[capex], capex, czone, *(sets or ([], [])))
            self.names[capex][DEFAULT] = czone.nodata(capex)
            if not cz.www:
                continue
            www = _lw(f"www.{cz.name}")
            target = _lw(f"{cz.app}.{cfg.zone}")

            def with_cname(www: bytes = www, target: bytes = target) -> tuple[_Layout, int]:
                lay = _Layout.after(www)
                return lay, lay.rr(www, wire.CNAME, cfg.ttl, names=(target,))

            def with_soa(rcode: int) -> Answer:
                lay, _ = with_cname()
                zone.soa_into(lay)  # the target's zone (the route zone)
                return fixed(rcode, 1, 1, 0, bytes(lay.body))

            lay, target_at = with_cname()
            cname = bytes(lay.body)
            entry: dict[int, Answer] = {}
            self.names[www] = entry
            if sets is None:  # the target does not exist (RFC 6604: rcode of the last name)
                entry[DEFAULT] = with_soa(NXDOMAIN)
                entry[wire.CNAME] = fixed(NOERROR, 1, 0, 0, cname)
                continue
            # The target exists but has no data of other types: NODATA after the CNAME, with
            # the SOA so resolvers cache it (RFC 2308 2.2); CNAME and ANY get the CNAME.
            entry[DEFAULT] = with_soa(NOERROR)
            entry[wire.CNAME] = entry[wire.ANY] = fixed(NOERROR, 1, 0, 0, cname)
            for qtype, ips in ((wire.A, sets[0]), (wire.AAAA, sets[1])):
                if not ips:
                    entry[qtype] = with_soa(NOERROR)
                    continue
                entry[qtype] = self.random_answer(ips, cname, wire.pointer(target_at))
