"""Response rate limiting with slip; time is an argument, nothing sleeps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sixpod.razor.rrl import ConnectionTable, Limit, RateLimiter, RrlSettings, Verdict


def test_bucket_limits_and_slips() -> None:
    r = RateLimiter(RrlSettings(rate=10, burst=10, slip=3))
    c = r.prefix("192.0.2.77")
    got = [r.check(c, 1, 0.0) for _ in range(40)]
    assert got[:10] == [Verdict.SEND] * 10
    rest = got[10:]
    assert rest.count(Verdict.SLIP) == 10  # every third of the 30 limited
    assert rest.count(Verdict.DROP) == 20
    assert r.dropped == 20
    assert r.slipped == 10
    # 0.5 s later five tokens are back
    later = [r.check(c, 1, 0.5) for _ in range(6)]
    assert later.count(Verdict.SEND) == 5


def test_classes_and_prefixes_are_separate() -> None:
    r = RateLimiter(RrlSettings(rate=1, burst=1, slip=0))
    a = r.prefix("192.0.2.1")
    assert r.prefix("192.0.2.200") == a  # same /24
    assert r.prefix("192.0.3.1") != a
    assert r.check(a, 1, 0.0) is Verdict.SEND
    assert r.check(a, 1, 0.0) is Verdict.DROP  # slip 0: never truncated
    assert r.check(a, 2, 0.0) is Verdict.SEND  # another response class
    six = r.prefix("2001:db8:1:2ff::1")
    assert six == r.prefix("2001:db8:1:200::9")  # same /56
    assert six != r.prefix("2001:db8:1:300::1")
    assert r.prefix("::ffff:192.0.2.9") == a  # IPv4-mapped counts as IPv4


def test_odd_prefix_lengths() -> None:
    r = RateLimiter(RrlSettings(ipv4_prefix=20, ipv6_prefix=60))
    assert r.prefix("10.1.31.1") == r.prefix("10.1.16.200")
    assert r.prefix("10.1.32.1") != r.prefix("10.1.16.200")
    assert r.prefix("2001:db8::1") == r.prefix("2001:db8:0:f::1")


def test_timer_evicts_idle_buckets() -> None:
    r = RateLimiter(RrlSettings(rate=10, burst=20, max_entries=100))
    for i in range(250):
        r.check(r.prefix(f"10.0.{i}.1"), 1, float(i) / 100)
    assert len(r) == 250
    r.handle_timer(2.0)  # buckets idle >= burst/rate = 2 s are full: forgotten
    assert len(r) < 250
    r.handle_timer(2.1)
    assert len(r) <= 100
    r.handle_timer(100.0)
    assert len(r) == 0


@given(
    steps=st.lists(
        st.tuples(st.floats(0, 0.5, allow_nan=False), st.integers(0, 2), st.integers(0, 1)),
        max_size=300,
    ),
    slip=st.integers(0, 4),
)
def test_never_more_than_the_bucket_allows(steps: list[tuple[float, int, int]], slip: int) -> None:
    s = RrlSettings(rate=4, burst=3, slip=slip)
    r = RateLimiter(s)
    now = 0.0
    sent: dict[tuple[int, int], int] = {}
    limited: dict[tuple[int, int], int] = {}
    for dt, client, cls in steps:
        now += dt
        v = r.check(bytes([client]), cls, now)
        key = (client, cls)
        if v is Verdict.SEND:
            sent[key] = sent.get(key, 0) + 1
        else:
            limited[key] = limited.get(key, 0) + 1
            assert slip or v is Verdict.DROP
        if now > 10:
            r.handle_timer(now)
    for n in sent.values():
        assert n <= s.burst + s.rate * now + 1e-9
    assert r.slipped + r.dropped == sum(limited.values())


def test_eviction_is_bounded_and_least_recently_used_first() -> None:
    import sixpod.razor.rrl as rrl_module

    limiter = RateLimiter(RrlSettings(rate=1.0, burst=5.0, max_entries=10))
    for i in range(30):
        limiter.check(bytes([i]), 0, now=0.0)
    limiter.check(bytes([0]), 0, now=1.0)  # used again: now the most recent
    limiter.handle_timer(now=1.0)
    assert len(limiter) == 10
    assert limiter.check(bytes([0]), 0, now=1.0) is Verdict.SEND
    old = rrl_module.EVICT_PER_TICK
    rrl_module.EVICT_PER_TICK = 3
    try:
        limiter.handle_timer(now=100.0)  # all idle now, but only 3 go per tick
        assert len(limiter) == 7
    finally:
        rrl_module.EVICT_PER_TICK = old
    limiter.handle_timer(now=100.0)
    assert len(limiter) == 0


def table(**over: float) -> ConnectionTable[str]:
    kw: dict[str, float] = {
        "max_connections": 8,
        "per_client": 3,
        "idle_timeout": 10.0,
        "busy_idle_timeout": 1.0,
        "ipv4_prefix": 24,
        "ipv6_prefix": 56,
    }
    kw.update(over)
    return ConnectionTable(**kw)  # type: ignore[arg-type]


def test_a_prefix_at_its_limit_closes_its_own_idlest() -> None:
    """A resolver farm in one /24 keeps its newest connections (RFC 7766 6.2.3)."""
    t = table()
    assert t.open("a", "192.0.2.1", 0.0) is None
    assert t.open("b", "192.0.2.200", 1.0) is None
    assert t.open("c", "::ffff:192.0.2.9", 2.0) is None  # IPv4-mapped: the same /24
    t.touch("a", 3.0)  # a carried a message: b is now the idlest
    assert t.open("d", "192.0.2.9", 4.0) == ("b", Limit.CLIENT)
    assert t.last("b") is None
    assert len(t) == 3
    assert t.open("e", "192.0.3.1", 4.0) is None  # another /24 has room
    t.forget("b")  # its connection_lost comes later: ignored
    assert t.evicted == {Limit.WORKER: 0, Limit.CLIENT: 1}


def test_a_full_worker_closes_the_idlest_of_the_biggest_prefix() -> None:
    t = table(max_connections=6, per_client=3)
    t.open("quiet", "2001:db8:1::1", 0.0)  # the idlest of all, but alone in its /56
    for i, name in enumerate(["x1", "x2", "x3"]):
        t.open(name, "2001:db8:66:100::1", 1.0 + i)
    t.open("y1", "2001:db8:66:200::1", 0.5)
    t.open("y2", "2001:db8:66:200::2", 5.0)
    assert t.open("new", "2001:db8:77::1", 6.0) == ("x1", Limit.WORKER)
    assert t.open("new2", "2001:db8:78::1", 6.0) == ("y1", Limit.WORKER)  # tie: the idlest
    assert t.last("quiet") == 0.0
    assert len(t) == 6
    assert t.evicted[Limit.WORKER] == 2


def test_idle_connections_close_sooner_when_busy() -> None:
    t = table(max_connections=8, per_client=7)
    for i in range(6):  # 6 of 8: not over 75 %
        t.open(f"c{i}", f"192.0.{i}.1", 0.0)
    assert t.timeout() == 10.0
    assert t.handle_timer(5.0) == []
    t.touch("c0", 9.8)  # a query every 9 s keeps a connection ...
    assert t.handle_timer(10.0) == ["c1", "c2", "c3", "c4", "c5"]
    for i in range(7):  # 8 open
        t.open(f"d{i}", f"198.51.{i}.1", 10.0)
    assert t.timeout() == 1.0
    assert t.handle_timer(10.5) == []
    # ... but not while the worker is busy: past 1 s idle, until only 75 % are open
    assert t.handle_timer(11.0) == ["c0", "d0"]
    assert len(t) == 6
    assert t.timeout() == 10.0
    assert t.idle_closed == 7
    for i in range(1, 7):
        t.forget(f"d{i}")
    assert len(t) == 0
    assert t.prefixes() == 0


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 9)), max_size=200))
def test_connection_table_invariants(ops: list[tuple[int, int]]) -> None:
    """Never more than the limits, whatever opens, touches and closes arrive."""
    t = table(max_connections=6, per_client=3)
    now = 0.0
    for n, (op, host) in enumerate(ops):
        now += 0.25
        if op == 0:
            t.open(f"c{n}", f"192.0.{host % 4}.{host}", now)
        elif op == 1 and t._all:
            t.touch(next(iter(t._all)), now)
        elif op == 2 and t._all:
            t.forget(next(reversed(t._all)))
        else:
            t.handle_timer(now)
        assert len(t) <= 6
        assert all(len(d) <= 3 for d in t._by_prefix.values())
        assert sum(len(d) for d in t._by_prefix.values()) == len(t)
