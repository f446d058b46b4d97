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

from sixpod.inventory.files import write_atomic
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
        self.at: float | None = None
        self.error: str = ""

    def after(self, t: float) -> float | None:
        """Seconds from ``t`` to when the condition held (None: it did not)."""
        return None if self.at is None else round(self.at - t, 3)

    def run(self) -> None:
        deadline = self.t0 + self.timeout
        while time.monotonic() < deadline:
            try:
                if self.predicate():
                    self.at = time.monotonic()
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
    write_atomic(path, json.dumps(state, indent=2) + "\n")
    pod.saved_state = state


def restart_node(pod: LabPod, node: LabNode) -> None:
    """Start the node again as after a reboot: its ``sixpod node bootstrap --supervise``."""
    if pod.saved_state is not None:
        pod.check_interval = None  # `sixpod lab up` keeps the rendered timing
    from sixpod.lab.fabric import restart_lldpd
    from sixpod.lab.monitoring import restart_exporters

    try:
        pod._start_node(node)
        restart_exporters(pod, node.name)
        restart_lldpd(pod, node.name)
    finally:
        _remember(pod)


API_CALLS = """
import json, sys, time, urllib.request, urllib.error
base, token_file = sys.argv[1:3]
token = open(token_file).read().strip()
for i, line in enumerate(sys.stdin):
    call = json.loads(line)
    data = None if call.get("body") is None else json.dumps(call["body"]).encode()
    req = urllib.request.Request(base + call["path"], data=data, method=call["method"])
    req.add_header("Authorization", "Bearer " + token)
    req.add_header("Content-Type", "application/json")
    out = {"i": i, "sent": time.monotonic()}
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            out.update(status=resp.status, body=json.loads(resp.read() or b"null"))
    except urllib.error.HTTPError as e:
        out.update(status=e.code, error=e.read().decode(errors="replace")[:300])
    except OSError as e:
        out.update(status=0, error=str(e))
    out["ack"] = time.monotonic()
    print(json.dumps(out), flush=True)
"""
"""Calls to the controller API from ctl, one JSON request per stdin line, each answered by
one JSON line with the machine's monotonic time it was sent and answered (``ack``)."""


def api_calls(
    pod: LabPod, calls: list[dict[str, Any]], timeout: float = 120
) -> list[dict[str, Any]]:
    """Make ``calls`` (``method``, ``path``, ``body``) against the lab's controller, one
    after the other, without stopping at a failure; each call's answer and times."""
    import sys

    from sixpod.lab.netns import run
    from sixpod.lab.pod import CONTROLLER_PORT

    argv = [
        "ip", "netns", "exec", pod.ctl_ns, sys.executable, "-c", API_CALLS,
        f"http://[::1]:{CONTROLLER_PORT}", str(pod.controller_dir / "token"),
    ]  # fmt: skip
    out = run(argv, stdin="".join(json.dumps(c) + "\n" for c in calls), timeout=timeout)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# -- kill-edge ----------------------------------------------------------------------------


def kill_edge(
    pod: LabPod, echo: Callable[[str], None] | None = None, node: str = ""
) -> DrillResult:
    """An edge node dies: every process in its namespace is SIGKILLed at once (its
    ``sixpod node bootstrap`` supervisor and everything it runs: ExaBGP and the announcer,
    bfdd, the edge, Razor, its replica), as a power cut would. Client flows held through it
    say which node answers; the drill measures when the node's VIPs leave ECMP on its ToR,
    how many flows were its own (they break: a TCP connection cannot move), that no flow on
    another node broke or moved, that new connections are all served, then starts the node
    again and measures its return (again with no flow on another node broken)."""
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


# -- blackhole-vip ------------------------------------------------------------------------

BLACKHOLE_APP = "drill-blackhole"
DNS_WATCH = """
import json, sys, time
import dns.message, dns.query
server, name, rdtype = sys.argv[1:4]
while True:
    try:
        resp = dns.query.udp(dns.message.make_query(name, rdtype), server, timeout=1)
        got = sorted(rr.address for rrset in resp.answer if rrset.rdtype in (1, 28) for rr in rrset)
    except Exception as e:
        got = None
    print(json.dumps({"t": time.monotonic(), "addresses": got}), flush=True)
    time.sleep(0.02)
"""
"""A client asking Razor for a name again and again: one JSON line per answer, stamped
with the machine's monotonic clock (the same in every process and namespace)."""


class _DnsWatch:
    """Razor's answers for one name, asked from the client every ~20 ms in the background."""

    STREAK = 8
    """Answers in a row without a VIP that count as "no longer handed out" (Razor answers
    a random sample of the app's shard: one answer without it proves nothing)."""

    def __init__(self, pod: LabPod, name: str, rdtype: str) -> None:
        import subprocess
        import sys

        argv = [sys.executable, "-c", DNS_WATCH, pod.nameserver(6), name, rdtype]
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", pod.client_ns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.answers: list[tuple[float, list[str] | None]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            doc = json.loads(line)
            self.answers.append((float(doc["t"]), doc["addresses"]))

    def since(self, t0: float) -> list[tuple[float, list[str] | None]]:
        return [a for a in list(self.answers) if a[0] >= t0]

    def gone_at(self, vip: str, t0: float) -> float | None:
        """When the last streak (to now, of at least :attr:`STREAK` answers) of answers
        without ``vip`` began, in seconds after ``t0``."""
        run: list[float] = []
        for t, got in self.since(t0):
            if got is None:
                continue  # no answer (a timeout): says nothing either way
            run = [*run, t] if vip not in got else []
        return round(run[0] - t0, 3) if len(run) >= self.STREAK else None

    def back_at(self, vip: str, t0: float) -> float | None:
        """Seconds after ``t0`` of the first answer holding ``vip``."""
        for t, got in self.since(t0):
            if got and vip in got:
                return round(t - t0, 3)
        return None

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except Exception:
            self.proc.kill()
            self.proc.wait(5)
        self.reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _bgp_paths(pod: LabPod, rack: str, vip: str) -> int:
    """How many paths (from any node) the ToR's BGP table holds for ``vip``."""
    fam, plen = ("ipv4", 32) if "." in vip else ("ipv6", 128)
    data = pod.tors[rack].frr.json(f"show bgp {fam} unicast {vip}/{plen} json")
    return len(data.get("paths", []))


def blackhole_vip(pod: LabPod, echo: Callable[[str], None] | None = None) -> DrillResult:
    """A VIP is blackholed through the API (``sixpod vip set VIP blackholed``), as an
    operator does under attack. Every announcer follows VIP states from its node's replica:
    the drill times until no ToR holds a path for the VIP from any node (every announcer
    withdrew it) and no spine routes it, and until Razor stops handing it out for an app
    whose shard holds it; ``sixpod razor attribute`` (run on an edge node, from its replica)
    must name that app, and the API lists the reason. Then the VIP is released (``active``)
    and the drill times its return to every ToR, spine and Razor's answers.

    The VIP is an IPv4 VIP other than Razor's own nameserver address. The RFC 7999
    BLACKHOLE community is not sent upstream: the pod withdraws the VIP instead."""
    r = DrillResult("blackhole-vip", echo=echo)
    if pod.lock is None:
        raise LabError("the drill needs the tenants controller (a lab brought up from pod.yaml)")
    app = BLACKHOLE_APP
    with contextlib.suppress(LabError):  # left by a drill that was killed
        pod.api("app", "delete", app, "--force")
    pod.api("app", "create", app)
    name = f"{app}.{pod.route_zone()}"
    dns = _DnsWatch(pod, name, "A")
    vip, released = "", False
    try:
        wait_for(
            lambda: any(got for _, got in dns.answers[-1:]),
            timeout=30,
            interval=0.05,
            what=f"Razor to answer {name}",
        )
        nameservers = {pod.nameserver(4), pod.nameserver(6)}
        handed = sorted({a for _, got in dns.answers if got for a in got} - nameservers)
        if not handed:
            raise LabError(f"Razor hands out no VIP but its own for {name}")
        vip = handed[0]
        racks = sorted(
            rack for rack, tor in pod.tors.items() if any(str(v) == vip for v in tor.doc.vips.all)
        )
        announcers = {
            n.name: n
            for n in pod.nodes.values()
            if n.edge and any(str(v) == vip for v in n.doc.vips.all)
        }
        before = {rack: pod.routes(rack, vip) for rack in racks}
        spines = {s: pod.spine_routes(s, vip) for s in pod.spines}
        if not all(before.values()) or not all(spines.values()):
            raise LabError(f"{vip} is not routed everywhere before the drill: {before} {spines}")
        r.figures.update(vip=vip, app=app, announcers=len(announcers), racks=len(racks))
        r.say(
            f"app {app}: Razor hands out {vip} for {name}; announced by "
            f"{len(announcers)} edge nodes, on {', '.join(racks)} and "
            f"{len(spines)} spine{'s' if len(spines) != 1 else ''}"
        )
        reason = f"drill: DDoS on {app}"
        t0 = time.monotonic()
        timers = {
            "tor": _Timer(t0, lambda: all(_bgp_paths(pod, k, vip) == 0 for k in racks), 30),
            "spine": _Timer(t0, lambda: not any(pod.spine_routes(s, vip) for s in spines), 30),
            "announcers": _Timer(
                t0,
                lambda: all(
                    pod.metrics(n).get("sixpod_announcer_vips_blackholed", 0) >= 1
                    for n in announcers
                ),
                30,
            ),
        }
        for t in timers.values():
            t.start()
        ack = _set_vip(pod, vip, "blackholed", reason)
        r.figures["api_s"] = round(ack["ack"] - ack["sent"], 3)
        r.say(
            f"PUT /v1/vips/{vip} blackholed ({reason!r}): acknowledged in {r.figures['api_s']} s;"
            " times below are from the acknowledgement"
        )
        for t in timers.values():
            t.join()
        with contextlib.suppress(LabError):  # up to 30 s for Razor's answers to show it
            wait_for(lambda: dns.gone_at(vip, ack["ack"]) is not None, timeout=30, what="")
        razor_s = dns.gone_at(vip, ack["ack"])
        tor_s, spine_s = timers["tor"].after(ack["ack"]), timers["spine"].after(ack["ack"])
        r.figures.update(
            withdrawn_tor_s=tor_s,
            withdrawn_spine_s=spine_s if spines else None,
            announcers_reported_s=timers["announcers"].after(ack["ack"]),
            razor_stopped_s=razor_s,
        )
        r.expect(tor_s is not None, f"a ToR still holds a path for {vip} after 30 s")
        r.say(f"every announcer withdrew it: no ToR holds a path for {vip} after {tor_s} s")
        if spines:
            r.expect(spine_s is not None, f"a spine still routes {vip} after 30 s")
            r.say(f"no spine routes {vip} after {spine_s} s")
        r.expect(
            r.figures["announcers_reported_s"] is not None,
            "an announcer's sixpod_announcer_vips_blackholed stayed 0",
        )
        r.say(
            f"{len(announcers)} announcers report it blackholed (their metrics) after "
            f"{r.figures['announcers_reported_s']} s"
        )
        r.expect(razor_s is not None, f"Razor still hands out {vip}")
        r.say(
            f"Razor stopped handing out {vip} for {name} after {razor_s} s "
            f"({_DnsWatch.STREAK}+ answers in a row without it)"
        )
        # attribution: from the node's replica, as an operator on an edge node would run it
        edge = next(iter(announcers.values()))
        out = pod.exec(
            edge.ns,
            _sixpod(),
            "razor",
            "attribute",
            "--config",
            str(edge.razor_config),
            vip,
            "--json",
        )
        suspects = [s["app"] for s in json.loads(out).get("suspects", [])]
        listed = {v["address"]: v for v in json.loads(pod.api("vip", "list", "--json"))}
        r.figures.update(suspects=suspects, api_state=listed.get(vip, {}).get("state"))
        r.say(f"sixpod razor attribute {vip} on {edge.name}: apps behind it: {suspects}")
        r.expect(app in suspects, f"attribution does not name {app}: {suspects}")
        api_vip = listed.get(vip, {})
        r.say(f"API: {vip} {api_vip.get('state')} ({api_vip.get('reason')!r})")
        r.expect(
            api_vip.get("state") == "blackholed" and api_vip.get("reason") == reason,
            f"the API lists {vip} as {api_vip}",
        )
        # released
        t1 = time.monotonic()
        back = {
            "tor": _Timer(t1, lambda: all(pod.routes(k, vip) == before[k] for k in racks), 30),
            "spine": _Timer(
                t1, lambda: all(pod.spine_routes(s, vip) == spines[s] for s in spines), 30
            ),
        }
        for t in back.values():
            t.start()
        ack = _set_vip(pod, vip, "active", "")
        released = True
        r.say(f"PUT /v1/vips/{vip} active: acknowledged in {ack['ack'] - ack['sent']:.3f} s")
        for t in back.values():
            t.join()
        with contextlib.suppress(LabError):
            wait_for(lambda: dns.back_at(vip, ack["ack"]) is not None, timeout=30, what="")
        razor_back = dns.back_at(vip, ack["ack"])
        r.figures.update(
            released_tor_s=back["tor"].after(ack["ack"]),
            released_spine_s=back["spine"].after(ack["ack"]) if spines else None,
            released_razor_s=razor_back,
        )
        r.expect(back["tor"].seconds is not None, f"{vip} not back on every ToR in 30 s")
        r.expect(back["spine"].seconds is not None, f"{vip} not back on every spine in 30 s")
        r.expect(razor_back is not None, f"Razor does not hand out {vip} again")
        r.say(
            f"released: {vip} back in ECMP over its {len(announcers)} announcers after "
            f"{r.figures['released_tor_s']} s, on the spines after "
            f"{r.figures['released_spine_s']} s, "
            f"in Razor's answers after {razor_back} s"
        )
    finally:
        dns.close()
        try:
            if vip and not released:
                _set_vip(pod, vip, "active", "")
        finally:
            pod.api("app", "delete", app, "--force")
    return r


def _set_vip(pod: LabPod, vip: str, state: str, reason: str) -> dict[str, Any]:
    [answer] = api_calls(
        pod,
        [{"method": "PUT", "path": f"/v1/vips/{vip}", "body": {"state": state, "reason": reason}}],
    )
    if answer["status"] != 200:
        raise LabError(f"PUT /v1/vips/{vip} {state}: {answer['status']} {answer.get('error')}")
    return answer


def _sixpod() -> str:
    import sys
    from pathlib import Path

    return str(Path(sys.executable).with_name("sixpod"))


# -- redis-down ---------------------------------------------------------------------------

REDIS_APP = "drill-redis"
REDIS_DOMAIN = "redis.drill.example"
OUTAGE = 6.0
"""Seconds the Redis primary stays down."""


class _Requests(threading.Thread):
    """HTTP requests from the client over a VIP, in batches (each on a new connection), until
    stopped; every answer kept with the machine's monotonic time of its batch."""

    def __init__(self, pod: LabPod, vip: str, host: str) -> None:
        super().__init__(daemon=True)
        self.pod, self.vip, self.host = pod, vip, host
        self.answers: list[tuple[float, float, dict[str, Any]]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        from sixpod.lab.journey import fetch

        while not self.stopping.is_set():
            t0 = time.monotonic()
            try:
                got = fetch(self.pod, self.vip, self.host, 2)
            except LabError as e:
                got = [{"status": 0, "error": str(e)}]
            t1 = time.monotonic()
            self.answers += [(t0, t1, a) for a in got]

    def stop(self) -> None:
        self.stopping.set()
        self.join(60)

    def between(self, t0: float, t1: float) -> tuple[int, int, list[str]]:
        """Requests of the batches started within [t0, t1): ok (200 from an app's
        container), failed, and the first failures."""
        ok, failed, why = 0, 0, []
        for a0, _, a in self.answers:
            if not t0 <= a0 < t1:
                continue
            body = a.get("body")
            if a.get("status") == 200 and isinstance(body, dict) and body.get("container"):
                ok += 1
            else:
                failed += 1
                why.append(f"{a.get('status')} {a.get('error') or body}"[:120])
        return ok, failed, why[:3]

    def containers_after(self, t: float) -> set[str]:
        return {
            str(a["body"]["container"])
            for a0, _, a in self.answers
            if a0 >= t and a.get("status") == 200 and isinstance(a.get("body"), dict)
        }


def _edge_replicas_hold(pod: LabPod, app: str, endpoints: list[str]) -> bool:
    key = f"sixpod:up:{app}"
    return all(
        all(pod.replica_field(n.name, key, e) for e in endpoints)
        for n in pod.nodes.values()
        if n.edge
    )


def redis_down(pod: LabPod, echo: Callable[[str], None] | None = None) -> DrillResult:
    """The pod's Redis primary (in ctl) stops for a few seconds. The edges serve from their
    replicas: a client's requests during the outage must all succeed. Meanwhile a change is
    made through the API (an endpoint added to an app: the controller's store is the truth,
    it acknowledges); when the primary returns (empty, as a restarted cache does: the lab's
    Redis keeps nothing on disk) the controller rebuilds it and the change must reach every
    edge replica and the edges' traffic. Figures: requests ok/failed during the outage and
    during the return, the time from the primary's return until every edge replica holds the
    change, and until the edges send requests to the new endpoint."""
    from sixpod import addr
    from sixpod.lab.journey import pick_hosts
    from sixpod.lab.netns import Sandbox
    from sixpod.lab.pod import APP_PORT

    r = DrillResult("redis-down", echo=echo)
    if pod.lock is None:
        raise LabError("the drill needs the tenants controller (a lab brought up from pod.yaml)")
    hosts = pick_hosts(pod, 1)
    if not hosts:
        raise LabError("no node announces a /64 to host the drill's containers")
    app, host = REDIS_APP, REDIS_DOMAIN
    box = Sandbox(prefix=pod.prefix, workdir=pod.workdir / "drills")
    with contextlib.suppress(LabError):
        pod.api("app", "delete", app, "--force")
    pod.api("app", "create", app)
    requests: _Requests | None = None
    primary_down = False
    try:
        pod.api("domain", "attach", host, app)
        first = pod.start_container(hosts[0].name, 11, box)
        second = pod.start_container(hosts[0].name, 12, box)
        pod.api("endpoint", "add", app, first.endpoint)
        key = [addr.for_redis(addr.Endpoint(c.address, APP_PORT)) for c in (first, second)]
        wait_for(lambda: _edge_replicas_hold(pod, app, key[:1]), timeout=30, what="the endpoint")
        vip = pod.nameserver(4)
        requests = _Requests(pod, vip, host)
        requests.start()
        wait_for(
            lambda: first.name in requests.containers_after(0),
            timeout=30,
            interval=0.1,
            what=f"http://{host}/ via {vip} to answer",
        )
        r.say(
            f"app {app} ({host}) on {first.name}; client requests to http://{host}/ via {vip} "
            "running throughout"
        )
        rack = next(k for k, t in pod.tors.items() if any(str(v) == vip for v in t.doc.vips.all))
        paths = len(pod.routes(rack, vip))
        t_down = time.monotonic()
        _stop_process(pod, "ctl-redis")
        primary_down = True
        r.say(f"ctl: the Redis primary stopped (SIGTERM); {vip} over {paths} edge nodes")
        change = api_calls(
            pod,
            [
                {
                    "method": "POST",
                    "path": f"/v1/apps/{app}/endpoints",
                    "body": {"endpoints": [{"address": str(second.address), "port": APP_PORT}]},
                }
            ],
        )[0]
        r.expect(change["status"] == 200, f"the API refused the change: {change}")
        r.say(
            f"API, meanwhile: endpoint {second.endpoint} added to {app} "
            f"(acknowledged {change['status']} in {change['ack'] - change['sent']:.3f} s)"
        )
        fewest = paths
        while time.monotonic() - t_down < OUTAGE:
            with contextlib.suppress(LabError):
                fewest = min(fewest, len(pod.routes(rack, vip)))
            time.sleep(0.2)
        t_up = time.monotonic()
        pod._start_redis_primary()
        _remember(pod)
        primary_down = False
        r.say(f"ctl: the Redis primary started again after {t_up - t_down:.1f} s (empty)")
        timer = _Timer(t_up, lambda: _edge_replicas_hold(pod, app, key), timeout=60)
        timer.start()
        served = _Timer(t_up, lambda: second.name in requests.containers_after(t_up), 60)
        served.start()
        timer.join()
        served.join()
        time.sleep(1.0)  # and a moment more of traffic
        requests.stop()
        ok, failed, why = requests.between(t_down, t_up)
        ok2, failed2, why2 = requests.between(t_up, time.monotonic())
        r.figures.update(
            outage_s=round(t_up - t_down, 3),
            vip_paths_before=paths,
            vip_paths_fewest_during=fewest,
            requests_ok_during=ok,
            requests_failed_during=failed,
            converged_replicas_s=timer.seconds,
            converged_traffic_s=served.seconds,
            requests_ok_return=ok2,
            requests_failed_return=failed2,
            changes_acknowledged=1 if change["status"] == 200 else 0,
            changes_lost=0 if timer.seconds is not None else 1,
        )
        r.say(
            f"during the outage: {vip} over at least {fewest} of {paths} edge nodes; "
            f"{ok} requests ok, {failed} failed {why}"
        )
        if fewest < paths:
            floor = json.loads(next(n for n in pod.nodes.values() if n.edge).config.read_text())
            if not floor.get("floor", {}).get("min_nodes"):
                r.say(
                    "  the edges' redis check (degraded) fails once their replica loses the "
                    "primary, and this pod has no floor (pod.floor.min_nodes) to keep them "
                    "announcing: every edge withdrew"
                )
        r.expect(ok > 0, "no request was answered during the outage")
        r.expect(failed == 0, f"{failed} requests failed while the primary was down: {why}")
        r.expect(fewest == paths, f"edge nodes withdrew {vip} while the primary was down")
        r.expect(
            timer.seconds is not None,
            "the change made during the outage never reached every edge replica",
        )
        r.expect(served.seconds is not None, f"the edges never sent a request to {second.name}")
        r.say(
            f"after its return: the change on every edge replica in {timer.seconds} s, "
            f"requests reach {second.name} after {served.seconds} s; "
            f"{ok2} requests ok, {failed2} failed {why2}"
        )
        r.expect(failed2 == 0, f"{failed2} requests failed while the primary came back: {why2}")
    finally:
        if requests is not None:
            requests.stop()
        try:
            if primary_down:
                pod._start_redis_primary()
                _remember(pod)
            with contextlib.suppress(LabError):
                wait_for(pod.publisher_active, timeout=30, interval=0.5, what="")
            pod.api("app", "delete", app, "--force")
        finally:
            problems = box.close()
            if problems:
                raise LabError(f"the drill's containers were not all removed: {problems}")
    return r


# -- controller-restart -------------------------------------------------------------------

CONTROLLER_APP = "drill-controller"
BURST = 60
"""API changes in the burst (one endpoint added each)."""
KILL_AFTER = 20
"""Acknowledged changes before the controller is SIGKILLed."""


def _replica_count(pod: LabPod, node: str, key: str) -> int:
    n = pod.nodes[node]
    out = pod.exec(
        n.ns, "redis-cli", "-h", "::1", "-p", "6379", "--no-auth-warning",
        "-a", pod.redis_password, "hlen", key,
    )  # fmt: skip
    return int(out.strip() or 0)


def controller_restart(pod: LabPod, echo: Callable[[str], None] | None = None) -> DrillResult:
    """The tenants controller is SIGKILLed in the middle of a burst of API changes (endpoints
    added one by one, as an orchestrator scaling an app does) and started again, as its
    supervisor would. Nothing acknowledged may be lost: every change answered 2xx is in the
    store after the restart, and every edge replica converges on exactly the store's
    endpoints (a change in flight at the kill may land or not: it was never acknowledged).
    Figures: changes sent, acknowledged, failed; time until the API answers again, until the
    publisher is active, until every edge replica holds the store's endpoints."""
    import subprocess
    import sys

    from sixpod import addr
    from sixpod.lab.journey import pick_hosts
    from sixpod.lab.pod import APP_PORT, CONTROLLER_PORT

    r = DrillResult("controller-restart", echo=echo)
    if pod.lock is None:
        raise LabError("the drill needs the tenants controller (a lab brought up from pod.yaml)")
    hosts = pick_hosts(pod, 1)
    if not hosts:
        raise LabError("no node announces a /64 for the drill's endpoints")
    base = hosts[0].doc.prefixes[0].network_address + 0x2000
    app = CONTROLLER_APP
    with contextlib.suppress(LabError):
        pod.api("app", "delete", app, "--force")
    pod.api("app", "create", app)
    try:
        calls = [
            {
                "method": "POST",
                "path": f"/v1/apps/{app}/endpoints",
                "body": {"endpoints": [{"address": str(base + i), "port": APP_PORT}]},
            }
            for i in range(BURST)
        ]
        argv = [
            "ip", "netns", "exec", pod.ctl_ns, sys.executable, "-c", API_CALLS,
            f"http://[::1]:{CONTROLLER_PORT}", str(pod.controller_dir / "token"),
        ]  # fmt: skip
        burst = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert burst.stdin is not None
        assert burst.stdout is not None
        burst.stdin.write("".join(json.dumps(c) + "\n" for c in calls))
        burst.stdin.close()
        answers: list[dict[str, Any]] = []
        t_kill = 0.0
        for line in burst.stdout:
            answers.append(json.loads(line))
            acked = sum(1 for a in answers if a["status"] == 200)
            if not t_kill and acked >= KILL_AFTER:
                t_kill = time.monotonic()
                _stop_process(pod, "ctl-controller", sig=signal.SIGKILL)
                r.say(f"{acked} changes acknowledged: the controller SIGKILLed mid-burst")
        burst.wait(30)
        burst.stdout.close()
        if not t_kill:
            raise LabError(f"the burst ended before {KILL_AFTER} changes were acknowledged")
        acked_eps = {
            addr.for_redis(addr.Endpoint(base + a["i"], APP_PORT))
            for a in answers
            if a["status"] == 200
        }
        failed = [a for a in answers if a["status"] != 200]
        r.figures.update(sent=len(answers), acknowledged=len(acked_eps), failed=len(failed))
        r.say(
            f"burst of {BURST} endpoint additions to {app}: {len(acked_eps)} acknowledged, "
            f"{len(failed)} failed (first: {failed[0].get('error', '')[:80] if failed else '-'})"
        )
        t_start = time.monotonic()
        pod._start_controller(pod.lock)
        _remember(pod)
        r.say("ctl: the controller started again")
        probe = [{"method": "GET", "path": f"/v1/apps/{app}/endpoints?limit=1000"}]
        answered = _watch(lambda: api_calls(pod, probe)[0]["status"] == 200, 60, 0.1)
        publishing = _watch(pod.publisher_active, 60, 0.2)
        r.figures["api_back_s"] = answered
        r.figures["publisher_back_s"] = (
            None if publishing is None or answered is None else round(answered + publishing, 3)
        )
        r.expect(answered is not None, "the controller's API did not answer within 60 s")
        r.expect(publishing is not None, "the publisher was not active within 60 s")
        [listing] = api_calls(pod, probe)
        stored = {
            addr.for_redis(addr.Endpoint(addr.parse_ip(e["address"]), int(e["port"])))
            for e in listing.get("body", {}).get("items", [])
        }
        lost = acked_eps - stored
        r.figures.update(
            stored=len(stored), lost=len(lost), unacknowledged_but_stored=len(stored - acked_eps)
        )
        r.say(
            f"after the restart the store holds {len(stored)} endpoints: {len(lost)} "
            f"acknowledged changes lost, {len(stored - acked_eps)} unacknowledged ones landed"
        )
        r.expect(not lost, f"acknowledged changes lost: {sorted(lost)[:3]}")
        key = f"sixpod:up:{app}"
        edges = [n.name for n in pod.nodes.values() if n.edge]
        converged = _watch(
            lambda: all(
                _replica_count(pod, n, key) == len(stored)
                and all(pod.replica_field(n, key, e) for e in stored)
                for n in edges
            ),
            60,
            0.1,
        )
        since = round(time.monotonic() - t_start, 3) if converged is not None else None
        r.figures["edges_converged_s"] = since
        r.expect(converged is not None, "the edge replicas never held the store's endpoints")
        r.say(
            f"API answered {answered} s after the restart, publisher active "
            f"{r.figures['publisher_back_s']} s after; every edge replica holds exactly the "
            f"store's {len(stored)} endpoints {since} s after the restart"
        )
    finally:
        with contextlib.suppress(LabError):
            wait_for(pod.publisher_active, timeout=30, interval=0.5, what="")
        pod.api("app", "delete", app, "--force")
    return r


# -- kill-tor -----------------------------------------------------------------------------


def _links(ns: str) -> list[str]:
    from sixpod.lab.netns import run

    return [
        str(link["ifname"])
        for link in json.loads(run(["ip", "-n", ns, "-j", "link", "show"]) or "[]")
        if link.get("ifname") != "lo"
    ]


def _static_routes(ns: str) -> list[str]:
    """The routes the lab added in ``ns`` (protocol ``boot``), as ``ip route`` arguments."""
    from sixpod.lab.netns import run

    out: list[str] = []
    for fam in ("-4", "-6"):
        text = run(["ip", fam, "-n", ns, "route", "show", "proto", "boot"])
        for line in text.splitlines():
            words = [w for w in line.split() if w not in ("linkdown", "dead")]
            if "proto" in words:
                i = words.index("proto")
                del words[i : i + 2]
            if words:
                out.append(" ".join(words))
    return out


def kill_tor(pod: LabPod, echo: Callable[[str], None] | None = None, rack: str = "") -> DrillResult:
    """A ToR dies, as a switch losing power does: every process in its namespace (FRR, the
    resilience helper) is SIGKILLed and every one of its links goes down. Its rack's nodes
    become unreachable (a rack has one ToR); every VIP the rack shared with other racks must
    stay served by them, through the spine, and one only this rack announced is lost (said
    so: a pod of one rack loses every VIP). Figures: time until no spine routes through the
    ToR, the rack's nodes unreachable, VIPs still served, VIPs lost; then the ToR comes back
    (links up, FRR and the helper started again) and the time until every VIP of the rack is
    spread over its edge nodes again, on the ToR and the spines."""
    from sixpod.lab.fabric import restart_lldpd
    from sixpod.lab.frr import Frr
    from sixpod.lab.monitoring import restart_exporters

    r = DrillResult("kill-tor", echo=echo)
    rack = rack or list(pod.tors)[-1]
    if rack not in pod.tors:
        raise LabError(f"no rack {rack} in the lab")
    tor = pod.tors[rack]
    nodes = [n for n in pod.nodes.values() if n.doc.rack == rack]
    edges = {n.address for n in nodes if n.edge}
    vips = [str(v) for v in tor.doc.vips.all]
    shared = {
        v: sorted(
            k for k, t in pod.tors.items() if k != rack and any(str(x) == v for x in t.doc.vips.all)
        )
        for v in vips
    }
    kept = [v for v in vips if shared[v]]
    lost = [v for v in vips if not shared[v]]
    sample = [v for v in kept if "." in v][:2] + [v for v in kept if ":" in v][:2]
    r.figures.update(rack=rack, tor=tor.name, nodes=len(nodes), vips=len(vips))
    r.say(
        f"{tor.name}: {len(nodes)} nodes, {len(vips)} VIPs, of which {len(kept)} also "
        f"announced by other racks"
    )
    links = _links(tor.ns)
    statics = _static_routes(tor.ns)  # the lab's own (to ctl): links going down remove them
    t0 = time.monotonic()
    kill_stragglers([tor.ns])
    for link in links:
        pod.box.link(tor.ns, link, up=False)
    r.say(f"{tor.name}: every process SIGKILLed, its {len(links)} links down")

    def spines_clear() -> bool:
        return all(
            not any(tor.name in tors for tors in pod.spine_all_routes(s).values())
            for s in pod.spines
        )

    gone = _watch(spines_clear, 30, 0.05) if pod.spines else None
    if pod.spines:
        r.figures["spines_withdrawn_s"] = gone
        r.expect(gone is not None, f"a spine still routes through {tor.name} after 30 s")
        r.say(f"no spine routes through {tor.name} after {gone} s")
    unreachable = [
        n.name
        for n in nodes
        if n.doc.prefixes
        and pod.reach(pod.client_ns, str(pod.own_address(n.doc)), 8080) == "unreachable"
    ]
    with_prefix = [n for n in nodes if n.doc.prefixes]
    r.figures["nodes_unreachable"] = len(unreachable)
    r.say(f"the rack's nodes from the client: {len(unreachable)}/{len(with_prefix)} unreachable")
    r.expect(len(unreachable) == len(with_prefix), "a node of the dead ToR's rack still answers")
    served = {}
    for v in sample:
        try:
            served[v] = pod.whoami(v)
        except LabError:
            served[v] = ""
    ok = [v for v, who in served.items() if who and who not in {n.name for n in nodes}]
    r.figures.update(
        vips_shared=len(kept), vips_lost=len(lost), sampled_served=len(ok), sampled=len(sample)
    )
    if kept:
        by = [f"{v} by {w or 'nobody'}" for v, w in served.items()]
        r.say(
            f"VIPs shared with other racks: {len(ok)}/{len(sample)} sampled still served "
            f"({', '.join(by)})"
        )
        r.expect(len(ok) == len(sample), f"VIPs not served by the other racks: {served}")
    if lost:
        r.say(
            f"{len(lost)} VIPs announced only by {rack} are lost while its ToR is down"
            + (
                " (this pod has one rack: nothing else can serve them)"
                if len(pod.tors) == 1
                else ""
            )
        )
    # the ToR comes back
    t1 = time.monotonic()
    for link in links:
        pod.box.link(tor.ns, link, up=True)
    if statics:
        pod.box.ip_batch(tor.ns, *(f"route replace {line} proto boot" for line in statics))
    # the same run directory (``sixpod lab status`` finds the vty sockets where it saved
    # them), without the dead daemons' sockets and PID files
    rundir = tor.frr.rundir
    for f in rundir.iterdir():
        if f.suffix in (".vty", ".pid", ".sock", ".api"):
            f.unlink(missing_ok=True)
    conf = pod.rendered / "tors" / tor.name / "frr.conf"
    tor.frr = Frr(pod.box, tor.ns, tor.name, conf, ("bgpd", "bfdd"), rundir=rundir)
    try:
        tor.frr.start()
        if pod.resilient:
            pod.start_resilient(tor)
        restart_exporters(pod, tor.name)
        restart_lldpd(pod, tor.name)
    finally:
        _remember(pod)
    keys = [f"{v}/32" if "." in v else f"{v}/128" for v in vips]

    def back() -> bool:
        routes = pod.all_routes(rack)
        if not all(routes.get(k) == edges for k in keys):
            return False
        return all(
            all(tor.name in pod.spine_all_routes(s).get(k, set()) for k in keys) for s in pod.spines
        )

    def linked() -> bool:  # every node reaches ctl (the Redis primary, the controller)
        return all(pod.reach(n.ns, pod.ctl_address, 6379) == "open" for n in nodes)

    returned = _watch(lambda: back() and linked(), 120, 0.2) if edges else _watch(linked, 120)
    r.figures["restored_s"] = None if returned is None else round(time.monotonic() - t1, 3)
    r.expect(returned is not None, f"{rack}'s VIPs not back over its edge nodes within 120 s")
    r.say(
        f"{tor.name} back (links up, FRR started): every VIP of {rack} over its "
        f"{len(edges)} edge nodes again, on the spines too, and every node of the rack "
        f"reaches ctl, {r.figures['restored_s']} s later "
        f"({round(t1 - t0, 1)} s down)"
    )
    return r


# -- drain-edge ---------------------------------------------------------------------------

DRAIN_APP = "drill-drain"
DRAIN_DOMAIN = "drain.drill.example"
POOL = 16
"""Keep-alive connections of the client's pool."""
POOL_CLIENT = """
import http.client, json, sys, threading, time
ip, port, host, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
conns = [None] * n
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
def one(i):
    fresh = conns[i] is None
    if fresh:
        conns[i] = http.client.HTTPConnection(ip, port, timeout=3)
    c = conns[i]
    try:
        c.request("GET", "/", headers={"Host": host, "User-Agent": "sixpod-lab-pool"})
        r = c.getresponse()
        body = r.read()
        doc = json.loads(body) if r.status == 200 else {}
        return r.status, str(doc.get("peer", "")), "", fresh
    except Exception as e:
        c.close()
        conns[i] = None
        return 0, "", str(e) or type(e).__name__, fresh
i = 0
while not done.is_set():
    t = time.monotonic()
    status, peer, error, fresh = one(i)
    out = {"t": t, "conn": i, "status": status, "peer": peer, "error": error, "fresh": fresh}
    if status != 200:  # what a pool does for an idempotent request: once more, a new connection
        status2, peer2, error2, _ = one(i)
        out.update(retry=status2, retry_peer=peer2, retry_error=error2)
    print(json.dumps(out), flush=True)
    i = (i + 1) % n
    time.sleep(0.01)
"""
"""A client with a pool of keep-alive HTTP connections to one VIP, requests round-robin over
them; one JSON line per request (a failed one is retried once on a new connection, as HTTP
clients do for an idempotent request on a pooled connection)."""


class _Pool:
    def __init__(self, pod: LabPod, vip: str, host: str) -> None:
        import subprocess
        import sys

        argv = [sys.executable, "-c", POOL_CLIENT, vip, "80", host, str(POOL)]
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", pod.client_ns, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.requests: list[dict[str, Any]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.requests.append(json.loads(line))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
            self.proc.wait(5)
        self.reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def drain_edge(
    pod: LabPod, echo: Callable[[str], None] | None = None, node: str = ""
) -> DrillResult:
    """An edge node is drained (``sixpod node drain``): first a graceful shutdown (its VIPs
    stay announced with the GRACEFUL_SHUTDOWN community and a worse MED, so the ToR takes it
    out of ECMP), then, after the drain timeout, the withdrawal. A client with a pool of
    keep-alive HTTP connections and long-lived TCP flows run throughout. Figures: time until
    the node is out of ECMP (no new connection reaches it: checked with fresh connections),
    time until it is withdrawn, the pool's requests that failed (first try, and after one retry
    on a new connection, as HTTP clients do), flows on other nodes broken (must be 0); then
    it is undrained and the time until it is back in ECMP."""
    from sixpod.lab.journey import pick_hosts
    from sixpod.lab.netns import Sandbox

    r = DrillResult("drain-edge", echo=echo)
    if pod.lock is None:
        raise LabError("the drill needs the tenants controller (a lab brought up from pod.yaml)")
    rack, edges = _rack_edges(pod)
    victim = pod.nodes[node] if node else edges[-1]
    if not victim.edge:
        raise LabError(f"{victim.name} is not an edge node")
    rack = victim.doc.rack
    want = set(_vip_keys(victim))
    if _in_ecmp(pod, rack, victim) != want:
        raise LabError(f"{victim.name} does not serve all its VIPs before the drill")
    hosts = pick_hosts(pod, 1)
    if not hosts:
        raise LabError("no node announces a /64 to host the drill's container")
    vip = str(victim.doc.vips.all[0])
    by_own = {str(pod.own_address(n.doc)): n.name for n in pod.nodes.values()}
    app, host = DRAIN_APP, DRAIN_DOMAIN
    box = Sandbox(prefix=pod.prefix, workdir=pod.workdir / "drills")
    with contextlib.suppress(LabError):
        pod.api("app", "delete", app, "--force")
    pod.api("app", "create", app)
    pool: _Pool | None = None
    flows = None
    drained = False
    try:
        pod.api("domain", "attach", host, app)
        c = pod.start_container(hosts[0].name, 21, box)
        pod.api("endpoint", "add", app, c.endpoint)
        pool = _Pool(pod, vip, host)
        wait_for(
            lambda: sum(1 for q in pool.requests if q["status"] == 200) >= POOL,
            timeout=30,
            interval=0.1,
            what=f"http://{host}/ via {vip} to answer",
        )
        flows = pod.flows(vip, FLOWS)
        before = flows.round()
        spread = {by_own.get(q["peer"], q["peer"]) for q in pool.requests if q["status"] == 200}
        r.say(
            f"client: a pool of {POOL} keep-alive connections to http://{host}/ via {vip} "
            f"(served by {', '.join(sorted(spread))}) and {FLOWS} TCP flows "
            f"({sum(1 for a in before if a == victim.name)} on {victim.name})"
        )
        t0 = time.monotonic()
        pod.exec(victim.ns, _sixpod(), "node", "drain", "--config", str(victim.config))
        drained = True
        r.say(f"sixpod node drain on {victim.name}")
        out_t = _Timer(t0, lambda: not _in_ecmp(pod, rack, victim), 30)
        gone_t = _Timer(
            t0,
            lambda: all(
                victim.address not in _bgp_nexthops(pod, rack, str(v)) for v in victim.doc.vips.all
            ),
            60,
        )
        out_t.start()
        gone_t.start()
        broken, rounds, last = _rounds_until(flows, before, victim.name, gone_t)
        out_t.join()
        t_end = time.monotonic()
        fresh = pod.flows(vip, FLOWS)
        try:
            new = fresh.round()
        finally:
            fresh.close()
        reached = sum(1 for a in new if a == victim.name)
        during = [q for q in pool.requests if t0 <= q["t"] <= t_end]
        failed_first = [q for q in during if q["status"] != 200]
        failed_retry = [q for q in failed_first if q.get("retry") != 200]
        own_flows = sum(1 for a in before if a == victim.name)
        r.figures.update(
            node=victim.name,
            vip=vip,
            out_of_ecmp_s=out_t.seconds,
            withdrawn_s=gone_t.seconds,
            new_connections_to_drained=reached,
            pool_requests=len(during),
            pool_failed_first_try=len(failed_first),
            pool_failed_after_retry=len(failed_retry),
            own_flows=own_flows,
            own_flows_broken=sum(
                1 for b, a in zip(before, last, strict=True) if b == victim.name and a != b
            ),
            other_flows_broken=broken,
        )
        r.expect(out_t.seconds is not None, f"{victim.name} still in ECMP 30 s after the drain")
        r.expect(gone_t.seconds is not None, f"{victim.name} still announces 60 s after the drain")
        r.say(
            f"{victim.name} out of ECMP after {out_t.seconds} s (graceful shutdown), withdrawn "
            f"after {gone_t.seconds} s; {reached}/{FLOWS} new connections reach it"
        )
        r.expect(reached == 0, f"{reached} new connections still reach {victim.name}")
        why = sorted({q["error"][:60] for q in failed_first})[:2]
        r.say(
            f"keep-alive pool: {len(during)} requests during the drain, {len(failed_first)} "
            f"failed on their pooled connection{f' {why}' if why else ''}, "
            f"{len(failed_retry)} still failed after one retry on a new connection"
        )
        r.expect(not failed_retry, f"{len(failed_retry)} pool requests failed even after a retry")
        r.say(
            f"flows: {r.figures['own_flows_broken']} of {own_flows} on {victim.name} broke or "
            f"moved; {broken} of {sum(1 for a in before if a and a != victim.name)} on other "
            f"nodes over {rounds} rounds"
        )
        r.expect(broken == 0, f"{broken} flows on other nodes broke or moved")
        current = flows.round()
        t1 = time.monotonic()
        pod.exec(victim.ns, _sixpod(), "node", "undrain", "--config", str(victim.config))
        drained = False
        back_t = _Timer(t1, lambda: _in_ecmp(pod, rack, victim) == want, 30)
        back_t.start()
        broken_back, _, _ = _rounds_until(flows, current, victim.name, back_t)
        r.figures.update(back_in_ecmp_s=back_t.seconds, other_flows_broken_undrain=broken_back)
        r.expect(back_t.seconds is not None, f"{victim.name} not back in ECMP 30 s after undrain")
        r.expect(broken_back == 0, f"{broken_back} flows on other nodes broke at the undrain")
        r.say(
            f"undrained: back in ECMP after {back_t.seconds} s; {broken_back} flows on other "
            "nodes broke or moved"
        )
    finally:
        if flows is not None:
            flows.close()
        if pool is not None:
            pool.close()
        try:
            if drained:
                pod.exec(victim.ns, _sixpod(), "node", "undrain", "--config", str(victim.config))
            pod.api("app", "delete", app, "--force")
        finally:
            problems = box.close()
            if problems:
                raise LabError(f"the drill's container was not removed: {problems}")
    return r


def _bgp_nexthops(pod: LabPod, rack: str, vip: str) -> set[str]:
    """Next hops of every path the ToR's BGP table holds for ``vip`` (selected or not)."""
    fam, plen = ("ipv4", 32) if "." in vip else ("ipv6", 128)
    data = pod.tors[rack].frr.json(f"show bgp {fam} unicast {vip}/{plen} json")
    return {str(h.get("ip")) for p in data.get("paths", []) for h in p.get("nexthops", [])[:1]}


# -- mtu ----------------------------------------------------------------------------------

MTU_WRONG = 1500
"""The MTU the drill leaves on a ToR port in front of a jumbo-frame node (a switch port
never raised from its default); below it, the node's own MTU less 100 (at least 1280)."""


def _pod_yaml(pod: LabPod) -> str:
    """The inventory beside the lab's ``pod.lock`` (``sixpod probe mtu`` reads it)."""
    if pod.lock is not None:
        for suffix in (".yaml", ".yml"):
            if (path := pod.lock.with_suffix(suffix)).is_file():
                return str(path)
    raise LabError("the mtu drill needs the pod's inventory beside its pod.lock (`sixpod lab up`)")


def _link_mtu(ns: str, ifname: str) -> int:
    from sixpod.lab.netns import run

    [link] = json.loads(run(["ip", "-j", "-n", ns, "link", "show", "dev", ifname]))
    return int(link["mtu"])


def _set_link_mtu(ns: str, ifname: str, mtu: int) -> None:
    from sixpod.lab.netns import run

    run(["ip", "-n", ns, "link", "set", "dev", ifname, "mtu", str(mtu)])


def mtu(pod: LabPod, echo: Callable[[str], None] | None = None, node: str = "") -> DrillResult:
    """One link's MTU set wrong: the ToR's port to ``node`` (default: an internal node of a
    rack with two nodes) narrower than the node's uplink, as a switch port left at its default in
    front of a jumbo-frame server. ``sixpod probe mtu`` from another node of the rack (its
    metrics written where that node's node-exporter reads its textfile collector) must see
    the path differ from the inventory, and the lab's Prometheus must fire PathMtuDiffers
    for it; then the port is put back, the probe runs again, and the alert must resolve.
    Figures: the sizes, what the probe measured, times from the change to the alert firing
    and from the repair to it resolving."""
    from sixpod.lab import monitoring

    r = DrillResult("mtu", echo=echo)
    inventory = _pod_yaml(pod)
    dst = pod.nodes.get(node) if node else None
    if node and dst is None:
        raise LabError(f"no node {node} in the lab")
    if dst is None:
        racks = [n.doc.rack for n in pod.nodes.values()]
        rack = next((k for k in pod.tors if racks.count(k) >= 2), None)
        if rack is None:
            raise LabError("no rack has two nodes: the drill probes from one to the other")
        # an internal node if the rack has one: the edges keep serving meanwhile
        dst = sorted((n for n in pod.nodes.values() if n.doc.rack == rack), key=lambda n: n.edge)[0]
    peers = [n for n in pod.nodes.values() if n.doc.rack == dst.doc.rack and n is not dst]
    if not peers:
        raise LabError(f"{dst.name} is alone in its rack: the drill probes from a neighbour")
    src, tor = peers[0], pod.tors[dst.doc.rack]
    port, node_mtu = dst.doc.uplink.port, dst.doc.uplink.mtu
    wrong = MTU_WRONG if node_mtu > MTU_WRONG else max(1280, node_mtu - 100)
    if wrong >= node_mtu:
        raise LabError(f"{dst.name}'s MTU is {node_mtu}: no narrower one to set (IPv6: 1280)")
    textfile = monitoring.textfile_dir(pod, src.name)
    if not monitoring.ready(pod):
        raise LabError("the lab's Prometheus does not answer (a lab from before monitoring?)")

    def probe() -> dict[str, Any]:
        out = pod.exec(
            src.ns, _sixpod(), "probe", "mtu", inventory, "--from", src.name, "--to", dst.name,
            "--timeout", "0.5", "--textfile", str(textfile), "--json",
            timeout=120, check=False,
        )  # fmt: skip
        try:
            doc: dict[str, Any] = json.loads(out)
        except ValueError:
            raise LabError(f"sixpod probe mtu printed no JSON: {out[:200]!r}") from None
        return doc

    def firing() -> bool:
        return any(
            a["alert"] == "PathMtuDiffers"
            and a["state"] == "firing"
            and a["labels"].get("to") == dst.name
            for a in monitoring.alerts(pod)
        )

    def active() -> bool:
        return any(
            a["alert"] == "PathMtuDiffers" and a["labels"].get("to") == dst.name
            for a in monitoring.alerts(pod)
        )

    def ok_sample(value: int) -> Callable[[], bool]:
        query = f'sixpod_path_mtu_ok{{to="{dst.name}",device="{src.name}"}} == {value}'
        return lambda: bool(monitoring.query(pod, query))

    before = probe()
    r.say(
        f"{src.name} -> {dst.name}: path carries {before.get('measured_mtu')}, the inventory "
        f"says {before.get('inventory_mtu')} ({'as it should' if before.get('ok') else 'DIFFERS'})"
    )
    r.expect(bool(before.get("ok")), f"the path {src.name} -> {dst.name} differed before the drill")
    if not before.get("ok"):
        return r  # nothing to show on a path that is already wrong: the port is left alone
    seen = _watch(ok_sample(1), timeout=60, interval=0.5)
    r.expect(seen is not None, "Prometheus did not scrape the probe's metrics within 60 s")
    original = _link_mtu(tor.ns, port)
    r.figures.update(
        node=dst.name, probed_from=src.name, tor=tor.name, port=port,
        node_mtu=node_mtu, port_mtu=original, wrong_mtu=wrong,
    )  # fmt: skip
    t0 = time.monotonic()
    try:
        _set_link_mtu(tor.ns, port, wrong)
        r.say(f"{tor.name} {port} (to {dst.name}, MTU {node_mtu}): MTU {original} -> {wrong}")
        broken = probe()
        r.figures["measured_mtu"] = broken.get("measured_mtu")
        r.figures["probe_caught"] = not broken.get("ok", True)
        big = [p for p in broken.get("probes", []) if not p["ok"]]
        how = ", ".join(f"{p['size']}: {p['outcome']}" for p in big) or "nothing"
        r.say(
            f"sixpod probe mtu: path carries {broken.get('measured_mtu')}, the inventory says "
            f"{broken.get('inventory_mtu')} ({how})"
        )
        r.expect(bool(r.figures["probe_caught"]), "the probe did not see the narrower port")
        r.expect(
            broken.get("measured_mtu") == wrong,
            f"the probe measured {broken.get('measured_mtu')}, not the port's {wrong}",
        )
        fired = _watch(firing, timeout=120, interval=0.2)
        r.figures["fired_s"] = None if fired is None else _elapsed(t0)
        r.expect(fired is not None, "PathMtuDiffers did not fire within 120 s")
        if fired is not None:
            r.say(
                f"Prometheus: PathMtuDiffers firing for {dst.name} {r.figures['fired_s']} s later"
            )
    finally:
        _set_link_mtu(tor.ns, port, original)
    t1 = time.monotonic()
    r.say(f"{tor.name} {port}: MTU back to {original}")
    try:
        after = probe()
    except LabError:
        for f in textfile.glob("*.prom"):  # no verdict of the narrow port left to fire on
            f.unlink(missing_ok=True)
        raise
    r.figures["probe_ok_after"] = bool(after.get("ok"))
    r.expect(bool(after.get("ok")), "the probe still saw the path differ after the repair")
    resolved = _watch(lambda: not active(), timeout=120, interval=0.2)
    r.figures["resolved_s"] = None if resolved is None else _elapsed(t1)
    r.expect(resolved is not None, "PathMtuDiffers did not resolve within 120 s")
    if resolved is not None:
        r.say(f"Prometheus: PathMtuDiffers resolved {r.figures['resolved_s']} s after the repair")
    return r


DRILLS: dict[str, Callable[..., DrillResult]] = {
    "kill-edge": kill_edge,
    "blackhole-vip": blackhole_vip,
    "redis-down": redis_down,
    "controller-restart": controller_restart,
    "kill-tor": kill_tor,
    "drain-edge": drain_edge,
    "mtu": mtu,
}
