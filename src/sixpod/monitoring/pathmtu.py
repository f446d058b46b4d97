"""Path MTU between two nodes: what the inventory says each hop carries (pure), and what a
probe finds (:mod:`sixpod.monitoring.mtuprobe` sends the packets)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sixpod.devices import Device, NodeDevice, TorDevice

IPV6_HEADERS = 48  # IPv6 (40) + ICMPv6 echo (8): a probe of SIZE carries SIZE - 48 bytes
STANDARD_SIZES = (1280, 1500, 9000)
"""The sizes that matter: IPv6's minimum, plain Ethernet, jumbo frames."""


class PathError(ValueError):
    """A node or ToR the path needs is not in the rendered inventory."""


@dataclass(frozen=True, slots=True)
class Hop:
    what: str
    mtu: int


def _node(docs: Mapping[str, Device], name: str) -> NodeDevice:
    for d in docs.values():
        if isinstance(d, NodeDevice) and d.name == name:
            return d
    known = sorted(d.name for d in docs.values() if isinstance(d, NodeDevice))
    raise PathError(f"no node named {name!r} (nodes: {', '.join(known) or 'none'})")


def _tor(docs: Mapping[str, Device], rack: str) -> TorDevice:
    for d in docs.values():
        if isinstance(d, TorDevice) and d.rack == rack:
            return d
    raise PathError(f"rack {rack} has no ToR in the inventory")


def _port(tor: TorDevice, port: str) -> Hop:
    for p in tor.ports:
        if p.name == port:
            return Hop(f"{tor.name} {port}", p.mtu)
    raise PathError(f"{tor.name} has no port {port}")


def _up(tor: TorDevice) -> list[Hop]:
    """The ToR's way to the spine: ECMP may take any upstream, so the smallest counts."""
    hops = [_port(tor, u.port) for u in tor.upstreams]
    if not hops:
        raise PathError(f"{tor.name} has no upstream: its rack reaches no other rack")
    low = min(hops, key=lambda h: h.mtu)
    spine = next(u.name for u in tor.upstreams if f"{tor.name} {u.port}" == low.what)
    return [Hop(f"{low.what} (to {spine})", low.mtu)]


def path_hops(docs: Mapping[str, Device], src: str, dst: str) -> list[Hop]:
    """Every link MTU a packet from node ``src`` to node ``dst`` crosses, as the inventory
    says (the spine's own ports are not in it: its links are taken to carry what the ToRs'
    upstream ports do)."""
    a, b = _node(docs, src), _node(docs, dst)
    ta, tb = _tor(docs, a.rack), _tor(docs, b.rack)
    hops = [Hop(f"{a.name} uplink", a.uplink.mtu), _port(ta, a.uplink.port)]
    if a.rack != b.rack:
        hops += _up(ta) + _up(tb)
    return [*hops, _port(tb, b.uplink.port), Hop(f"{b.name} uplink", b.uplink.mtu)]


def narrowest(hops: Sequence[Hop]) -> Hop:
    return min(hops, key=lambda h: h.mtu)


class Outcome(StrEnum):
    PASSED = "passed"
    TOO_BIG = "too big"  # a router answered Packet Too Big
    LOCAL = "too big here"  # the sender's own interface carries less
    LOST = "lost"  # no answer: dropped on the way, with no Packet Too Big (a black hole)
    UNREACHABLE = "unreachable"  # a Destination Unreachable or Time Exceeded came back


@dataclass(frozen=True, slots=True)
class Result:
    size: int
    outcome: Outcome
    reported_mtu: int | None = None  # from Packet Too Big, or the local interface
    by: str | None = None  # who said so (the router's address)
    detail: str = ""  # what an unreachable answer said


@dataclass(frozen=True, slots=True)
class Verdict:
    size: int
    expected: bool  # should a packet of this size pass, per the inventory
    result: Result

    @property
    def ok(self) -> bool:
        return self.expected == (self.result.outcome is Outcome.PASSED)

    def explain(self, narrow: Hop) -> str:
        r = self.result
        if self.ok:
            return "as the inventory says"
        if self.expected:
            got = {
                Outcome.TOO_BIG: f"Packet Too Big from {r.by}: MTU {r.reported_mtu}",
                Outcome.LOCAL: f"this host's interface carries {r.reported_mtu}",
                Outcome.LOST: "lost without a Packet Too Big (a black hole)",
                Outcome.UNREACHABLE: f"{r.by} answered {r.detail}",
                Outcome.PASSED: "",
            }[r.outcome]
            mtu = r.reported_mtu
            if r.outcome is Outcome.TOO_BIG and mtu is not None and not 1280 <= mtu < r.size:
                got += f" (bogus: not between 1280 and the probe's {r.size} bytes)"
            return f"should pass (narrowest hop {narrow.what}: {narrow.mtu}); {got}"
        return f"passed, but {narrow.what} carries only {narrow.mtu} per the inventory"


def sizes_to_probe(hops: Sequence[Hop], extra: Sequence[int] = ()) -> list[int]:
    """The standard sizes, each hop's MTU and the sizes asked for, smallest first; never
    below IPv6's minimum."""
    return sorted({s for s in (*STANDARD_SIZES, *(h.mtu for h in hops), *extra) if s >= 1280})


def judge(hops: Sequence[Hop], results: Sequence[Result]) -> list[Verdict]:
    limit = narrowest(hops).mtu
    return [Verdict(r.size, r.size <= limit, r) for r in results]


def path_mtu(results: Sequence[Result], probe: Callable[[int], Result]) -> int | None:
    """The largest size that passes, found by bisection between the largest size that
    passed and the smallest that did not (a Packet Too Big's MTU is tried first); None if
    even the smallest size did not pass."""
    passed = [r.size for r in results if r.outcome is Outcome.PASSED]
    failed = [r.size for r in results if r.outcome is not Outcome.PASSED]
    if not passed:
        return None
    low = max(passed)
    high = min((f for f in failed if f > low), default=None)
    if high is None:
        return low
    hints = sorted(
        {r.reported_mtu for r in results if r.reported_mtu and low < r.reported_mtu < high}
    )
    for hint in hints:
        if probe(hint).outcome is Outcome.PASSED:
            low = hint
        else:
            high = hint
            break
    while high - low > 1:
        mid = (low + high) // 2
        if probe(mid).outcome is Outcome.PASSED:
            low = mid
        else:
            high = mid
    return low
