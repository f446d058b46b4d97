"""Response rate limiting (RRL) with slip, sans-IO: time is an argument.

A token bucket per (client prefix, response class): ``responses_per_second`` refill, up to
``burst``. A response over the limit is dropped, except every ``slip``-th one, which is sent
truncated (TC, no records): a real client behind a spoofed flood then retries over TCP,
which cannot be spoofed, while the flood's victim gets at most a small fraction of the
traffic. Response classes are an answer's identity (name and type) for positive answers and
the zone for NXDOMAIN, as in BIND, so random-subdomain floods share one bucket.

TCP cannot be spoofed and is not rate limited, but a client that opens connections and
leaves them idle holds a slot each: :class:`ConnectionTable` caps the open connections of
one client prefix and, when a worker is full, closes the idlest connection of the biggest
holder instead of refusing the newcomer, so no client can lock the others out.
"""

from __future__ import annotations

import enum
import socket
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

C = TypeVar("C", bound=Hashable)

EVICT_PER_TICK = 50_000
"""Most buckets :meth:`RateLimiter.handle_timer` forgets in one call (bounded work)."""
BUSY = 0.75
"""Above this share of ``max_connections`` open, TCP uses the busy idle timeout."""


class Verdict(enum.IntEnum):
    SEND = 0
    DROP = 1
    SLIP = 2  # send a truncated response


@dataclass(frozen=True, slots=True)
class RrlSettings:
    rate: float = 20.0
    burst: float = 40.0
    slip: int = 2
    ipv4_prefix: int = 24
    ipv6_prefix: int = 56
    max_entries: int = 200_000


def _masker(bits: int, length: int) -> tuple[int, int]:
    """(whole bytes, mask of the next byte) keeping ``bits`` of ``length`` bytes."""
    whole, rest = divmod(bits, 8)
    return whole, (0xFF << (8 - rest)) & 0xFF if rest else 0


class ClientPrefix:
    """A client's network (``ipv4_prefix`` / ``ipv6_prefix`` bits of its address) as bytes:
    the unit RRL and the TCP connection limit count per. IPv4-mapped addresses count as
    IPv4."""

    def __init__(self, ipv4_prefix: int, ipv6_prefix: int) -> None:
        self._m4 = _masker(ipv4_prefix, 4)
        self._m6 = _masker(ipv6_prefix, 16)

    def __call__(self, host: str) -> bytes:
        if ":" in host:
            raw = socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
            if raw[:12] == b"\x00" * 10 + b"\xff\xff":  # IPv4-mapped: limit as IPv4
                raw = raw[12:]
                whole, mask = self._m4
            else:
                whole, mask = self._m6
        else:
            raw = socket.inet_aton(host)
            whole, mask = self._m4
        return raw[:whole] + (bytes([raw[whole] & mask]) if mask else b"")


class Limit(enum.Enum):
    """Why :meth:`ConnectionTable.open` closed an older connection."""

    WORKER = "worker"  # the worker held max_connections
    CLIENT = "client"  # the newcomer's prefix held per_client


class ConnectionTable(Generic[C]):
    """The open TCP connections of one worker, sans-IO: each with its client prefix and the
    time of its last complete message (``now`` is an argument).

    A full table never refuses a newcomer; it names an older connection to close instead, as
    RFC 7766 6.2.3 allows (a server under pressure may close idle connections):

    - the newcomer's prefix already holds ``per_client``: that prefix's idlest connection
      (a resolver farm behind one /24 keeps its newest connections, which carry the retries
      an RRL slip asked for);
    - else the worker holds ``max_connections``: the idlest connection of the prefix that
      holds the most (ties: the idlest of those), so a client spread over many prefixes of
      its own pays first, and a newcomer is always served.

    Connections close after ``idle_timeout`` s without a complete message, or only
    ``busy_idle_timeout`` s while more than :data:`BUSY` of ``max_connections`` are open
    (Unbound shortens its idle timeout under load the same way): see :meth:`handle_timer`.
    """

    def __init__(
        self,
        *,
        max_connections: int,
        per_client: int,
        idle_timeout: float,
        busy_idle_timeout: float,
        ipv4_prefix: int,
        ipv6_prefix: int,
    ) -> None:
        if not 1 <= per_client <= max_connections:
            raise ValueError("need 1 <= per_client <= max_connections")
        self.max_connections = max_connections
        self.per_client = per_client
        self.idle_timeout = idle_timeout
        self.busy_idle_timeout = busy_idle_timeout
        self.prefix = ClientPrefix(ipv4_prefix, ipv6_prefix)
        # Both ordered by the last complete message, the idlest first.
        self._all: OrderedDict[C, float] = OrderedDict()
        self._by_prefix: dict[bytes, OrderedDict[C, float]] = {}
        self._prefix_of: dict[C, bytes] = {}
        self.evicted = {Limit.WORKER: 0, Limit.CLIENT: 0}
        self.idle_closed = 0

    def open(self, conn: C, host: str, now: float) -> tuple[C, Limit] | None:
        """Account a new connection ``conn`` from ``host``; returns the older connection the
        caller must close to make room, and which limit made it, or None."""
        key = self.prefix(host)
        mine = self._by_prefix.get(key)
        victim: tuple[C, Limit] | None = None
        if mine is not None and len(mine) >= self.per_client:
            victim = (next(iter(mine)), Limit.CLIENT)
        elif len(self._all) >= self.max_connections:
            victim = (self._idlest_of_largest(), Limit.WORKER)
        if victim is not None:
            self.forget(victim[0])
            self.evicted[victim[1]] += 1
        self._all[conn] = now
        self._by_prefix.setdefault(key, OrderedDict())[conn] = now
        self._prefix_of[conn] = key
        return victim

    def _idlest_of_largest(self) -> C:
        most = max(len(d) for d in self._by_prefix.values())
        best: C | None = None
        best_t = 0.0
        for d in self._by_prefix.values():  # O(prefixes), at most max_connections
            if len(d) == most:
                c, t = next(iter(d.items()))
                if best is None or t < best_t:
                    best, best_t = c, t
        assert best is not None
        return best

    def touch(self, conn: C, now: float) -> None:
        """``conn`` carried a complete message: its idle time starts again."""
        key = self._prefix_of.get(conn)
        if key is None:
            return
        self._all[conn] = now
        self._all.move_to_end(conn)
        d = self._by_prefix[key]
        d[conn] = now
        d.move_to_end(conn)

    def last(self, conn: C) -> float | None:
        """When ``conn`` last carried a complete message (or opened); None if not held."""
        return self._all.get(conn)

    def forget(self, conn: C) -> None:
        """``conn`` has closed (or is being closed); unknown connections are ignored."""
        key = self._prefix_of.pop(conn, None)
        if key is None:
            return
        del self._all[conn]
        d = self._by_prefix[key]
        del d[conn]
        if not d:
            del self._by_prefix[key]

    def timeout(self) -> float:
        """The idle timeout that applies now: shorter while the worker is busy."""
        busy = len(self._all) > BUSY * self.max_connections
        return self.busy_idle_timeout if busy else self.idle_timeout

    def handle_timer(self, now: float) -> list[C]:
        """The connections idle past :meth:`timeout`, forgotten here; the caller closes
        them. Work is proportional to the connections that expire."""
        out: list[C] = []
        while self._all:
            conn, last = next(iter(self._all.items()))
            if now - last < self.timeout():
                break
            self.forget(conn)
            out.append(conn)
        self.idle_closed += len(out)
        return out

    def __len__(self) -> int:
        return len(self._all)

    def prefixes(self) -> int:
        """Client prefixes holding at least one connection."""
        return len(self._by_prefix)


class RateLimiter:
    """Decides per response whether to send, drop or slip it; :meth:`handle_timer` evicts
    idle buckets so the table stays within ``max_entries``."""

    def __init__(self, settings: RrlSettings) -> None:
        self.s = settings
        # Ordered by last use, the least recent first: eviction pops from the front.
        self._buckets: OrderedDict[tuple[bytes, int], list[float]] = OrderedDict()
        self.prefix = ClientPrefix(settings.ipv4_prefix, settings.ipv6_prefix)
        """The client's network (``ipv4_prefix`` / ``ipv6_prefix`` bits) as bytes."""
        self.dropped = 0
        self.slipped = 0

    def check(self, client: bytes, response_class: int, now: float) -> Verdict:
        """Account one response to ``client`` (a :meth:`prefix`) at time ``now`` (seconds)."""
        key = (client, response_class)
        b = self._buckets.get(key)
        s = self.s
        if b is None:
            self._buckets[key] = [s.burst - 1.0, now, 0.0]
            return Verdict.SEND
        self._buckets.move_to_end(key)
        tokens = min(s.burst, b[0] + (now - b[1]) * s.rate)
        b[1] = now
        if tokens >= 1.0:
            b[0] = tokens - 1.0
            return Verdict.SEND
        b[0] = tokens
        b[2] += 1
        if s.slip and b[2] % s.slip == 0:
            self.slipped += 1
            return Verdict.SLIP
        self.dropped += 1
        return Verdict.DROP

    def handle_timer(self, now: float) -> None:
        """Forget buckets that have refilled (idle clients) and, past ``max_entries``, the
        least recently used; at most :data:`EVICT_PER_TICK` per call, so a flood from many
        prefixes never stalls the loop."""
        s = self.s
        full_after = s.burst / s.rate
        buckets = self._buckets
        for _ in range(EVICT_PER_TICK):
            if not buckets:
                return
            oldest = buckets[next(iter(buckets))]
            if now - oldest[1] < full_after and len(buckets) <= s.max_entries:
                return
            buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
