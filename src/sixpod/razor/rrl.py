"""Response rate limiting (RRL) with slip, sans-IO: time is an argument.

A token bucket per (client prefix, response class): ``responses_per_second`` refill, up to
``burst``. A response over the limit is dropped, except every ``slip``-th one, which is sent
truncated (TC, no records): a real client behind a spoofed flood then retries over TCP,
which cannot be spoofed, while the flood's victim gets at most a small fraction of the
traffic. Response classes are an answer's identity (name and type) for positive answers and
the zone for NXDOMAIN, as in BIND, so random-subdomain floods share one bucket.

TCP cannot be spoofed and is not rate limited, but a client that opens connections and
leaves them idle holds a slot each: :class:`ConnectionLimiter` caps the open connections of
one client prefix, so one client cannot take every slot of a worker.
"""

from __future__ import annotations

import enum
import socket
from collections import OrderedDict
from dataclasses import dataclass

EVICT_PER_TICK = 50_000
"""Most buckets :meth:`RateLimiter.handle_timer` forgets in one call (bounded work)."""


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


class ConnectionLimiter:
    """Open TCP connections per client prefix, at most ``per_client`` each. Prefixes with no
    open connection are forgotten, so the table holds only clients that hold connections."""

    def __init__(self, per_client: int, ipv4_prefix: int, ipv6_prefix: int) -> None:
        if per_client < 1:
            raise ValueError("per_client must be at least 1")
        self.per_client = per_client
        self.prefix = ClientPrefix(ipv4_prefix, ipv6_prefix)
        self._open: dict[bytes, int] = {}
        self.refused = 0

    def open(self, host: str) -> bytes | None:
        """Account a new connection from ``host``: its prefix (give it to :meth:`close`), or
        None when the prefix already holds ``per_client`` (refuse the connection)."""
        key = self.prefix(host)
        n = self._open.get(key, 0)
        if n >= self.per_client:
            self.refused += 1
            return None
        self._open[key] = n + 1
        return key

    def close(self, key: bytes) -> None:
        """A connection :meth:`open` accepted has closed."""
        n = self._open.get(key, 0) - 1
        if n > 0:
            self._open[key] = n
        else:
            self._open.pop(key, None)

    def __len__(self) -> int:
        return len(self._open)


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
