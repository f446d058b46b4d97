"""Drills against a running lab (``sixpod lab drill NAME``): break one thing, measure.

Each drill takes a running :class:`~sixpod.lab.pod.LabPod` (brought up in this process, or
attached to one that ``sixpod lab up`` left running), breaks one part of the pod the way it
breaks in production, watches what the rest of the pod does, puts the part back, and returns
a :class:`DrillResult`: the lines it printed, its figures (times in seconds, counts) and
whether the pod behaved (``ok``; the problems say why not). A drill raises
:class:`~sixpod.lab.netns.LabError` only when it could not run at all (the lab is not in the
shape it needs). Everything a drill starts again (a node's processes, the Redis primary, the
controller) belongs to the lab: an attached lab's saved state is updated, so ``sixpod lab
down`` stops it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sixpod.lab.netns import LabError, _start_time, kill_stragglers, wait_for
from sixpod.lab.pod import LabNode, LabPod

FLOWS = 32
"""Long-lived client flows held through a drill (each its own ECMP hash)."""


@dataclass
class DrillResult:
    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    echo: Callable[[str], None] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def say(self, line: str) -> None:
        self.lines.append(line)
        if self.echo is not None:
            self.echo(line)

    def expect(self, held: bool, problem: str) -> None:
        """Record ``problem`` (and say it) unless ``held``."""
        if not held:
            self.problems.append(problem)
            self.say(f"FAILED: {problem}")

    def to_json(self) -> dict[str, Any]:
        return {
            "drill": self.name,
            "ok": self.ok,
            "figures": self.figures,
            "problems": self.problems,
        }


# -- helpers ------------------------------------------------------------------------------


def _elapsed(t0: float) -> float:
    return round(time.monotonic() - t0, 3)


def _rack_edges(pod: LabPod) -> tuple[str, list[LabNode]]:
    """The first rack with at least two edge nodes (a drill needs a survivor)."""
    for rack in pod.tors:
        edges = [n for n in pod.nodes.values() if n.edge and n.doc.rack == rack]
        if len(edges) >= 2:
            return rack, edges
    raise LabError("no rack has two edge nodes: the drill needs one to fail and one to serve")


def _vip_keys(node: LabNode) -> list[str]:
    return [f"{v}/{32 if v.version == 4 else 128}" for v in node.doc.vips.all]


def _in_ecmp(pod: LabPod, rack: str, node: LabNode) -> set[str]:
    """The node's VIPs (as FRR keys them) whose selected next hops on the ToR include it."""
    routes = pod.all_routes(rack)
    return {k for k in _vip_keys(node) if node.address in routes.get(k, set())}


def _watch(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> float | None:
    """Seconds until ``predicate`` holds (polled from now), None if it did not in time."""
    t0 = time.monotonic()
    try:
        wait_for(predicate, timeout=timeout, interval=interval, what="")
    except LabError:
        return None
    return _elapsed(t0)


class _Timer(threading.Thread):
    """Polls a condition in the background from ``t0``; ``seconds`` once it held."""

    def __init__(self, t0: float, predicate: Callable[[], bool], timeout: float) -> None:
        super().__init__(daemon=True)
        self.t0, self.predicate, self.timeout = t0, predicate, timeout
        self.seconds: float | None = None
        self.error: str = ""

    def run(self) -> None:
        deadline = self.t0 + self.timeout
        while time.monotonic() < deadline:
            try:
                if self.predicate():
                    self.seconds = _elapsed(self.t0)
                    return
            except LabError as e:  # a daemon restarting: look again
                self.error = str(e)
            time.sleep(0.02)


def _saved_processes(pod: LabPod) -> list[dict[str, Any]]:
    if pod.saved_state is None:
        return []
    procs: list[dict[str, Any]] = pod.saved_state["box"].get("processes", [])
    return procs


def _stop_process(pod: LabPod, name: str, sig: int = signal.SIGTERM) -> None:
    """Stop the lab's process ``name`` by its PID (and its session, as the lab starts each
    in its own): one started in this process through its ``Process``, one started by
    ``sixpod lab up`` through the PID and start time in the lab's saved state."""
    for proc in reversed(pod.box.processes):
        if proc.name == name and proc.alive():
            pod.box.stop(proc, sig=sig)
            return
    for saved in _saved_processes(pod):
        pid = int(saved["pid"])
        if saved["name"] != name or _start_time(pid) != saved["start"]:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
            os.killpg(pid, signal.SIGCONT)
        start = saved["start"]
        with contextlib.suppress(LabError):
            wait_for(lambda: _start_time(pid) != start, timeout=5, what=name)  # noqa: B023
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # what lingers, and children left in the session
        return
    raise LabError(f"the lab has no running process {name}")


def _remember(pod: LabPod) -> None:
    """Add what this process started in an attached lab to its saved state (``lab.json``),
    so that ``sixpod lab down`` stops it too."""
    if pod.saved_state is None:
        return
    path = pod.workdir / LabPod.STATE
    state = json.loads(path.read_text())
    new = pod.box.saved()
    known = {(p["pid"], p["start"]) for p in state["box"]["processes"]}
    state["box"]["processes"] = [
        p for p in state["box"]["processes"] if _start_time(int(p["pid"])) == p["start"]
    ] + [p for p in new["processes"] if (p["pid"], p["start"]) not in known]  # type: ignore[attr-defined]
    for d in new["tempdirs"]:  # type: ignore[attr-defined]
        if d not in state["box"]["tempdirs"]:
            state["box"]["tempdirs"].append(d)
    path.write_text(json.dumps(state, indent=2) + "\n")
    pod.saved_state = state


def restart_node(pod: LabPod, node: LabNode) -> None:
    """Start a node's processes again, as its supervisor would after a reboot."""
    if pod.saved_state is not None:
        pod.check_interval = None  # `sixpod lab up` keeps the rendered timing
    try:
        pod._start_node(node)
    finally:
        _remember(pod)


# -- kill-edge ----------------------------------------------------------------------------


def kill_edge(
    pod: LabPod, echo: Callable[[str], None] | None = None, node: str = ""
) -> DrillResult:
    """An edge node dies: every process in its namespace is SIGKILLed (ExaBGP and the
    announcer, bfdd, the edge, Razor, its replica). Client flows held through it say which
    node answers; the drill measures when the node's VIPs leave ECMP on its ToR, how many
    flows were its own (they break: a TCP connection cannot move), that no flow on another
    node broke or moved, that new connections are all served, then starts the node again
    and measures its return (again with no flow on another node broken)."""
    r = DrillResult("kill-edge", echo=echo)
    rack, edges = _rack_edges(pod)
    victim = pod.nodes[node] if node else edges[-1]
    if not victim.edge:
        raise LabError(f"{victim.name} is not an edge node")
    rack = victim.doc.rack
    edges = [n for n in pod.nodes.values() if n.edge and n.doc.rack == rack]
    if len(edges) < 2:
        raise LabError(f"{victim.name} is the only edge node of {rack}")
    want = set(_vip_keys(victim))
    if _in_ecmp(pod, rack, victim) != want:
        raise LabError(f"{victim.name} does not serve all its VIPs before the drill")
    vip = str(victim.doc.vips.all[0])
    r.figures.update(node=victim.name, rack=rack, vips=len(want), vip=vip, flows=FLOWS)
    flows = pod.flows(vip, FLOWS)
    try:
        before = flows.round()
        own = sum(1 for a in before if a == victim.name)
        others = sum(1 for a in before if a is not None and a != victim.name)
        r.say(
            f"{FLOWS} client flows to {vip}: {own} on {victim.name}, {others} on other "
            f"nodes, {FLOWS - own - others} not connected"
        )
        r.expect(own > 0 and others > 0, "the flows do not spread over the victim and others")
        t0 = time.monotonic()
        kill_stragglers([victim.ns])  # SIGKILL by PID, every process in its namespace
        r.say(f"{victim.name}: every process in its namespace SIGKILLed")
        timer = _Timer(t0, lambda: not _in_ecmp(pod, rack, victim), timeout=30)
        timer.start()
        broken_others, rounds, last = _rounds_until(flows, before, victim.name, timer)
        r.figures["withdrawn_s"] = timer.seconds
        r.expect(timer.seconds is not None, f"{victim.name}'s VIPs still in ECMP after 30 s")
        if timer.seconds is not None:
            r.say(f"{victim.name}'s {len(want)} VIPs out of ECMP on {rack} in {timer.seconds} s")
        own_broken = sum(
            1 for b, a in zip(before, last, strict=True) if b == victim.name and a is None
        )
        r.figures.update(
            own_flows=own,
            own_flows_share=round(own / FLOWS, 3),
            own_flows_broken=own_broken,
            other_flows=others,
            other_flows_broken=broken_others,
            rounds=rounds,
        )
        r.say(
            f"flows: {own}/{FLOWS} ({own / FLOWS:.0%}) were {victim.name}'s and broke "
            f"({own_broken} seen broken); {broken_others} of {others} on other nodes broke "
            f"or moved over {rounds} rounds"
        )
        r.expect(broken_others == 0, f"{broken_others} flows on other nodes broke or moved")
        fresh = pod.flows(vip, FLOWS)
        try:
            answers = fresh.round()
        finally:
            fresh.close()
        served = sum(1 for a in answers if a is not None and a != victim.name)
        r.figures["new_flows_served"] = served
        r.say(f"{served}/{FLOWS} new connections to {vip} served by the other nodes")
        r.expect(served == FLOWS, f"{FLOWS - served} new connections were not served")
        # the node comes back (its supervisor restarts it): back in ECMP, others untouched
        current = flows.round()
        t0 = time.monotonic()
        restart_node(pod, victim)
        timer = _Timer(t0, lambda: _in_ecmp(pod, rack, victim) == want, timeout=60)
        timer.start()
        broken_back, _, _ = _rounds_until(flows, current, victim.name, timer)
        r.figures.update(rejoined_s=timer.seconds, other_flows_broken_rejoin=broken_back)
        r.expect(timer.seconds is not None, f"{victim.name} not back in ECMP within 60 s")
        r.say(
            f"{victim.name} restarted: back in ECMP in {timer.seconds} s (processes started "
            f"to every VIP selected); {broken_back} flows on other nodes broke or moved"
        )
        r.expect(broken_back == 0, f"{broken_back} flows on other nodes broke when it rejoined")
    finally:
        flows.close()
    return r


def _rounds_until(
    flows: Any, before: list[str | None], victim: str, timer: _Timer
) -> tuple[int, int, list[str | None]]:
    """Ask every flow again and again until ``timer`` is done (and twice more): how many
    flows that were on nodes other than ``victim`` broke or moved, rounds, the last round."""
    broken: set[int] = set()
    rounds, extra = 0, 2
    last = before
    while extra > 0:
        if not timer.is_alive():
            extra -= 1
        last = flows.round()
        rounds += 1
        for i, (b, a) in enumerate(zip(before, last, strict=True)):
            if b is not None and b not in (victim, a):
                broken.add(i)
        time.sleep(0.05)
    timer.join()
    return len(broken), rounds, last


DRILLS: dict[str, Callable[..., DrillResult]] = {
    "kill-edge": kill_edge,
}
