"""Pure cores: op coalescing, the reader's state applier, the churn guard."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sixpod.tenants import ops
from sixpod.tenants.errors import ChurnGuardTripped
from sixpod.tenants.guard import ChurnWindow, GuardLimits
from sixpod.tenants.reader import Gap, TenantState

EP = [f"[2001:db8:200:1::{i:x}]:80" for i in range(1, 9)]


def entry(prev: int, rev: int, op_list: list[ops.Op], epoch: str = "e1") -> dict[str, str]:
    return {
        "prev": str(prev),
        "rev": str(rev),
        "epoch": epoch,
        "ts": "0",
        "ops": ops.encode(op_list),
    }


def test_apply_entry_follows_and_reports_changes() -> None:
    s = TenantState(epoch="e1", revision=10)
    changed = s.apply_entry(
        entry(10, 12, [ops.app("shop", "acme", 3, {}), ops.endpoint("shop", EP[0], 100, "up")])
    )
    assert changed is not None
    assert changed.apps == {"shop"}
    assert s.revision == 12
    assert s.apps["shop"].shard_seed == 3
    assert [e.port for e in s.upstreams("shop")] == [80]
    assert s.apply_entry(entry(10, 12, [])) is None  # already applied: nothing happens
    with pytest.raises(Gap):
        s.apply_entry(entry(13, 14, []))
    with pytest.raises(Gap):
        s.apply_entry(entry(12, 13, [], epoch="e2"))


def test_wildcard_domains() -> None:
    s = TenantState()
    s.apply_ops([ops.domain("*.shop.example", "shop"), ops.domain("www.shop.example", "www")], 1)
    assert s.app_for_host("www.shop.example") == "www"
    assert s.app_for_host("a.b.shop.example") == "shop"
    assert s.app_for_host("shop.example") is None


def test_app_deletion_clears_its_upstreams_even_when_recreated() -> None:
    seq = [
        ops.endpoint("shop", EP[0], 100, "up"),
        ops.app_deleted("shop"),
        ops.app("shop", "", 0, {}),
        ops.endpoint("shop", EP[1], 100, "up"),
    ]
    s = TenantState()
    s.apply_ops([ops.app("shop", "", 0, {}), ops.endpoint("shop", EP[2], 1, "up")], 1)
    s.apply_ops(ops.coalesce(seq), 2)
    assert [str(e.address) for e in s.upstreams("shop")] == ["2001:db8:200:1::2"]


op_strategy = st.one_of(
    st.builds(
        ops.endpoint,
        st.sampled_from(["a", "b"]),
        st.sampled_from(EP[:3]),
        st.integers(1, 3),
        st.sampled_from(["up", "down"]),
    ),
    st.builds(ops.endpoint_deleted, st.sampled_from(["a", "b"]), st.sampled_from(EP[:3])),
    st.builds(ops.app, st.sampled_from(["a", "b"]), st.just(""), st.integers(0, 2), st.just({})),
    st.builds(ops.app_deleted, st.sampled_from(["a", "b"])),
    st.builds(ops.domain, st.sampled_from(["x.example", "y.example"]), st.sampled_from(["a", "b"])),
    st.builds(ops.domain_deleted, st.sampled_from(["x.example", "y.example"])),
    st.builds(ops.cert, st.sampled_from(["x.example", "*.x.example"]), st.sampled_from("fg"),
              st.integers(0, 9), st.just("CHAIN"), st.just("sealed1:k")),
    st.builds(ops.cert_deleted, st.sampled_from(["x.example", "*.x.example"])),
    st.builds(ops.challenge, st.sampled_from(["t1", "t2"]), st.sampled_from(["t1.a", "t1.b"])),
    st.builds(ops.challenge_deleted, st.sampled_from(["t1", "t2"])),
)  # fmt: skip


@given(st.lists(op_strategy, max_size=30), st.lists(op_strategy, max_size=10))
def test_coalesced_batch_equals_one_by_one(prefix: list[ops.Op], batch: list[ops.Op]) -> None:
    one, two = TenantState(with_certs=True), TenantState(with_certs=True)
    for s in (one, two):
        s.apply_ops(prefix, 1)
    for op in batch:
        one.apply_ops([op], 2)
    two.apply_ops(ops.coalesce(batch), 2)
    assert (one.apps, one.upstreams_raw, one.domains, one.certs, one.challenges) == (
        two.apps, two.upstreams_raw, two.domains, two.certs, two.challenges
    )  # fmt: skip


@given(st.lists(op_strategy, max_size=30), st.integers(0, 30))
def test_replaying_a_suffix_over_a_newer_state_converges(seq: list[ops.Op], cut: int) -> None:
    """A fuzzy snapshot (newer than its revision) plus the stream after it: same state."""
    truth = TenantState()
    truth.apply_ops(seq, 1)
    fuzzy = TenantState()
    fuzzy.apply_ops(seq, 1)  # the snapshot already saw everything...
    fuzzy.apply_ops(seq[cut:], 1)  # ...and the stream replays the tail
    assert (fuzzy.apps, fuzzy.upstreams_raw, fuzzy.domains) == (
        truth.apps,
        truth.upstreams_raw,
        truth.domains,
    )


def test_churn_window_adds_up_small_removals() -> None:
    w = ChurnWindow(GuardLimits(app_share=0.5, pod_share=1.0, min_endpoints=4, window=10))
    assert w.check(0.0, {"a": 2}, {"a": 8}, 100) is None
    w.record(0.0, {"a": 2})
    assert w.check(1.0, {"a": 2}, {"a": 6}, 100) is None
    w.record(1.0, {"a": 2})
    trip = w.check(2.0, {"a": 2}, {"a": 4}, 100)
    assert trip is not None
    assert "6 of 10" in trip.reason
    assert w.check(12.0, {"a": 2}, {"a": 4}, 100) is None  # the window moved on


def test_pod_share() -> None:
    w = ChurnWindow(GuardLimits(app_share=1.0, pod_share=0.2, min_endpoints=4, window=10))
    trip = w.check(0.0, {f"app{i}": 1 for i in range(30)}, {}, 70)
    assert trip is not None
    assert trip.app is None
    assert "30 of 100" in trip.reason


def test_small_apps_are_not_guarded_and_a_replace_is_no_loss() -> None:
    limits = GuardLimits(min_endpoints=4)
    assert not limits.app_trips(3, 0)
    assert limits.app_trips(4, 0)
    w = ChurnWindow(limits)
    w.check_or_raise(0.0, {"a": 4}, {"a": 4}, 100)  # 4 old out, 4 new in: half, not more
    with pytest.raises(ChurnGuardTripped, match="force=true"):
        w.check_or_raise(0.0, {"a": 5}, {"a": 4}, 100)


def test_a_state_without_upstreams_ignores_endpoint_ops() -> None:
    s = TenantState(with_upstreams=False)
    s.apply_ops([ops.app("shop", "", 7, {}), ops.endpoint("shop", EP[0], 1, "up")], 1)
    s.load_upstreams("shop", {EP[1]: "1 up"})
    assert s.apps["shop"].shard_seed == 7
    assert s.upstreams_raw == {}


def test_certificates_and_challenges_are_kept_only_by_a_state_that_wants_them() -> None:
    batch = [
        ops.cert("x.example", "ab", 99, "CHAIN", "sealed1:k"),
        ops.challenge("tok", "tok.thumb"),
    ]
    edge = TenantState(with_certs=True)
    changed = edge.apply_ops(batch, 1)
    assert changed.certs == {"x.example"}
    assert changed.challenges == {"tok"}
    assert edge.certs["x.example"].not_after == 99
    assert "sealed1" not in repr(edge.certs["x.example"])
    assert edge.challenges == {"tok": "tok.thumb"}
    gone = edge.apply_ops([ops.cert_deleted("x.example"), ops.challenge_deleted("tok")], 2)
    assert (gone.certs, gone.challenges) == ({"x.example"}, {"tok"})
    assert edge.certs == {}
    assert edge.challenges == {}
    razor = TenantState(with_upstreams=False)
    assert razor.apply_ops(batch, 1).certs == frozenset()
    razor.load_cert("x.example", {"fp": "ab", "not_after": "1", "chain": "C", "key": "k"})
    assert razor.certs == {}
    assert razor.challenges == {}


@given(st.lists(op_strategy, max_size=20))
def test_every_op_round_trips_through_the_wire(op_list: list[ops.Op]) -> None:
    assert ops.decode(ops.encode(op_list)) == op_list
    for op in op_list:
        assert ops.loads(ops.dumps(op)) == op
        assert ops.to_wire(op)[0] == op.KIND


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ('[["ep", "a", "[2001:db8::1]:80", 1]]', "3 arguments, expected 4"),
        ('[["ep", "a", "[2001:db8::1]:80", "1", "up"]]', "is not int"),
        ('[["app", "a", "", true, "{}"]]', "is not int"),
        ('[["zz", 1]]', "unknown op 'zz'"),
        ("[[]]", "expected a JSON list starting with its kind"),
        ('[{"ep": 1}]', "expected a JSON list starting with its kind"),
        ('{"ops": []}', "expected a JSON list of ops"),
    ],
)
def test_a_malformed_op_is_named(wire: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ops.decode(wire)
