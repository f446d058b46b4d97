"""The query → response core, sans-IO: bytes, the client's address and the time in, bytes
(or nothing) out. The adapter feeds datagrams and TCP messages and runs :meth:`handle_timer`.

The hot path (:meth:`Engine.respond`) scans the question, looks the lowercase name up in
the pre-encoded :class:`~sixpod.razor.answers.Tables`, draws one random number and
concatenates: id, header, echoed question (original case), a slice of a pre-joined answer,
the OPT record. Nothing it does allocates more than the response itself.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

from sixpod.razor import wire
from sixpod.razor.answers import Answer, Builder, Tables, _headers, fixed
from sixpod.razor.config import RazorConfig
from sixpod.razor.cookies import Cookies
from sixpod.razor.errors import (
    FORMERR,
    NOERROR,
    REFUSED,
    QueryError,
    Unanswerable,
)
from sixpod.razor.rrl import RateLimiter, RrlSettings, Verdict
from sixpod.razor.state import RazorState

_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00"  # QDCOUNT 1, ANCOUNT 0, NSCOUNT 0
_NO_RECORDS = b"\x00" * 6  # QDCOUNT, ANCOUNT, NSCOUNT 0
# Counter slots: 0-23 responses by rcode, then these.
TRUNCATED = 24
RRL_DROPPED = 25
RRL_SLIPPED = 26
UNANSWERED = 27  # not a query, or too short to answer
COOKIES_VALID = 28
COUNTERS = 29
TCP_LIMIT = 65535
RESHUFFLE_BATCH = 256  # answer sets redrawn per timer call at most
COOKIE_CLASS = -1  # the RRL response class of server-cookie answers (tables use ids >= 0)


class Engine:
    """Razor's core: answers queries from tables rebuilt by :meth:`apply`."""

    def __init__(
        self,
        cfg: RazorConfig,
        state: RazorState,
        *,
        rng: random.Random | None = None,
        cookie_secret: bytes | None = None,
    ) -> None:
        self.cfg = cfg
        self.rng = rng or random.Random()
        self._bits: Callable[[int], int] = self.rng.getrandbits
        self.builder = Builder(cfg, self.rng)
        self.tables: Tables = self.builder.build(state)
        self.state = state
        self.max_udp = cfg.max_udp_payload
        self.opt = (wire.opt_record(self.max_udp), wire.opt_record(self.max_udp, do=True))
        self.refused = fixed(REFUSED, 0, 0, 0, b"", aa=False)
        self.formerr_q = fixed(FORMERR, 0, 0, 0, b"")  # question echoed (meta qtypes)
        self.tc = _headers(NOERROR, 0, 0, 0, tc=True)
        self.rrl = (
            RateLimiter(
                RrlSettings(
                    rate=cfg.rrl.responses_per_second,
                    burst=cfg.rrl.burst,
                    slip=cfg.rrl.slip,
                    ipv4_prefix=cfg.rrl.ipv4_prefix,
                    ipv6_prefix=cfg.rrl.ipv6_prefix,
                    max_entries=cfg.rrl.max_entries,
                )
            )
            if cfg.rrl is not None
            else None
        )
        self.cookies = Cookies(cookie_secret or self.rng.randbytes(32)) if cfg.cookies else None
        self.counts = [0] * COUNTERS
        self.fast_path = True  # tests turn it off to compare with the full scan
        self._tick = 0
        self._last_shuffle = 0.0
        self._credit = 0.0  # answer sets owed a new order
        self.wall_offset = 0.0  # wall clock minus ``now``, for cookie timestamps

    # -- state -----------------------------------------------------------------------------

    def apply(self, state: RazorState) -> None:
        """Rebuild the answer tables for a new state (the only place answers change)."""
        self.tables = self.builder.build(state)
        self.state = state

    def handle_timer(self, now: float, wall: float | None = None) -> None:
        """Periodic work: new random orders every ``reshuffle_interval``, RRL eviction.
        ``wall`` (seconds since the epoch) keeps the cookie clock, which must agree across
        the anycast set, in step with ``now`` (monotonic)."""
        if wall is not None:
            self.wall_offset = wall - now
        # New random orders for every answer set about once per reshuffle_interval, spread
        # over the timer calls (at most RESHUFFLE_BATCH sets per call, so no long stall).
        interval = self.cfg.reshuffle_interval
        dt = min(max(now - self._last_shuffle, 0.0), interval)
        self._last_shuffle = now
        total = len(self.tables.sampled)
        self._credit = min(self._credit + total * dt / interval, float(total))
        budget = min(RESHUFFLE_BATCH, int(self._credit))
        if budget:
            self._credit -= budget
            self._tick += 1
            self.tables.reshuffle(self._tick, self.rng, budget=budget)
        if self.rrl is not None:
            self.rrl.handle_timer(now)

    # -- queries -----------------------------------------------------------------------------

    def _error(self, data: bytes, e: QueryError) -> bytes:
        rcode = e.rcode
        flags = struct.pack("!BB", 0x80 | (data[2] & 0x79), rcode & 0x0F)
        self.counts[rcode if rcode < 24 else 0] += 1
        if not e.edns:
            return data[:2] + flags + b"\x00" * 8
        # The fault is inside a well-framed OPT record (an option, the version): the reply
        # carries our OPT (RFC 6891 6.1.1, 7) and echoes the question, which scan() checked.
        opt = wire.opt_record(self.max_udp, ext_rcode=rcode >> 4)
        if data[4:6] == b"\x00\x01":
            qend = wire.name_end(data, 12) + 4
            return data[:2] + flags + b"\x00\x01\x00\x00\x00\x00\x00\x01" + data[12:qend] + opt
        return data[:2] + flags + b"\x00\x00\x00\x00\x00\x00\x00\x01" + opt

    def _cookie_only(self, data: bytes, host: str, now: float, e: QueryError) -> bytes | None:
        """A query with no question and a COOKIE option asks for a server cookie
        (RFC 7873 5.4): NOERROR, no question, our OPT with the cookie. Else the error."""
        if data[2] & 0x78:  # not a standard query (NOTIFY, UPDATE, ...): not a cookie request
            return self._error(data, e)
        try:
            _, do, cookie = wire.scan_opt(data, 12)
        except QueryError as again:  # BADVERS, a malformed cookie: header and our OPT only
            return self._error(data, again)
        if cookie is None or self.cookies is None:
            return self._error(data, e)
        if self.rrl is not None:  # cookie answers are small, but still a reflection
            verdict = self.rrl.check(self.rrl.prefix(host), COOKIE_CLASS, now)
            if verdict is not Verdict.SEND:
                return None
        stamp = int(now + self.wall_offset)
        value, _ = self.cookies.answer(cookie, _packed(host), stamp)
        opt = wire.opt_record(self.max_udp, do=bool(do), options=wire.cookie_option(value))
        flags = struct.pack("!BB", 0x84 | (data[2] & 0x01), 0)
        self.counts[NOERROR] += 1
        return data[:2] + flags + b"\x00\x00\x00\x00\x00\x00\x00\x01" + opt

    def respond(self, data: bytes, host: str, now: float, tcp: bool = False) -> bytes | None:
        """The response to one query from ``host`` (address text) at ``now``; None: silence."""
        # Fast path: a standard query, one question, for a name in the tables. The question
        # name is taken up to its first zero byte; if that is a key of the tables it is a
        # well-formed name (keys are), so walking its labels would have ended there too.
        entry = None
        try:
            if (
                self.fast_path
                and len(data) > 16
                and not data[2] & 0xF8
                and data[4:10] == _ONE_QUESTION
            ):
                end = data.find(b"\x00", 12) + 1
                entry = self.tables.names.get(data[12:end].lower())
            if entry is not None:
                qend = end + 4
                ar = data[10:12]
                if ar == b"\x00\x00" and qend == len(data):
                    payload, do, cookie = -1, 0, None
                elif ar == b"\x00\x01" and qend < len(data):
                    payload, do, cookie = wire.scan_opt(data, qend)
                else:
                    entry = None
                if entry is not None:
                    qtype = data[end] << 8 | data[end + 1]
                    qclass = data[end + 2] << 8 | data[end + 3]
            if entry is None:
                qend, qtype, qclass, payload, do, cookie = wire.scan(data)
        except QueryError as e:
            if data[4:10] == _NO_RECORDS and data[10:12] == b"\x00\x01":
                return self._cookie_only(data, host, now, e)
            return self._error(data, e)
        except Unanswerable:
            self.counts[UNANSWERED] += 1
            return None
        qname = data[12 : qend - 4]
        if qclass != wire.IN:
            ans = self.refused
        elif qtype == wire.OPT or 127 < qtype < 255:
            ans = self.refused if qtype in (wire.AXFR, wire.IXFR) else self.formerr_q
        else:
            if entry is None:
                lower = qname.lower()
                entry = self.tables.names.get(lower) or self.tables.lazy(lower)
            if entry is not None:
                ans = entry.get(qtype) or entry[0]
            else:
                zone = self.tables.zone_of(qname.lower())
                ans = self.refused if zone is None else zone.nxdomain(len(qname))
        variant = (data[2] & 1) | ((data[3] >> 3) & 2)
        verified = False
        if payload < 0:
            opt = b""
            limit = 512
        else:
            variant |= 4
            opt = self.opt[do >> 7]
            limit = payload if payload < self.max_udp else self.max_udp
            if cookie is not None and self.cookies is not None:
                stamp = int(now + self.wall_offset)
                value, verified = self.cookies.answer(cookie, _packed(host), stamp)
                if verified:
                    self.counts[COOKIES_VALID] += 1
                opt = wire.opt_record(self.max_udp, do=bool(do), options=wire.cookie_option(value))
        if tcp:
            limit = TCP_LIMIT
        elif self.rrl is not None and not verified:
            verdict = self.rrl.check(self.rrl.prefix(host), ans.aid, now)
            if verdict is Verdict.DROP:
                self.counts[RRL_DROPPED] += 1
                return None
            if verdict is Verdict.SLIP:
                self.counts[RRL_SLIPPED] += 1
                return data[:2] + self.tc[variant] + data[12:qend] + opt
        if qend + ans.fixed + len(opt) > limit:
            self.counts[TRUNCATED] += 1
            return data[:2] + self.tc[variant] + data[12:qend] + opt
        self.counts[ans.rcode] += 1
        r = self._bits(32)
        o = ((r >> 6) % ans.n) * ans.rl
        return (
            data[:2]
            + ans.hdr[variant]
            + data[12:qend]
            + ans.prefix
            + ans.blobs[r & ans.mask][o : o + ans.span]
            + ans.suffix
            + opt
        )

    def lookup(self, name: str, qtype: int) -> Answer | None:
        """The answer for a name and type (tests and tools), or None outside the tables."""
        lower = wire.name_to_wire(name).lower()
        entry = self.tables.names.get(lower) or self.tables.lazy(lower)
        return None if entry is None else entry.get(qtype) or entry[0]


def _packed(host: str) -> bytes:
    import socket

    if ":" in host:
        return socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
    return socket.inet_aton(host)
