"""The iproute2 codec: ``ip -N -j`` output parsed into the kernel state."""

from __future__ import annotations

import contextlib
import json
from ipaddress import IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st

from resilientkit import (
    JSON,
    SETTINGS,
    V4,
    N,
    fixture,
    nodes,
)
from sixpod.routing.resilient.errors import ParseError
from sixpod.routing.resilient.iproute import parse_kernel_state
from sixpod.routing.resilient.model import (
    MEMBER_BASE,
)
from sixpod.routing.resilient.plan import plan


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40) | JSON.map(json.dumps))
def test_garbage_kernel_json_raises_only_our_error(text: str) -> None:
    for key in ("nexthops", "routes4", "routes6", "rules4", "rules6"):
        args = dict.fromkeys(("nexthops", "routes4", "routes6", "rules4", "rules6"), "[]")
        args[key] = text
        with contextlib.suppress(ParseError):
            parse_kernel_state(**args, table=1000, priority=1000)


def test_zebra_nexthops_parse_and_are_not_ours() -> None:
    state = parse_kernel_state(
        nexthops=fixture("zebra-nexthops-after-flap.json"),
        routes4="",
        routes6="[]",
        rules4="[]",
        rules6="[]",
        table=1000,
        priority=1000,
    )
    assert set(state.nexthops) == {4, 5, 6, 11, 12, 13, 14, 18}
    assert state.nexthops[18].group == ((12, 1), (13, 1))
    assert state.nexthops[12].member() == N[1]
    assert {nh.protocol for nh in state.nexthops.values()} == {11}
    ops = plan({V4: nodes(1, 2)}, state, SETTINGS).ops
    touched = set()
    for op in ops:
        touched |= {getattr(op, "id", MEMBER_BASE), getattr(op, "group", MEMBER_BASE)}
        touched |= set(getattr(op, "members", ()))
    assert len(touched) > 1
    assert min(touched) >= MEMBER_BASE


def test_rules_with_other_selectors_are_not_ours() -> None:
    rules = [
        {"priority": 1000, "src": "all", "dst": "203.0.113.10", "table": "1000"},
        {"priority": 1000, "src": "198.51.100.1", "dst": "203.0.113.11", "table": "1000"},
        {"priority": 1000, "src": "all", "dst": "203.0.113.12", "iif": "lo", "table": "1000"},
        {"priority": 1000, "src": "all", "dst": "203.0.113.0", "dstlen": 24, "table": "1000"},
        {"priority": 1001, "src": "all", "dst": "203.0.113.13", "table": "1000"},
        {"priority": 1000, "src": "all", "dst": "203.0.113.14", "table": "254"},
    ]
    state = parse_kernel_state(
        nexthops="[]",
        routes4="[]",
        routes6="[]",
        rules4=json.dumps(rules),
        rules6="[]",
        table=1000,
        priority=1000,
    )
    assert [(r.dst, r.plain) for r in state.rules] == [
        (V4, True),
        (IPv4Network("203.0.113.11/32"), False),
        (IPv4Network("203.0.113.12/32"), False),
        (IPv4Network("203.0.113.0/24"), True),
    ]
