"""The plan's guard, the FRR facts it reads, and the plan's verdicts (pure)."""

from __future__ import annotations

import re

import pytest
from fabkit import rendered

from sixpod.fabric.frrconf import FrrFacts, facts
from sixpod.fabric.guard import Rule, check
from sixpod.fabric.plan import Verdict, make_plan
from sixpod.fabric.sessions import Session, flapped, parse_summary, problems

FRR = rendered("small")["tors/r1-tor/frr.conf"]
NEIGHBORS = {"2001:db8:2ff::2", "2001:db8:2ff:1::2", "2001:db8:2ff:2::2"}


def without(text: str, pattern: str) -> str:
    return "".join(ln for ln in text.splitlines(keepends=True) if not re.search(pattern, ln))


def test_facts_of_the_rendered_config() -> None:
    f = facts(FRR)
    assert f.hostname == "r1-tor"
    assert f.bgp_asn == 64513
    assert f.neighbors == NEIGHBORS
    assert len(f.vips) == 8
    assert "203.0.113.0/32" in f.vips
    assert "2001:db8:2fe::1/128" in f.vips


def test_facts_of_nothing() -> None:
    assert facts("") == FrrFacts(None, None, frozenset(), frozenset())


def rules(old: str, new: str, share: float = 0.25) -> set[Rule]:
    return {v.rule for v in check(facts(old), facts(new), max_removed_share=share)}


def test_the_same_config_breaks_no_rule() -> None:
    assert rules(FRR, FRR) == set()


def test_removing_router_bgp_is_refused() -> None:
    new = FRR.split("router bgp")[0]
    assert Rule.BGP_REMOVED in rules(FRR, new)


def test_changing_the_asn_is_refused() -> None:
    (v,) = [
        v
        for v in check(facts(FRR), facts(FRR.replace("router bgp 64513", "router bgp 64999")),
                       max_removed_share=1)
        if v.rule is Rule.BGP_REMOVED
    ]  # fmt: skip
    assert v.message == "replaces router bgp 64513 with router bgp 64999"


def test_removing_the_hostname_is_refused() -> None:
    assert rules(FRR, without(FRR, r"^hostname ")) == {Rule.HOSTNAME_REMOVED}


def test_removing_more_than_the_share_of_neighbors_is_refused() -> None:
    one = without(FRR, r"2001:db8:2ff:2::2")  # 1 of 3: 33%
    assert rules(FRR, one, share=0.25) == {Rule.NEIGHBORS_REMOVED}
    assert rules(FRR, one, share=0.5) == set()
    (v,) = check(facts(FRR), facts(one), max_removed_share=0.25)
    assert "removes 1 of 3 BGP neighbors (33% > 25%): 2001:db8:2ff:2::2" in v.message


def test_adding_neighbors_is_never_refused() -> None:
    assert rules(without(FRR, r"2001:db8:2ff:2::2"), FRR, share=0) == set()


def test_dropping_every_vip_is_refused_but_not_some() -> None:
    assert rules(FRR, without(FRR, r"prefix-list VIPS-V(4|6) seq \d+ permit")) == {
        Rule.VIPS_DROPPED
    }
    assert rules(FRR, without(FRR, r"prefix-list VIPS-V4 seq \d+ permit")) == set()


def test_a_new_switch_breaks_no_rule() -> None:
    assert rules("", FRR) == set()


def test_an_invalid_config_is_never_planned_even_forced() -> None:
    p = make_plan(
        "t", running=FRR, new="x", syntax=["line 1: % Unknown command"], delta=None,
        max_removed_share=0.25, force=True,
    )  # fmt: skip
    assert p.verdict is Verdict.INVALID
    assert p.delta == ()
    assert not p.deployable
    assert "does not parse" in p.summary


def test_plan_verdicts() -> None:
    same = make_plan("t", running=FRR, new=FRR, syntax=[], delta=[], max_removed_share=0.25)
    assert same.verdict is Verdict.UNCHANGED
    new = FRR.split("router bgp")[0]
    delta = ["Lines To Delete", "===", "no router bgp 64513"]
    refused = make_plan("t", running=FRR, new=new, syntax=[], delta=delta, max_removed_share=0.25)
    assert refused.verdict is Verdict.REFUSED
    assert not refused.deployable
    forced = make_plan(
        "t", running=FRR, new=new, syntax=[], delta=delta, max_removed_share=0.25, force=True
    )
    assert forced.deployable
    assert "forced past: bgp-removed" in forced.summary
    # a refused plan's delta is never shown (nor in JSON); forced, it is what gets deployed
    assert refused.delta == ("Lines To Delete", "no router bgp 64513")
    assert refused.shown_delta == ()
    assert refused.to_json()["delta"] == []
    assert forced.to_json()["delta"] == ["Lines To Delete", "no router bgp 64513"]


SUMMARY = {
    "ipv4Unicast": {
        "peers": {"2001:db8:2ff::2": {"state": "Established", "pfxRcd": 4}},
    },
    "ipv6Unicast": {
        "peers": {
            "2001:db8:2ff::2": {"state": "Established", "pfxRcd": 5},
            "2001:db8:2ff:1::2": {"state": "Active", "pfxRcd": 0},
        },
    },
}


def test_sessions_sum_their_families() -> None:
    s = parse_summary(SUMMARY)
    assert s["2001:db8:2ff::2"] == Session("2001:db8:2ff::2", "Established", 9)
    assert not s["2001:db8:2ff:1::2"].up


@pytest.mark.parametrize(
    ("after", "found"),
    [
        ({"a": Session("a", "Established", 9)}, []),
        ({"a": Session("a", "Established", 10)}, []),
        ({"a": Session("a", "Established", 3)}, ["a: accepts 3 prefixes (was 9)"]),
        ({"a": Session("a", "Active", 0)}, ["a: Active (was Established)"]),
        ({}, ["a: gone (was Established)"]),
    ],
)
def test_a_session_must_come_back_with_its_prefixes(
    after: dict[str, Session], found: list[str]
) -> None:
    before = {"a": Session("a", "Established", 9), "b": Session("b", "Idle", 0)}
    assert problems(before, after) == found


def test_a_removed_neighbor_is_not_waited_for() -> None:
    assert problems({"a": Session("a", "Established", 9)}, {}, removed=["a"]) == []


def test_a_session_that_went_down_and_back_is_a_flap() -> None:
    before = {"a": Session("a", "Established", 2, 60_000), "b": Session("b", "Established", 2)}
    after = {"a": Session("a", "Established", 2, 900), "b": Session("b", "Established", 2, 5)}
    assert flapped(before, after, elapsed_ms=1_000) == ["a", "b"]
    assert flapped(before, after, elapsed_ms=500) == ["b"]
    assert flapped(before, after, elapsed_ms=5) == []
