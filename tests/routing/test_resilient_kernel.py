"""The resilient-hashing helper against the real kernel, iproute2 and FRR, in namespaces.

Topology (every test builds its own in a :class:`~sixpod.lab.netns.Sandbox` with a unique
prefix, and the fixture removes it and checks that nothing of it is left)::

    client ──cl0── tor ──swp1── n1   each node: VIPs 203.0.113.10/32 and 2001:db8:f::10/128
                       ──swp2── n2   on lo, link 2001:db8:ff:N::2/64, IPv4 default route via
                       ──swp3── n3   inet6 2001:db8:ff:N::1 (RFC 8950 style), UDP responder

The ToR forwards IPv4 over IPv6 next hops. Flows are UDP "connections" from the client with
distinct source ports; each node answers with its name, so every flow's node is known before
and after a node leaves the path set.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from pathlib import Path
from typing import Any

import pytest

from sixpod.lab import netns
from sixpod.lab.netns import Process, Sandbox
from sixpod.routing.resilient.adapters import IpKernel, RouteEvents, VtyshFrr
from sixpod.routing.resilient.config import TorResilientConfig
from sixpod.routing.resilient.daemon import SyncResult, run, sync
from sixpod.routing.resilient.errors import ResilientError
from sixpod.routing.resilient.frr import decode_frr_routes, format_frr_routes
from sixpod.routing.resilient.model import (
    GROUP_BASE,
    MEMBER_BASE,
    DelNexthop,
    GroupSettings,
    Member,
    ReplaceGroup,
    Settings,
)
from sixpod.routing.resilient.plan import member_hint, teardown_plan

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is needed"),
]

V4 = IPv4Network("203.0.113.10/32")
V6 = IPv6Network("2001:db8:f::10/128")
PORT = 5300
FLOWS = 300
SETTINGS = Settings(vips=frozenset({V4, V6}))
Flows = dict[int, dict[int, str]]  # family -> source port -> the node that answered
NO_RP_FILTER = ("net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
# Not Sandbox.netns(router=True): that presets fib_multipath_hash_policy, and the test checks
# that IpKernel.set_multipath_hash() sets it.
FORWARDING = ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")

RESPONDER = """
import select, socket, sys, time
name, port, addrs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
socks = []
for a in addrs:
    s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a, port))
    socks.append(s)
print("ready", flush=True)
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    ready, _, _ = select.select(socks, [], [], 1.0)
    for s in ready:
        data, peer = s.recvfrom(512)
        s.sendto(name.encode() + b" " + data, peer)
"""

CLIENT = """
import json, select, socket, sys, time
# Long-lived flows: one connected UDP socket per flow, kept open across probes. (On veth the
# sender's socket hash travels with the packet and the ToR hashes on it, so a flow is a socket,
# as a TCP connection would be.) Each connection to the control socket (a path: it reaches
# across namespaces) that sends a "probe" line gets one round on every flow and the answer
# {"4": {sport: node}, "6": {...}} as one line. Lifetime and every wait are bounded.
control, port, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
vips = sys.argv[5:]
flows = {}
for vip in vips:
    v6 = ":" in vip
    for sport in range(first, first + count):
        s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
        if v6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::" if v6 else "0.0.0.0", sport))
        s.connect((vip, port))
        s.setblocking(False)
        flows[s.fileno()] = ("6" if v6 else "4", sport, s)
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(control)
listener.listen()
print("ready", flush=True)
end = time.monotonic() + 600
round_no = 0
while time.monotonic() < end:
    listener.settimeout(max(0.01, end - time.monotonic()))
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        break
    conn.settimeout(30)
    with conn, conn.makefile("rwb") as stream:
        if stream.readline().strip() != b"probe":
            break
        tag = b"r%d" % round_no
        round_no += 1
        for _, _, s in flows.values():  # drop late answers of earlier rounds
            for _ in range(100):
                try:
                    s.recv(512)
                except OSError:
                    break
        answers, next_send, deadline = {}, 0.0, time.monotonic() + 15
        while len(answers) < len(flows) and time.monotonic() < deadline:
            if time.monotonic() >= next_send:
                for fd, (_, sport, s) in flows.items():
                    if fd not in answers:
                        try:
                            s.send(tag)
                        except OSError:
                            pass
                next_send = time.monotonic() + 0.3
            ready, _, _ = select.select(list(flows), [], [], 0.05)
            for fd in ready:
                try:
                    node, got = flows[fd][2].recv(512).split()
                except (OSError, ValueError):
                    continue
                if got == tag:
                    answers[fd] = node.decode()
        out = {"4": {}, "6": {}}
        for fd, node in answers.items():
            fam, sport, _ = flows[fd]
            out[fam][sport] = node
        stream.write(json.dumps(out).encode() + b"\\n")
"""


def member(n: int) -> Member:
    return Member(IPv6Address(f"2001:db8:ff:{n}::2"), f"swp{n}")


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox removed at the end; fails the test if anything of it is left."""
    sandbox = Sandbox(prefix=f"sxr{secrets.token_hex(3)}-", workdir=tmp_path)
    try:
        yield sandbox
    finally:
        procs, dirs = list(sandbox.processes), list(sandbox.tempdirs)
        etc = [netns.NETNS_ETC / ns for ns in sandbox.namespaces]
        inodes = namespace_inodes(sandbox.namespaces)
        problems = sandbox.close()
    with contextlib.suppress(netns.LabError):  # killed processes may take a moment to go
        netns.wait_for(lambda: not pids_in(inodes), timeout=5, what="the namespaces to empty")
    left = [f"process {p.name} ({p.pid})" for p in procs if p.alive()]
    left += [f"process {pid} in a lab namespace" for pid in pids_in(inodes)]
    left += [f"netns {ns}" for ns in netns.existing_namespaces(sandbox.prefix)]
    left += [f"path {path}" for path in etc + dirs if path.exists()]
    assert problems == []
    assert left == []


def namespace_inodes(names: list[str]) -> set[int]:
    """The inodes of the named network namespaces (as ``/proc/PID/ns/net`` shows them)."""
    inodes = set()
    for ns in names:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(f"/run/netns/{ns}").st_ino)
    return inodes


def pids_in(inodes: set[int]) -> list[int]:
    """Live processes (not zombies: they have no namespaces) in the namespaces ``inodes``."""
    links = {f"net:[{inode}]" for inode in inodes}
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "net") in links:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def sysctl(ns: str, *settings: str) -> None:
    netns.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *settings])


def ip_json(ns: str, *args: str) -> Any:
    """The JSON output of ``ip -j ARGS`` inside ``ns``."""
    return json.loads(netns.run(["ip", "-n", ns, "-j", *args]))


def wait_ready(proc: Process, *, timeout: float) -> None:
    """Wait until ``proc`` has written its first line; it must be ``ready``."""
    netns.wait_for(
        lambda: "\n" in proc.log.read_text() or not proc.alive(),
        timeout=timeout,
        what=f"{proc.name} to start",
    )
    assert proc.log.read_text().partition("\n")[0] == "ready", proc.log.read_text()
    assert proc.alive(), f"{proc.name} exited"


@dataclass
class Pod:
    box: Sandbox
    tor: str
    client: str
    nodes: dict[int, str]
    kernel: IpKernel
    scripts: Path
    responders: list[Process] = field(default_factory=list)
    client_proc: Process | None = None

    @property
    def control(self) -> Path:
        return self.scripts / "client.sock"

    def start_flows(self, first: int) -> None:
        """Open FLOWS flows to each VIP from source ports first..first+FLOWS-1."""
        argv = [sys.executable, str(self.scripts / "client.py"), str(self.control), str(PORT)]
        argv += [str(first), str(FLOWS), "203.0.113.10", "2001:db8:f::10"]
        self.client_proc = self.box.spawn("client", self.client, argv)
        wait_ready(self.client_proc, timeout=30)

    def probe(self) -> Flows:
        """For each family, the node that answered each flow now."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(30)
            conn.connect(str(self.control))
            conn.sendall(b"probe\n")
            with conn.makefile("rb") as answer:
                try:
                    line = answer.readline()
                except TimeoutError:
                    line = b""
        assert line.endswith(b"\n"), "the client did not answer"
        out = json.loads(line)
        return {int(fam): {int(p): n for p, n in flows.items()} for fam, flows in out.items()}

    def nexthops(self) -> dict[int, dict[str, Any]]:
        return {nh["id"]: nh for nh in ip_json(self.tor, "nexthop", "show")}


def build_pod(box: Sandbox, *, responders: bool = True) -> Pod:
    tor = box.netns("tor")
    sysctl(tor, *NO_RP_FILTER, *FORWARDING)
    client = box.netns("client")
    sysctl(client, *NO_RP_FILTER)
    box.veth(tor, "cl0", client, "up0")
    box.addr(tor, "cl0", IPv6Interface("2001:db8:ff:100::1/64"), IPv4Interface("198.51.100.1/24"))
    box.addr(
        client, "up0", IPv6Interface("2001:db8:ff:100::2/64"), IPv4Interface("198.51.100.2/24")
    )
    box.route(client, IPv4Network("0.0.0.0/0"), via=IPv4Address("198.51.100.1"))
    box.route(client, IPv6Network("::/0"), via=IPv6Address("2001:db8:ff:100::1"))
    scripts = box.shared_dir("scripts")
    (scripts / "responder.py").write_text(RESPONDER)
    (scripts / "client.py").write_text(CLIENT)
    nodes = {}
    for n in (1, 2, 3):
        ns = box.netns(f"n{n}")
        sysctl(ns, *NO_RP_FILTER)
        nodes[n] = ns
        box.veth(tor, f"swp{n}", ns, "up0")
        box.addr(tor, f"swp{n}", IPv6Interface(f"2001:db8:ff:{n}::1/64"))
        gw = IPv6Address(f"2001:db8:ff:{n}::1")
        box.addr(ns, "up0", IPv6Interface(f"2001:db8:ff:{n}::2/64"))
        box.addr(ns, "lo", IPv4Interface("203.0.113.10/32"), IPv6Interface("2001:db8:f::10/128"))
        box.route(ns, IPv4Network("0.0.0.0/0"), via=gw)  # RFC 8950
        box.route(ns, IPv6Network("::/0"), via=gw)
    kernel = IpKernel(netns=tor)
    keys = ("net.ipv4.fib_multipath_hash_policy", "net.ipv6.fib_multipath_hash_policy")
    policies = ["ip", "netns", "exec", tor, "sysctl", "-n", *keys]
    assert netns.run(policies).split() == ["0", "0"]
    kernel.set_multipath_hash()
    assert netns.run(policies).split() == ["1", "1"]
    pod = Pod(box, tor, client, nodes, kernel, scripts)
    if responders:
        for n, ns in nodes.items():
            argv = [sys.executable, str(scripts / "responder.py"), f"n{n}", str(PORT)]
            proc = box.spawn(f"n{n}-responder", ns, [*argv, "203.0.113.10", "2001:db8:f::10"])
            wait_ready(proc, timeout=10)
            pod.responders.append(proc)
    return pod


@dataclass
class SyntheticFrr:
    """FRR's JSON in the captured shape, for the path set the test chooses."""

    paths: dict[IPv4Network | IPv6Network, frozenset[Member]]

    def read(self) -> tuple[object, object]:
        text4, text6 = format_frr_routes(self.paths)
        return json.loads(text4), json.loads(text6)


def moved(before: Flows, after: Flows) -> dict[int, float]:
    """Per family, the fraction of the flows on n1 and n2 before that are elsewhere after.

    Every flow must have answered after.
    """
    fractions = {}
    for fam in (4, 6):
        assert len(after[fam]) == FLOWS
        on = [p for p, n in before[fam].items() if n in {"n1", "n2"}]
        fractions[fam] = sum(after[fam][p] != before[fam][p] for p in on) / len(on)
    return fractions


def test_resilient_group_keeps_flows_when_a_node_leaves(box: Sandbox) -> None:
    pod = build_pod(box)
    frr = SyntheticFrr(
        {V4: frozenset(map(member, (1, 2, 3))), V6: frozenset(map(member, (1, 2, 3)))}
    )
    first = sync(SETTINGS, frr=frr, kernel=pod.kernel)
    assert first.changed
    assert sync(SETTINGS, frr=frr, kernel=pod.kernel).ops == ()  # idempotent on the real kernel

    nhs = pod.nexthops()
    group = nhs[GROUP_BASE]
    assert group["type"] == "resilient"
    assert group["resilient_args"]["buckets"] == GroupSettings().buckets
    assert group["resilient_args"]["idle_timer"] == GroupSettings().idle_timer
    assert group["resilient_args"]["unbalanced_timer"] == GroupSettings().unbalanced_timer
    gateways = {nhs[m["id"]]["gateway"]: nhs[m["id"]]["dev"] for m in group["group"]}
    assert gateways == {f"2001:db8:ff:{n}::2": f"swp{n}" for n in (1, 2, 3)}
    assert {m["id"] for m in group["group"]} == {member_hint(member(n)) for n in (1, 2, 3)}
    route4 = ip_json(pod.tor, "route", "show", "table", "1000")
    assert [(r["dst"], r["nhid"]) for r in route4] == [("203.0.113.10", GROUP_BASE)]
    route6 = ip_json(pod.tor, "-6", "route", "show", "table", "1000")
    assert [(r["dst"], r["nhid"]) for r in route6] == [("2001:db8:f::10", GROUP_BASE)]

    pod.start_flows(20000)
    before = pod.probe()
    assert pod.probe() == before, "flows must stay put while nothing changes"
    for fam, flows in before.items():
        assert len(flows) == FLOWS, f"IPv{fam}: only {len(flows)} flows answered"
        for n in (1, 2, 3):
            share = sum(node == f"n{n}" for node in flows.values()) / FLOWS
            assert share > 0.15, f"IPv{fam}: n{n} has {share:.0%} of the flows"

    # n3 leaves FRR's path set: the group is replaced in place
    frr.paths = {V4: frozenset(map(member, (1, 2))), V6: frozenset(map(member, (1, 2)))}
    result = sync(SETTINGS, frr=frr, kernel=pod.kernel)
    ids = tuple(sorted(member_hint(member(n)) for n in (1, 2)))
    assert result.ops == (
        ReplaceGroup(GROUP_BASE, ids, SETTINGS.group, SETTINGS.protocol),
        DelNexthop(member_hint(member(3))),
    )
    assert {m["id"] for m in pod.nexthops()[GROUP_BASE]["group"]} == set(ids)
    after = pod.probe()
    fractions = moved(before, after)
    for fam in (4, 6):
        from_n3 = {p: after[fam][p] for p, n in before[fam].items() if n == "n3"}
        assert from_n3
        assert set(from_n3.values()) <= {"n1", "n2"}
    print(
        f"\nresilient group: flows moved among those on the remaining nodes: "
        f"IPv4 {fractions[4]:.1%}, IPv6 {fractions[6]:.1%}"
    )
    assert fractions == {4: 0.0, 6: 0.0}

    # teardown of the helper's objects leaves nothing of ours
    pod.kernel.apply(teardown_plan(pod.kernel.read(SETTINGS), SETTINGS).ops)
    assert all(nh.get("protocol") != "250" for nh in pod.nexthops().values())
    assert ip_json(pod.tor, "route", "show", "table", "1000") == []
    for family in ("-4", "-6"):
        rules = ip_json(pod.tor, family, "rule", "show")
        assert all(r["priority"] != 1000 for r in rules)

    # for comparison: FRR's way, a plain group in the main table, replaced by a new one
    box.ip_batch(
        pod.tor,
        *(f"nexthop add id {100 + n} via 2001:db8:ff:{n}::2 dev swp{n}" for n in (1, 2, 3)),
        "nexthop add id 110 group 101/102/103",
        "route replace 203.0.113.10/32 nhid 110",
        "route replace 2001:db8:f::10/128 nhid 110",
    )
    plain_before = pod.probe()
    box.ip_batch(
        pod.tor,
        "nexthop add id 111 group 101/102",
        "route replace 203.0.113.10/32 nhid 111",
        "route replace 2001:db8:f::10/128 nhid 111",
    )
    plain = moved(plain_before, pod.probe())
    print(
        f"plain group (FRR 8.4):  flows moved among those on the remaining nodes: "
        f"IPv4 {plain[4]:.1%}, IPv6 {plain[6]:.1%}"
    )


def test_reconcile_matches_the_fake_kernel(box: Sandbox) -> None:
    """Every operation kind on the real kernel; its state parses as the fake kernel's does."""
    from resilientkit import FakeKernel

    pod = build_pod(box, responders=False)
    old4, old6 = IPv4Network("203.0.113.77/32"), IPv6Network("2001:db8:f::77/128")
    wide = Settings(vips=frozenset({V4, V6, old4, old6}))
    fake = FakeKernel()
    steps = [
        (wide, {V4: {1, 2, 3}, V6: {1, 2}, old4: {3}, old6: {2}}),
        (wide, {V4: {1, 2}, V6: {1, 2}, old4: {3}, old6: set()}),
        (SETTINGS, {V4: {2, 3}, V6: {1}}),
        (Settings(vips=SETTINGS.vips, group=GroupSettings(buckets=32)), {V4: {2}}),
        (SETTINGS, {}),
    ]
    for n, (settings, paths) in enumerate(steps):
        want: dict[IPv4Network | IPv6Network, frozenset[Member]] = {
            v: frozenset(map(member, ids)) for v, ids in paths.items()
        }
        frr = SyntheticFrr(want)
        real = sync(settings, frr=frr, kernel=pod.kernel)
        mirror = sync(settings, frr=frr, kernel=fake)
        assert real.ops == mirror.ops, f"step {n}"
        state, fake_state = pod.kernel.read(settings), fake.read(settings)
        assert dict(state.nexthops) == dict(fake_state.nexthops), f"step {n}"
        assert set(state.routes) == set(fake_state.routes), f"step {n}"
        assert set(state.rules) == set(fake_state.rules), f"step {n}"
        assert sync(settings, frr=frr, kernel=pod.kernel).ops == (), f"step {n}"
        if n == 1:
            # foreign objects: routes in the helper's table, rules of somebody else, made
            # as another program would make them (iproute2)
            box.ip_batch(
                pod.tor,
                "route add unreachable 198.51.100.0/25 table 1000",
                "route add 2001:db8:f::10/128 via 2001:db8:ff:1::2 table 1000 metric 7",
                "rule add to 203.0.113.10 lookup 1000 pref 1000",
                "rule add to 203.0.113.99 lookup 1000 pref 1000",
            )
            fake.routes[(IPv4Network("198.51.100.0/25"), 0)] = {
                "type": "7",
                "dst": "198.51.100.0/25",
            }
            fake.routes[(V6, 7)] = {"dst": "2001:db8:f::10", "metric": 7, "flags": []}
            for dst in ("203.0.113.10", "203.0.113.99"):
                fake.rules.append(
                    {"priority": 1000, "src": "all", "dst": dst, "table": "1000", "_v": 4}
                )
    assert ip_json(pod.tor, "route", "show", "table", "1000") == []
    assert all(nh.get("protocol") != "250" for nh in pod.nexthops().values())


# -- with the real FRR -----------------------------------------------------------------------------
EXABGP = Path(sys.executable).with_name("exabgp")

BGPD_CONF = """hostname tor
frr defaults datacenter
router bgp 64513
 bgp router-id 0.0.252.1
 no bgp default ipv4-unicast
 bgp bestpath as-path multipath-relax
 neighbor NODES peer-group
 neighbor NODES remote-as external
 neighbor NODES capability extended-nexthop
 neighbor NODES timers 3 9
 neighbor NODES timers connect 1
{neighbors} address-family ipv4 unicast
  maximum-paths 64
  neighbor NODES activate
 exit-address-family
 address-family ipv6 unicast
  maximum-paths 64
  neighbor NODES activate
 exit-address-family
exit
"""

EXABGP_CONF = """neighbor 2001:db8:ff:{n}::1 {{
    router-id 10.255.0.{n};
    local-address 2001:db8:ff:{n}::2;
    local-as {asn};
    peer-as 64513;
    hold-time 9;
    family {{ ipv4 unicast; ipv6 unicast; }}
    nexthop {{ ipv4 unicast ipv6; }}
    capability {{ nexthop enable; }}
    static {{
        route 203.0.113.10/32 next-hop 2001:db8:ff:{n}::2;
        route 2001:db8:f::10/128 next-hop 2001:db8:ff:{n}::2;
        route 2001:db8:100:{n}::/64 next-hop 2001:db8:ff:{n}::2;
    }}
}}
"""


def start_frr(box: Sandbox, ns: str, rundir: Path, daemon: str, *extra: str) -> None:
    """One FRR daemon in the foreground (tracked by PID), ready when its vty socket exists."""
    pidfile = rundir / f"{daemon}.pid"
    conf = rundir / f"{daemon}.conf"
    proc = box.spawn(
        f"tor-{daemon}",
        ns,
        [
            *(f"/usr/lib/frr/{daemon}", "-u", "frr", "-g", "frr", "-f", str(conf)),
            *("-i", str(pidfile), "--vty_socket", str(rundir), "-z", str(rundir / "zserv.api")),
            *("-A", "127.0.0.1", *extra),
        ],
    )
    vty = rundir / f"{daemon}.vty"
    netns.wait_for(lambda: vty.exists() or not proc.alive(), timeout=10, what=f"{daemon} to start")
    assert proc.alive(), f"{daemon} exited: {proc.log.read_text()}"


@pytest.mark.skipif(not Path("/usr/lib/frr/zebra").exists(), reason="FRR is needed")
@pytest.mark.skipif(not EXABGP.exists(), reason="ExaBGP is needed")
def test_follows_real_frr_when_a_node_withdraws(box: Sandbox) -> None:
    pod = build_pod(box, responders=False)
    rundir = box.shared_dir("frr")
    (rundir / "zebra.conf").write_text("hostname tor\nzebra nexthop-group keep 1\n")
    neighbors = "".join(f" neighbor 2001:db8:ff:{n}::2 peer-group NODES\n" for n in (1, 2, 3))
    (rundir / "bgpd.conf").write_text(BGPD_CONF.format(neighbors=neighbors))
    for path in (rundir, rundir / "zebra.conf", rundir / "bgpd.conf"):
        shutil.chown(path, "frr", "frr")
    start_frr(box, pod.tor, rundir, "zebra", "--v6-rr-semantics")
    start_frr(box, pod.tor, rundir, "bgpd")
    speakers = {}
    env = {"exabgp_api_cli": "false", "exabgp_daemon_drop": "false"}
    for n, ns in pod.nodes.items():
        conf = box.shared_dir(f"exabgp{n}") / "exabgp.conf"
        conf.write_text(EXABGP_CONF.format(n=n, asn=64600 + n))
        speakers[n] = box.spawn(f"n{n}-exabgp", ns, [str(EXABGP), str(conf)], env=env)

    frr = VtyshFrr(vty_socket=str(rundir))

    def paths_are(count: int) -> bool:
        doc4, doc6 = frr.read()
        view = decode_frr_routes(doc4, doc6, SETTINGS.vips)
        return all(len(view.paths[v]) == count for v in (V4, V6))

    netns.wait_for(lambda: paths_are(3), timeout=60, interval=0.2, what="three BGP paths in FRR")
    first = sync(SETTINGS, frr=frr, kernel=pod.kernel)
    assert first.view.paths == {
        V4: frozenset(map(member, (1, 2, 3))),
        V6: frozenset(map(member, (1, 2, 3))),
    }
    assert pod.nexthops()[GROUP_BASE]["type"] == "resilient"
    started = time.monotonic()
    assert sync(SETTINGS, frr=frr, kernel=pod.kernel).ops == ()
    print(f"\na sync with nothing to do takes {1000 * (time.monotonic() - started):.0f} ms")

    # the daemon loop, woken by route events, follows FRR when n3's speaker dies
    cfg = TorResilientConfig(vips=(V4, V6), netns=pod.tor, vty_socket=str(rundir), interval=2.0)
    stop = threading.Event()
    results: list[SyncResult | ResilientError] = []
    updated = threading.Event()
    changed_at: list[float] = []

    def on_result(r: SyncResult | ResilientError) -> None:
        results.append(r)
        if isinstance(r, SyncResult) and r.changed:
            changed_at.append(time.monotonic())
            updated.set()

    opened = threading.Event()
    failures: list[BaseException] = []

    def daemon() -> None:  # pyroute2 sockets stay in the thread that opened them
        try:
            with RouteEvents(netns=pod.tor, ignore_table=cfg.table) as events:
                opened.set()
                run(cfg, frr=frr, kernel=pod.kernel, stop=stop, events=events, on_result=on_result)
        except BaseException as e:
            failures.append(e)
            opened.set()

    loop = threading.Thread(target=daemon)
    loop.start()
    try:
        assert opened.wait(timeout=10)
        killed_at = time.monotonic()
        box.stop(speakers[3], sig=signal.SIGKILL)
        assert updated.wait(timeout=20), f"no change applied: {results[-3:]} {failures}"
    finally:
        stop.set()
        loop.join(timeout=10)
    assert failures == []
    assert not loop.is_alive()
    assert not any(isinstance(r, ResilientError) for r in results), results
    group = pod.nexthops()[GROUP_BASE]
    assert {m["id"] for m in group["group"]} == {member_hint(member(n)) for n in (1, 2)}
    print(f"helper updated {changed_at[0] - killed_at:.3f} s after n3's speaker was killed")

    # zebra's own objects stay below the helper's range; its routes stay in the main table
    zebra = {i: nh for i, nh in pod.nexthops().items() if nh.get("protocol") == "zebra"}
    assert zebra
    assert max(zebra) < MEMBER_BASE
    main4 = ip_json(pod.tor, "route", "show", "203.0.113.10/32")
    assert main4
    assert main4[0]["protocol"] == "bgp"
    assert main4[0]["nhid"] in zebra
