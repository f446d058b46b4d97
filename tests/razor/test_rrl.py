"""Response rate limiting with slip; time is an argument, nothing sleeps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sixpod.razor.rrl import RateLimiter, RrlSettings, Verdict


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


def test_tcp_connections_are_limited_per_client_prefix() -> None:
    from sixpod.razor.rrl import ConnectionLimiter

    limits = ConnectionLimiter(per_client=2, ipv4_prefix=24, ipv6_prefix=56)
    a = [limits.open("192.0.2.1"), limits.open("192.0.2.200")]
    assert None not in a
    assert limits.open("192.0.2.9") is None  # a third from the same /24
    assert limits.open("::ffff:192.0.2.9") is None  # IPv4-mapped is the same client
    assert limits.open("192.0.3.1") is not None  # another /24
    assert limits.open("2001:db8:1:2ff::1") is not None
    limits.close(a[0])
    assert limits.open("192.0.2.9") is not None  # a slot was freed
    assert limits.refused == 2
    for key in list(limits._open):
        while limits._open.get(key):
            limits.close(key)
    assert len(limits) == 0  # closed prefixes are forgotten
