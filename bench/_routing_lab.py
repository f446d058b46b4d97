"""Lab plumbing for ``bench/run routing``: a fast view of the ToR's RIB, timed waits, node
faults, the ExaBGP healthcheck anchor and flow accounting. Used by :mod:`bench.routing`.

Everything happens inside the lab's namespaces (:class:`sixpod.lab.pod.LabPod`); nothing is
added to the root namespace.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._stats import percentile
from sixpod import addr
from sixpod.lab.netns import LabError, run
from sixpod.lab.pod import HEALTH_PORT, Flows, LabNode, LabPod, moved, selected_hops

ROOT = Path(__file__).resolve().parents[1]
SIXPOD = str(Path(sys.executable).with_name("sixpod"))
EXABGP = str(Path(sys.executable).with_name("exabgp"))
RACK = "r1"
POLL = 0.002  # seconds between two looks at the ToR's RIB (a look costs 0.05-1 ms)
# A node that goes silent: nothing in or out on its uplink (loopback keeps working, so the
# node's own processes carry on as on a node whose NIC or cable died without a link-down).
SILENCE = (
    "add table inet sxbench; "
    "add chain inet sxbench out { type filter hook output priority 0; policy drop; }; "
    "add chain inet sxbench in { type filter hook input priority 0; policy drop; }; "
    "add rule inet sxbench out oif lo accept; "
    "add rule inet sxbench in iif lo accept"
)
UNSILENCE = "delete table inet sxbench"


def log(message: str) -> None:
    print(f"routing: {message}", file=sys.stderr, flush=True)


def render_small(dest: Path) -> Path:
    """examples/small.yaml with every node an edge node, rendered by ``sixpod render``."""
    dest.mkdir(parents=True, exist_ok=True)
    pod = dest / "small.yaml"
    text = (ROOT / "examples" / "small.yaml").read_text()
    pod.write_text(text.replace("role: internal", "role: edge"))
    shutil.copy(ROOT / "examples" / "small.lock", dest / "small.lock")
    out = dest / "rendered"
    res = subprocess.run(
        [SIXPOD, "render", str(pod), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if res.returncode != 0:
        raise LabError(f"sixpod render: exit {res.returncode}: {res.stderr.strip()}")
    return out


# -- the ToR's RIB ---------------------------------------------------------------------------


class ZebraView:
    """The ToR's zebra RIB over one persistent vty connection.

    Same daemon, command, JSON and selection rule as :meth:`LabPod.routes`, but a query costs
    0.05-1 ms instead of a ``vtysh`` process (30-100 ms of CPU on this 2-core machine, which
    would both blur the timings and slow down the FRR and ExaBGP being measured).
    """

    def __init__(self, rundir: Path) -> None:
        self.path = rundir / "zebra.vty"
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(str(self.path))
        return sock

    def command(self, command: str) -> str:
        """One command; the daemon answers with the output, then ``\\0\\0\\0`` and a status."""
        for attempt in (1, 2):
            if self.sock is None:
                self.sock = self._connect()
            try:
                self.sock.sendall(command.encode() + b"\0")
                buf = bytearray()
                while len(buf) < 4 or buf[-4:-1] != b"\0\0\0":
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("zebra closed the vty")
                    buf += chunk
            except OSError:
                self.close()
                if attempt == 2:
                    raise
                continue
            if buf[-1] not in (0, 1):  # CMD_SUCCESS, CMD_WARNING ("{}": no such route)
                raise LabError(f"zebra: {command!r}: status {buf[-1]}: {buf[:-4].decode()}")
            return buf[:-4].decode()
        raise AssertionError("unreachable")

    def routes(self, vip: str) -> set[str]:
        """Next hops of the selected BGP route for ``vip`` (as :meth:`LabPod.routes`)."""
        ip = addr.parse_ip(vip)
        key = f"{addr.format_ip(ip)}/{32 if ip.version == 4 else 128}"
        text = self.command(f"show {'ip' if ip.version == 4 else 'ipv6'} route {key} json")
        data: dict[str, Any] = json.loads(text) if text.strip() else {}
        return selected_hops(key, data.get(key, []))

    def via(self, vip: str, want: set[str]) -> Callable[[], bool]:
        """A predicate: ``vip``'s ECMP set is exactly ``want``."""
        return lambda: self.routes(vip) == want

    def has(self, vip: str, hop: str, present: bool = True) -> Callable[[], bool]:
        """A predicate: ``hop`` is (or, with ``present=False``, is not) in ``vip``'s ECMP set."""
        return lambda: (hop in self.routes(vip)) == present

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def time_until(
    predicate: Callable[[], bool],
    t0: float,
    timeout: float,
    *,
    poll: float = POLL,
    tick: Callable[[], None] | None = None,
) -> float | None:
    """Seconds from ``t0`` until ``predicate`` first holds (end of that look), None on timeout."""
    deadline = t0 + timeout
    while True:
        ok = predicate()
        now = time.monotonic()
        if ok:
            return now - t0
        if now > deadline:
            return None
        if tick is not None:
            tick()
        time.sleep(poll)


def wait(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Like :func:`time_until` from now, but a timeout is an error (the lab is not usable)."""
    took = time_until(predicate, time.monotonic(), timeout)
    if took is None:
        raise LabError(f"timed out after {timeout:g} s waiting for {what}")
    return took


def summary(samples: Sequence[float]) -> dict[str, float]:
    xs = sorted(samples)
    return {
        "p50": round(percentile(xs, 0.5, interpolate=True), 3),
        "p90": round(percentile(xs, 0.9, interpolate=True), 3),
        "min": round(xs[0], 3),
        "max": round(xs[-1], 3),
    }


# -- timed fault trials ----------------------------------------------------------------------


@dataclass
class Trials:
    """Fault-to-out-of-ECMP times (and back-in times) of one experiment."""

    name: str
    timeout: float
    out: list[float] = field(default_factory=list)
    back: list[float] = field(default_factory=list)
    timeouts: int = 0

    def record(self, took: float | None, node: str) -> None:
        if took is None:
            self.timeouts += 1
            took = self.timeout  # counted at the bound, which understates it
        self.out.append(took)
        log(f"  {self.name} #{len(self.out)} {node}: out of ECMP after {took:.3f} s")


def run_trials(
    pod: LabPod,
    view: ZebraView,
    vip: str,
    trials: Trials,
    count: int,
    *,
    fault: Callable[[LabNode], None],
    repair: Callable[[LabNode], None],
    jitter: float,
    back_timeout: float,
    rng: random.Random,
    before: Callable[[], None] | None = None,
) -> None:
    """``count`` times, rotating over the nodes: a random delay in [0, ``jitter``) (the
    period of the timer that catches the fault), the fault (in place at t0), time until the
    node's address leaves ``vip``'s ECMP set on the ToR; repair, wait until it is back."""
    nodes = list(pod.nodes.values())
    everyone = {n.address for n in nodes}
    # Stratified phases: one delay in each of ``count`` equal slices of [0, jitter), shuffled.
    # Unbiased like uniform delays, with less spread in a small sample's median.
    slices = list(range(count))
    rng.shuffle(slices)
    for i in range(count):
        node = nodes[i % len(nodes)]
        wait(view.via(vip, everyone), back_timeout, f"{vip} via every node")
        if before is not None:
            before()
        time.sleep((slices[i] + rng.random()) * jitter / count)  # phase against node timers
        fault(node)
        t0 = time.monotonic()  # the fault is in place
        trials.record(time_until(view.has(vip, node.address, False), t0, trials.timeout), node.name)
        t1 = time.monotonic()
        repair(node)
        back = time_until(view.has(vip, node.address), t1, back_timeout)
        if back is None:
            raise LabError(f"{trials.name}: {node.name} not back on {vip} after {back_timeout} s")
        trials.back.append(back)
    wait(view.via(vip, everyone), back_timeout, f"{vip} via every node")


# -- the anchor: ExaBGP's own healthcheck ----------------------------------------------------


def _sh_word(text: str) -> str:
    """One shell word without quote characters (ExaBGP's config cannot nest quotes)."""
    safe = "._-/:=,+@%"
    return "".join(c if c.isalnum() or c in safe else "\\" + c for c in text)


def check_command() -> tuple[str, list[str]]:
    """The anchor's health check: HTTP GET of the node's health endpoint, exit 0 on 200.

    curl (~10 ms) when installed; else a Python one-liner, which costs 0.1-0.5 s per run on
    this 2-core machine (interpreter start and ``urllib`` import): with fall 3 that would add
    up to ~1.5 s to the anchor for reasons that are not ExaBGP's defaults.
    """
    url = f"http://[::1]:{HEALTH_PORT}/healthz"
    curl = shutil.which("curl")
    if curl is not None:
        return "curl", [curl, "-gsf", "-o", "/dev/null", "--max-time", "2", url]
    code = "import sys,urllib.request as u;sys.exit(u.urlopen(sys.argv[1],timeout=2).status!=200)"
    return "python-urllib", [sys.executable, "-c", code, url]


def healthcheck_conf(pod: LabPod, node: LabNode, vip: str) -> Path:
    """The node's rendered ExaBGP config, running ``exabgp healthcheck`` at its defaults.

    Only what the lab needs is given: the check command (:func:`check_command`), the next hop
    (RFC 8950: IPv4 VIPs carry the node's IPv6 address), the VIP, and ``--no-ip-setup`` (the
    lab owns the node's loopback). Timing (interval 5 s, fast interval 1 s, rise 3, fall 3) and
    the failure action (MED 100 -> 1000 instead of a withdrawal) are ExaBGP's defaults.
    """
    check = " ".join(_sh_word(word) for word in check_command()[1])
    plen = 32 if addr.parse_ip(vip).version == 4 else 128
    argv = [
        EXABGP, "healthcheck", "--no-syslog",
        "--cmd", f'"{check}"',
        "--next-hop", node.address,
        "--ip", f"{vip}/{plen}",
        "--no-ip-setup",
    ]  # fmt: skip
    line = " ".join(argv)
    if "'" in line or line.count('"') != 2:
        raise LabError(f"ExaBGP cannot parse nested quotes: {line}")
    # ExaBGP unescapes backslashes before it tokenises; the shell must still see them.
    line = line.replace("\\", "\\\\")
    text = (pod.rendered / "nodes" / node.name / "exabgp.conf").read_text()
    start = text.index("    run ") + len("    run ")
    end = text.index(";\n", start)
    text = text[:start] + line + text[end:]
    # The healthcheck reads one line per command (ExaBGP's ack); no other messages.
    text = text.replace("        neighbor-changes;\n", "")
    path = node.dir / "exabgp-healthcheck.conf"
    path.write_text(text)
    return path


def check_cost(pod: LabPod, node: LabNode, runs: int = 5) -> float:
    """Median seconds one run of the anchor's check command takes on a healthy node."""
    argv = check_command()[1]
    took = []
    for _ in range(runs):
        start = time.monotonic()
        pod.exec(node.ns, *argv)  # raises unless the check passes
        took.append(time.monotonic() - start)
    return percentile(took, 0.5, interpolate=True)


def switch_to_healthcheck(pod: LabPod, node: LabNode, vip: str) -> None:
    """Stop the node's bootstrap (its supervised bfdd, ExaBGP and ``sixpod announcer``); run
    bfdd and an ExaBGP running the healthcheck instead, started by the bench."""
    from sixpod.lab.frr import Frr

    if node.exabgp is not None:
        pod.box.stop(node.exabgp)
    if node.boot is not None and node.boot.alive():
        pod.box.stop(node.boot, timeout=15)  # the supervisor stops its services
        node.frr = Frr(pod.box, node.ns, node.name, node.etc / "bfdd.conf", ("bfdd",))
        node.frr.start()
    pod.start_exabgp(node, healthcheck_conf(pod, node, vip))


def bgp_meds(pod: LabPod, vip: str) -> dict[str, int | None]:
    """MED of each path the ToR's bgpd holds for ``vip``, by next hop."""
    ip = addr.parse_ip(vip)
    fam, plen = ("ipv4", 32) if ip.version == 4 else ("ipv6", 128)
    data = pod.tors[RACK].frr.json(f"show bgp {fam} unicast {vip}/{plen} json")
    out: dict[str, int | None] = {}
    for path in data.get("paths", []):
        hop = addr.format_ip(addr.parse_ip(path["nexthops"][0]["ip"]))
        out[hop] = path.get("metric")
    return out


# -- flows -----------------------------------------------------------------------------------


def bucket_shares(pod: LabPod, vip: str, table: int = 1000) -> dict[str, int] | None:
    """Buckets per member (by gateway) of the helper's resilient group for ``vip``, or None
    when ``vip`` has no resilient group. A member that joins gets buckets only as they go idle
    (idle timer 1 s, no unbalanced timer), so under traffic it may get none for a long time."""
    ns = pod.tors[RACK].ns
    fam = "-6" if ":" in vip else "-4"
    routes = json.loads(
        run(["ip", fam, "-n", ns, "-j", "route", "show", "table", str(table), vip]) or "[]"
    )
    if not routes or "nhid" not in routes[0]:
        return None
    gid = str(routes[0]["nhid"])
    [group] = json.loads(run(["ip", "-n", ns, "-j", "nexthop", "show", "id", gid]))
    if group.get("type") != "resilient":
        return None
    gateways = {
        nh["id"]: addr.format_ip(addr.parse_ip(nh["gateway"]))
        for nh in json.loads(run(["ip", "-n", ns, "-j", "nexthop", "show"]))
        if "gateway" in nh
    }
    out = {gateways[m["id"]]: 0 for m in group.get("group", [])}
    for b in json.loads(run(["ip", "-n", ns, "-j", "nexthop", "bucket", "show", "id", gid])):
        out[gateways[b["bucket"]["nhid"]]] += 1
    return out


def resilient_balanced(pod: LabPod, vip: str, members: int) -> bool:
    """The resilient group for ``vip`` has ``members`` members, each with an even share."""
    shares = bucket_shares(pod, vip)
    return (
        shares is not None
        and len(shares) == members
        and max(shares.values()) - min(shares.values()) <= 1
    )


@dataclass
class FlowCount:
    """Flow accounting for one (mode, family), summed over leave/re-join cycles.

    The leave is judged on flows opened with every node in; the re-join on flows opened
    while the node was out (all on the other nodes). Flows from before the leave that survive
    it are a poor probe of the re-join: with plain hash-threshold groups they are exactly the
    flows whose hash region did not change, so a re-join that restores the old group cannot
    move them. They are counted apart (``rejoin_prior``).
    """

    flows: int = 0  # flows alive before the leave
    on_leaving: int = 0  # of those, on the node that left
    leave_moved_all: int = 0  # any of them that moved or broke on the leave
    leave_other_moved: int = 0  # of those on the other nodes, moved or broke on the leave
    leave_other: int = 0
    rejoin_other_moved: int = 0  # flows opened while the node was out, moved/broke on re-join
    rejoin_other: int = 0
    rejoin_prior_moved: int = 0  # flows from before the leave still alive, moved on re-join
    rejoin_prior: int = 0
    rejoined_buckets: int = 0  # resilient: buckets the node has once the re-join settled
    buckets: int = 0

    def add(self, other: FlowCount) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class FlowSet:
    """Batches of long-lived flows; with ``pace``, every flow exchanges a message at least
    every ``pace`` seconds while we wait (an active flow keeps its resilient bucket busy)."""

    def __init__(self, pod: LabPod, count: int, pace: float | None) -> None:
        self.pod = pod
        self.count = count
        self.flows: dict[tuple[str, str], Flows] = {}
        self.pace = pace
        self.last_round = 0.0

    def open(self, batch: str, vips: Iterable[str]) -> dict[str, list[str | None]]:
        """Open ``count`` flows per VIP; return their first answers."""
        for vip in vips:
            self.flows[batch, vip] = self.pod.flows(vip, self.count)
        answers = self.round()
        return {vip: a for (b, vip), a in answers.items() if b == batch}

    def round(self) -> dict[tuple[str, str], list[str | None]]:
        answers = {key: f.round() for key, f in self.flows.items()}
        self.last_round = time.monotonic()
        return answers

    def tick(self) -> None:
        if self.pace is not None and time.monotonic() - self.last_round >= self.pace:
            self.round()

    def settle(self, active: float, idle: float) -> None:
        """Let a change take effect. Active flows: ``active`` seconds of pacing. Idle flows:
        silence for ``active`` seconds and until nothing was sent for ``idle`` seconds (longer
        than the groups' idle timer, so every bucket is free to move)."""
        if self.pace is None:
            time.sleep(max(active, self.last_round + idle - time.monotonic()))
            return
        end = time.monotonic() + active
        while time.monotonic() < end:
            self.tick()
            time.sleep(0.02)

    def close(self) -> None:
        for f in self.flows.values():
            f.close()


def flow_cycle(
    pod: LabPod,
    view: ZebraView,
    vips: Sequence[str],
    leaving: LabNode,
    *,
    count: int,
    resilient: bool,
    pace: float | None,
    settle: float,
    idle: float,
    timeout: float = 20,
) -> dict[str, FlowCount]:
    """Open flows, take ``leaving`` out (its health fails), open more flows, bring it back;
    count what moved or broke."""
    everyone = {n.address for n in pod.nodes.values()}
    others = everyone - {leaving.address}
    names = {n.name for n in pod.nodes.values()}

    def state(want: set[str]) -> Callable[[], bool]:
        def ok() -> bool:
            if any(view.routes(v) != want for v in vips):
                return False
            return not resilient or all(pod.resilient_paths(RACK, v) == len(want) for v in vips)

        return ok

    def spread(answers: dict[str, list[str | None]], over: set[str], when: str) -> None:
        for vip, a in answers.items():
            if set(a) != over:
                raise LabError(f"flows to {vip} opened {when}: not spread over {over}: {a}")

    def ready() -> bool:
        return state(everyone)() and (
            not resilient or all(resilient_balanced(pod, v, len(everyone)) for v in vips)
        )

    wait(state(everyone), timeout, "every node in the ECMP set")
    if resilient and not ready():
        # With production timers (idle 120 s, unbalanced 300 s) a re-joined node gets its
        # buckets back only after minutes: start each cycle from fresh, balanced groups.
        tor = pod.tors[RACK]
        if tor.resilient is not None:
            pod.box.stop(tor.resilient)
        pod.start_resilient(tor)
    wait(ready, timeout, "every node in the ECMP set (and its share of buckets)")
    flows = FlowSet(pod, count, pace)
    try:
        before = flows.open("before", vips)
        spread(before, names, "with every node in")
        leaving.healthy(False)
        _wait_paced(flows, state(others), timeout, f"{leaving.name} out of the ECMP set")
        flows.settle(settle, idle)
        after_leave = flows.round()
        during = flows.open("during", vips)
        spread(during, names - {leaving.name}, f"with {leaving.name} out")
        flows.settle(settle, idle)
        leaving.healthy(True)
        _wait_paced(flows, state(everyone), timeout, f"{leaving.name} back in the ECMP set")
        flows.settle(settle, idle)
        after_rejoin = flows.round()
        shares = {v: bucket_shares(pod, v) if resilient else None for v in vips}
    finally:
        leaving.healthy(True)
        flows.close()
    out: dict[str, FlowCount] = {}
    for vip in vips:
        b, al, ar = before[vip], after_leave["before", vip], after_rejoin["before", vip]
        c = FlowCount(flows=sum(x is not None for x in b))
        c.on_leaving = sum(x == leaving.name for x in b)
        c.leave_moved_all = sum(1 for x, y in zip(b, al, strict=True) if x is not None and y != x)
        c.leave_other_moved, c.leave_other = moved(b, al, leaving.name)
        c.rejoin_prior_moved, c.rejoin_prior = moved(al, ar, leaving.name)
        c.rejoin_other_moved, c.rejoin_other = moved(
            during[vip], after_rejoin["during", vip], leaving.name
        )
        share = shares[vip]
        if share is not None:
            c.rejoined_buckets, c.buckets = share.get(leaving.address, 0), sum(share.values())
        out[vip] = c
    return out


def _wait_paced(flows: FlowSet, predicate: Callable[[], bool], timeout: float, what: str) -> None:
    if time_until(predicate, time.monotonic(), timeout, poll=0.02, tick=flows.tick) is None:
        raise LabError(f"timed out after {timeout:g} s waiting for {what}")
