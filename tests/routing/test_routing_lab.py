"""Routing against real BGP: FRR on the ToR, ExaBGP + sixpod announcer on nodes, in namespaces."""

from __future__ import annotations

import grp
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit import ROOT, SIXPOD, lab_pod
from sixpod import addr
from sixpod.lab.netns import LabError, wait_for
from sixpod.lab.pod import LabPod
from sixpod.monitoring import ports

pytestmark = [pytest.mark.integration, pytest.mark.lab_suite]

V4 = ["203.0.113.0", "203.0.113.1", "203.0.113.2", "203.0.113.3"]
V6 = ["2001:db8:2fe::1", "2001:db8:2fe::2", "2001:db8:2fe::3", "2001:db8:2fe::4"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPod]:
    with lab_pod(tmp_path_factory.mktemp("lab")) as pod:
        pod.wait_ready("r1")
        edges = {pod.nodes["edge1"].address, pod.nodes["edge2"].address}
        for vip in (*V4, *V6):
            pod.wait_routes("r1", vip, edges, timeout=60)
        yield pod


def edges(lab: LabPod) -> set[str]:
    return {lab.nodes["edge1"].address, lab.nodes["edge2"].address}


def node_cli(lab: LabPod, verb: str, node: str) -> None:
    subprocess.run(
        [SIXPOD, "node", verb, "--config", str(lab.nodes[node].config)],
        check=True,
        capture_output=True,
    )


def bgp_paths(lab: LabPod, vip: str) -> dict[str, dict[str, object]]:
    fam = "ipv4" if "." in vip else "ipv6"
    plen = 32 if fam == "ipv4" else 128
    data = lab.tors["r1"].frr.json(f"show bgp {fam} unicast {vip}/{plen} json")
    return {p["nexthops"][0]["ip"]: p for p in data.get("paths", [])}


def test_sessions_and_ecmp_for_every_vip(lab: LabPod) -> None:
    nodes = {n.address for n in lab.nodes.values()}
    spine = {addr.format_ip(u.address) for u in lab.tors["r1"].doc.upstreams}
    assert lab.established("r1") == nodes | spine
    for vip in (*V4, *V6):
        assert lab.routes("r1", vip) == edges(lab)  # IPv6 next hops for IPv4 VIPs too
    for node in lab.nodes.values():
        prefix = addr.format_prefix(node.doc.prefix)
        data = lab.tors["r1"].frr.json(f"show ipv6 route {prefix} json")
        [entry] = data[prefix]
        assert entry["protocol"] == "bgp"
        assert [nh["ip"] for nh in entry["nexthops"]] == [node.address]
    kernel = lab.exec(lab.tors["r1"].ns, "ip", "-j", "route", "show", "203.0.113.0/32")
    [route] = json.loads(kernel)
    assert "nhid" in route


FANOUT = "sixpod_resilient_vip_members{vip=2001:db8:2fe::1}"


def test_ctl_scrapes_every_daemon_at_its_global_address(lab: LabPod) -> None:
    """Where the pod's Prometheus runs (ctl), each announcer and each ToR's tor-resilient
    answer /metrics on the global address their rendered config names."""
    for name, node in lab.nodes.items():
        got = lab.scrape(lab.ctl_ns, f"http://[{node.address}]:{ports.ANNOUNCER}/metrics")
        assert got[f"sixpod_announcer_info{{node={name}}}"] == 1
    for rack, tor in lab.tors.items():
        assert tor.doc.address is not None
        url = f"http://[{addr.format_ip(tor.doc.address)}]:{ports.RESILIENT}/metrics"
        wait_for(
            lambda url=url: lab.scrape(lab.ctl_ns, url).get(FANOUT) == 2,
            timeout=20,
            what=f"{rack}'s tor-resilient metrics from ctl",
        )
        assert lab.scrape(lab.ctl_ns, url)["sixpod_resilient_groups"] >= 1


def test_ipv4_and_ipv6_vips_reachable_from_client(lab: LabPod) -> None:
    assert lab.whoami("203.0.113.0") in {"edge1", "edge2"}
    assert lab.whoami("2001:db8:2fe::3") in {"edge1", "edge2"}


def test_internal_node_announces_only_its_prefix(lab: LabPod) -> None:
    app1 = lab.nodes["app1"]
    for vip in (*V4, *V6):
        assert app1.address not in lab.routes("r1", vip)


def test_failing_check_withdraws_then_rise_restores(lab: LabPod) -> None:
    edge1 = lab.nodes["edge1"]
    other = {lab.nodes["edge2"].address}
    edge1.healthy(False)
    try:
        for vip in (V4[0], V6[0], V4[1]):
            lab.wait_routes("r1", vip, other, timeout=10)
        # The client's packets follow the kernel: tor-resilient's group for the VIP too.
        wait_for(lambda: lab.resilient_paths("r1", V4[1]) == 1, timeout=10, what="group")
        assert lab.whoami(V4[1]) == "edge2"
    finally:
        edge1.healthy(True)
    for vip in (V4[0], V6[0]):
        lab.wait_routes("r1", vip, edges(lab), timeout=10)


def test_drain_is_two_steps(lab: LabPod) -> None:
    edge1 = lab.nodes["edge1"].address
    node_cli(lab, "drain", "edge1")
    try:
        # Step one: still announced, with MED and GRACEFUL_SHUTDOWN, out of the ECMP set.
        lab.wait_routes("r1", V4[0], {lab.nodes["edge2"].address}, timeout=10)
        path = bgp_paths(lab, V4[0]).get(edge1)
        assert path is not None, "step one must keep the route, less preferred"
        assert path["locPrf"] == 0
        assert path["metric"] == 1000
        assert path["community"]["list"] == ["gracefulShutdown"]  # type: ignore[index]
        # Step two: withdrawn after the drain timeout.
        wait_for(lambda: edge1 not in bgp_paths(lab, V4[0]), timeout=10, what="withdrawal")
        assert edge1 not in bgp_paths(lab, V6[0])
    finally:
        node_cli(lab, "undrain", "edge1")
    lab.wait_routes("r1", V4[0], edges(lab), timeout=10)


def test_disable_withdraws_vips_but_keeps_node_prefix(lab: LabPod) -> None:
    node_cli(lab, "disable", "edge2")
    try:
        lab.wait_routes("r1", V6[1], {lab.nodes["edge1"].address}, timeout=10)
        prefix = addr.format_prefix(lab.nodes["edge2"].doc.prefix)
        assert prefix in lab.tors["r1"].frr.json(f"show ipv6 route {prefix} json")
    finally:
        node_cli(lab, "enable", "edge2")
    lab.wait_routes("r1", V6[1], edges(lab), timeout=10)


def node_status(lab: LabPod, node: str) -> tuple[int, dict[str, object]]:
    res = subprocess.run(
        [SIXPOD, "node", "status", "--json", "--config", str(lab.nodes[node].config)],
        capture_output=True,
        text=True,
        check=False,
    )
    return res.returncode, json.loads(res.stdout)


def vip_groups(lab: LabPod, node: str) -> dict[str, dict[str, Any]]:
    """The node's VIP route groups by family, from `sixpod node status --json`."""
    status = node_status(lab, node)[1]
    groups: list[dict[str, Any]] = status["route_groups"]  # type: ignore[assignment]
    return {g["family"]: g for g in groups if g["kind"] == "vip"}


def status_text(lab: LabPod, node: str) -> str:
    res = subprocess.run(
        [SIXPOD, "node", "status", "--config", str(lab.nodes[node].config)],
        capture_output=True,
        text=True,
        check=False,
    )
    return res.stdout


def test_node_status_names_the_failing_check_and_the_drain(lab: LabPod) -> None:
    """On the node, `sixpod node status` says why the VIPs are where they are: which check
    withdrew them (with its result), and that a drain keeps them less preferred until its
    timeout, then withdraws them; the changes name each step."""
    e1 = lab.nodes["edge1"]

    def state(fam: str) -> tuple[str, str]:
        group = vip_groups(lab, "edge1")[fam]
        return group["state"], group["cause"]

    e1.healthy(False)
    try:
        for fam in ("ipv4", "ipv6"):
            wait_for(
                lambda fam=fam: state(fam) == ("withdrawn", "check-failing"),  # type: ignore[misc]
                timeout=10,
                what=f"edge1's {fam} VIPs withdrawn for the check",
            )
        groups = vip_groups(lab, "edge1")
        assert groups["ipv4"]["count"] == len(V4)
        assert groups["ipv4"]["reason"].startswith("degraded check failing: edge (")
        text = status_text(lab, "edge1")
        assert f"routes     {len(V4)} ipv4 VIPs withdrawn: degraded check failing: edge (" in text
        assert "check edge passing -> failing" in text
        assert "routes     node prefix " + addr.format_prefix(e1.doc.prefix) + " announced" in text
    finally:
        e1.healthy(True)
    wait_for(lambda: state("ipv4") == ("announced", "healthy"), timeout=10, what="restored")
    lab.wait_routes("r1", V4[0], edges(lab), timeout=10)

    node_cli(lab, "drain", "edge1")
    try:
        wait_for(lambda: state("ipv4")[1] in ("draining", "drained"), timeout=10, what="drain")
        group = vip_groups(lab, "edge1")["ipv4"]
        if group["cause"] == "draining":  # step one: still announced, less preferred
            assert group["state"] == "announced"
            assert group["until"] is not None
            assert "MED 1000" in group["reason"]
        wait_for(lambda: state("ipv4") == ("withdrawn", "drained"), timeout=10, what="drained")
        text = status_text(lab, "edge1")
        assert f"routes     {len(V6)} ipv6 VIPs withdrawn: drained by the operator" in text
        assert "operator set drain" in text
        assert "state draining -> drained: drain timeout" in text
    finally:
        node_cli(lab, "undrain", "edge1")
    wait_for(lambda: state("ipv4") == ("announced", "healthy"), timeout=10, what="undrained")
    lab.wait_routes("r1", V4[0], edges(lab), timeout=10)


def test_exabgp_cli_shows_the_session(lab: LabPod) -> None:
    """ExaBGP's own CLI works on a node (named pipes under EXABGP_ROOT/run/exabgp here,
    /run/exabgp on a real node): `exabgp-cli show neighbor summary` lists the ToR session."""
    e1 = lab.nodes["edge1"]
    peer = addr.format_ip(e1.doc.uplink.peer.address)
    out = lab.exabgp_cli("edge1", "show", "neighbor", "summary")
    [row] = [line for line in out.splitlines() if line.startswith(peer)]
    assert "established" in row.split()
    # The announcer does not see the CLI's commands or answers: it still runs, converged.
    assert node_status(lab, "edge1")[0] == 0


def test_ipv4_is_not_announced_over_a_session_without_extended_next_hop(lab: LabPod) -> None:
    """A ToR that does not negotiate RFC 8950: the IPv4 VIPs (IPv6 next hop) cannot be carried.
    The announcer refuses them and says so (metrics, `sixpod node status`); IPv6 is unharmed."""
    tor = lab.tors["r1"]
    asn = tor.doc.asn
    e1 = lab.nodes["edge1"]
    ribin = f"show bgp ipv4 unicast neighbors {e1.address} received-routes json"
    tor.frr.vtysh(
        "configure terminal", f"router bgp {asn}", "no neighbor NODES capability extended-nexthop"
    )
    try:
        tor.frr.vtysh("clear bgp *")
        wait_for(
            lambda: (
                lab.metrics("edge1").get("sixpod_announcer_session_family{family=ipv4}") == 0
                and lab.established("r1") >= edges(lab)
            ),
            timeout=30,
            what="edge1 to see a session without extended next hop",
        )
        wait_for(
            lambda: lab.metrics("edge1").get("sixpod_announcer_routes_announced{family=ipv4}") == 0,
            timeout=10,
            what="edge1 to withdraw its IPv4 VIPs",
        )
        metrics = lab.metrics("edge1")
        assert metrics["sixpod_announcer_routes_refused{family=ipv4}"] == len(V4)
        assert metrics["sixpod_announcer_routes_announced{family=ipv6}"] == len(V6) + 1
        wait_for(
            lambda: not tor.frr.json(ribin).get("receivedRoutes"),
            timeout=10,
            what="the ToR to hold no IPv4 route from edge1",
        )
        lab.wait_routes("r1", V6[0], edges(lab), timeout=30)
        code, status = node_status(lab, "edge1")
        assert code == 1
        session = status["session"]
        assert isinstance(session, dict)
        assert (session["up"], session["peer"], session["families"]) == (
            True,
            addr.format_ip(e1.doc.uplink.peer.address),
            {"ipv4": False, "ipv6": True},
        )
        assert session["negotiated"]["nexthop"] == []  # as ExaBGP reported it
        [problem] = status["problems"]  # type: ignore[misc]
        assert "4 ipv4 routes not announced" in problem
        assert "RFC 8950" in problem
    finally:
        tor.frr.vtysh(
            "configure terminal", f"router bgp {asn}", "neighbor NODES capability extended-nexthop"
        )
        tor.frr.vtysh("clear bgp *")
    for vip in (V4[0], V4[3]):
        lab.wait_routes("r1", vip, edges(lab), timeout=30)
    assert node_status(lab, "edge1")[0] == 0
    assert lab.metrics("edge1")["sixpod_announcer_routes_refused{family=ipv4}"] == 0


def descendants(pid: int) -> dict[int, list[str]]:
    """``pid`` and every process below it, with their command lines."""
    out: dict[int, list[str]] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            argv = Path(f"/proc/{p}/cmdline").read_bytes().decode().split("\0")[:-1]
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except FileNotFoundError:
            continue
        out[p] = argv
        todo += [int(c) for c in children]
    return out


def readme_node_commands() -> list[str]:
    """The commands of the README's node setup, as an operator copies them."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Node setup") :]
    start = section.index("```sh\n") + len("```sh\n")
    block = section[start : section.index("```", start)]
    return [line.split(" #")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_node_command_runs_as_written(lab: LabPod, tmp_path: Path) -> None:
    """The README's ExaBGP command, run as root with only the capabilities the README names
    (CAP_NET_ADMIN, group frrvty: its systemd unit's bounds), announces the node's routes, and
    a hung ExaBGP still takes BFD down (vtysh reaches bfdd with those rights); with the
    README's pipes (here under EXABGP_ROOT, not the machine's /run), ExaBGP's CLI works."""
    [exabgp_cmd] = [c for c in readme_node_commands() if " exabgp " in f" {c} "]
    [pipes_cmd] = [c for c in readme_node_commands() if "mkfifo" in c]
    assert not Path("/run/exabgp/exabgp.in").exists(), "ExaBGP would take the machine's pipes"
    root = tmp_path / "root"
    subprocess.run(["sh", "-c", pipes_cmd.replace("/run/exabgp", f"{root}/run/exabgp")], check=True)
    e1 = lab.nodes["edge1"]
    etc = tmp_path / "etc"
    out = tmp_path / "rendered"
    subprocess.run(
        [SIXPOD, "render", str(lab.rendered.parent / "small.yaml"), "--out", str(out),
         "--etc", str(etc), "--sixpod-bin", SIXPOD],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (etc / "edge1").mkdir(parents=True)
    (etc / "edge1" / "exabgp.conf").write_text((out / "nodes/edge1/exabgp.conf").read_text())
    (etc / "edge1" / "announcer.yaml").write_text(e1.config.read_text())  # the lab's checks
    cmd = exabgp_cmd.replace("/etc/sixpod/NAME", str(etc / "edge1"))
    bounds = [
        "setpriv",
        "--bounding-set=-all,+net_admin",
        f"--groups={grp.getgrnam('frrvty').gr_gid}",
    ]
    path = f"{Path(SIXPOD).parent}:{os.environ['PATH']}"  # exabgp from sixpod's venv
    assert e1.exabgp is not None
    lab.box.stop(e1.exabgp)
    other = {lab.nodes["edge2"].address}
    lab.wait_routes("r1", V4[0], other, timeout=30)
    env = {"PATH": path, "EXABGP_ROOT": str(root)}
    proc = lab.box.spawn("edge1-readme", e1.ns, [*bounds, "sh", "-c", cmd], env=env)
    try:
        lab.wait_routes("r1", V4[0], edges(lab), timeout=30)
        lab.wait_routes("r1", V6[0], edges(lab), timeout=30)
        cli = str(Path(SIXPOD).with_name("exabgp-cli"))
        summary = lab.exec(e1.ns, "env", f"EXABGP_ROOT={root}", cli, "show", "neighbor", "summary")
        peer = addr.format_ip(e1.doc.uplink.peer.address)
        assert [line.split()[3] for line in summary.splitlines() if line.startswith(peer)] == [
            "established"
        ]
        tree = descendants(proc.pid)
        [exabgp_pid] = [p for p, a in tree.items() if a[0] != "sh" and "exabgp.conf" in a[-1]]
        [announcer] = [p for p, argv in tree.items() if "announcer" in argv]
        assert lab.routes("r1", V4[3]) == edges(lab)
        status = Path(f"/proc/{announcer}/status").read_text()
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        assert fields["Uid"].split()[0] == "0", "the announcer runs as root"
        assert int(fields["CapEff"], 16) == 1 << 12, "with CAP_NET_ADMIN only"
        # Item 14 with these rights: a hung ExaBGP takes BFD down, and comes back.
        os.kill(exabgp_pid, signal.SIGSTOP)
        try:
            lab.wait_routes("r1", V4[0], other, timeout=5)
            assert last_notification(lab, "edge1") == "Cease/BFD Down"
        finally:
            os.kill(exabgp_pid, signal.SIGCONT)
        lab.wait_routes("r1", V4[0], edges(lab), timeout=60)
        # The announcer dies after a VIP left its config: ExaBGP restarts it (as root, so it
        # works), and the new one withdraws the VIP that ExaBGP still held (the ledger).
        cfg = json.loads(e1.config.read_text())
        cfg["vips"].remove(V4[3])
        (etc / "edge1" / "announcer.yaml").write_text(json.dumps(cfg))
        lab.wait_routes("r1", V4[3], edges(lab), timeout=10)
        os.kill(announcer, signal.SIGKILL)
        wait_for(
            lambda: (
                [p for p, a in descendants(proc.pid).items() if "announcer" in a]
                not in ([], [announcer])
            ),
            timeout=10,
            what="ExaBGP to restart its announcer",
        )
        lab.wait_routes("r1", V4[0], edges(lab), timeout=30)
        lab.wait_routes("r1", V4[3], other, timeout=10)
        assert exabgp_pid in descendants(proc.pid), "the same ExaBGP"
    finally:
        lab.box.stop(proc)
        lab.start_exabgp(e1)
    lab.wait_routes("r1", V4[0], edges(lab), timeout=30)


def test_tor_filters_what_a_node_may_not_announce(lab: LabPod) -> None:
    """edge1 claims edge2's /64 and a prefix outside the pod: the ToR accepts neither."""
    edge1 = lab.nodes["edge1"]
    original = edge1.config.read_text()
    rogue = json.loads(original)
    rogue["node_prefix"] = addr.format_prefix(lab.nodes["edge2"].doc.prefix)
    rogue["vips"] = [*rogue["vips"], "198.51.100.77", "2001:db8:9999::1"]
    assert edge1.exabgp is not None
    lab.box.stop(edge1.exabgp)
    edge1.config.write_text(json.dumps(rogue))
    try:
        lab.start_exabgp(edge1)
        ribin = f"show bgp ipv6 unicast neighbors {edge1.address} received-routes json"

        def received() -> set[str]:
            return set(lab.tors["r1"].frr.json(ribin).get("receivedRoutes", {}))

        wait_for(lambda: "2001:db8:9999::1/128" in received(), timeout=30, what="rogue routes")
        assert addr.format_prefix(lab.nodes["edge2"].doc.prefix) in received()
        rib = lab.tors["r1"].frr.json("show bgp ipv6 unicast json")["routes"]
        assert "2001:db8:9999::1/128" not in rib
        [path] = rib[addr.format_prefix(lab.nodes["edge2"].doc.prefix)]
        assert path["nexthops"][0]["ip"] == lab.nodes["edge2"].address
        v4 = lab.tors["r1"].frr.json("show bgp ipv4 unicast json")["routes"]
        assert "198.51.100.77/32" not in v4
    finally:
        lab.box.stop(edge1.exabgp)
        edge1.config.write_text(original)
        lab.start_exabgp(edge1)
    lab.wait_routes("r1", V4[0], edges(lab), timeout=30)


def test_killed_announcer_leaves_nothing_announced(lab: LabPod) -> None:
    """ExaBGP stops when its API process dies: every route of the node goes with the session.

    A supervisor (systemd, here the lab) starts ExaBGP again; the VIPs return only once the
    fresh announcer's checks pass.
    """
    edge2 = lab.nodes["edge2"]
    assert edge2.exabgp is not None
    pids = subprocess.run(
        ["pgrep", "-P", str(edge2.exabgp.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert pids, "the announcer runs as ExaBGP's child"
    for pid in pids:
        os.kill(int(pid), signal.SIGKILL)
    lab.wait_routes("r1", V4[2], {lab.nodes["edge1"].address}, timeout=20)
    prefix = addr.format_prefix(edge2.doc.prefix)
    wait_for(
        lambda: prefix not in lab.tors["r1"].frr.json(f"show ipv6 route {prefix} json"),
        timeout=10,
        what="the node /64 to leave with the session",
    )
    lab.box.stop(edge2.exabgp)  # what remains of the stopping ExaBGP
    lab.start_exabgp(edge2)
    lab.wait_routes("r1", V4[2], edges(lab), timeout=30)


# How each program in the lab starts a log line: sixpod's daemons (sixpod.logs: RFC 3339
# UTC), FRR and nginx, Redis, ExaBGP (its long format: time of day and PID).
LOG_STAMPS = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
    r"|\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "
    r"|\d+:[XCSM] \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d\.\d{3} "
    r"|\d\d:\d\d:\d\d \d+ +\S"
)


def test_every_daemon_log_line_has_a_timestamp(lab: LabPod) -> None:
    logs = sorted((lab.workdir / "logs").glob("*.log"))
    names = {p.stem for p in logs}
    assert {"edge1-exabgp", "edge1-edge", "r1-tor-bgpd", "ctl-redis"} <= names, names
    assert any(n.endswith("resilient") for n in names), names
    for log in logs:
        if log.stem.endswith("-readme"):  # the README's own command, run as an operator would
            continue
        for line in log.read_text(errors="replace").splitlines():
            assert not line or LOG_STAMPS.match(line), f"{log.name}: {line!r}"


def test_teardown_leaves_nothing(tmp_path: Path) -> None:
    with lab_pod(tmp_path) as pod:
        prefix = pod.prefix
        pids = [p.pid for p in pod.box.processes]
        assert pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not list(Path("/etc/netns").glob(f"{prefix}*"))
    with pytest.raises(LabError):
        pod.exec(pod.client_ns, "true")


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[LabPod]:
    with lab_pod(tmp_path) as pod:
        pod.wait_ready("r1")
        for vip in (V4[0], V6[0]):
            pod.wait_routes("r1", vip, edges(pod), timeout=60)
        yield pod


def test_link_down_leaves_ecmp(fresh: LabPod) -> None:
    fresh.box.link(fresh.nodes["edge1"].ns, "eth0", up=False)
    fresh.wait_routes("r1", V4[0], {fresh.nodes["edge2"].address}, timeout=30)
    wait_for(
        lambda: fresh.nodes["edge1"].address not in fresh.bfd_up("r1"),
        timeout=10,
        what="BFD to see the link down",
    )


def last_notification(lab: LabPod, node: str) -> str:
    address = lab.nodes[node].address
    info = lab.tors["r1"].frr.json(f"show bgp neighbors {address} json")[address]
    return str(info.get("lastNotificationReason", ""))


def test_dead_node_leaves_ecmp_through_bfd(fresh: LabPod) -> None:
    """A silent death (everything the node sends is dropped): BFD notices, not the hold timer."""
    edge1 = fresh.nodes["edge1"]
    drop = "add table inet sx; add chain inet sx out { type filter hook output priority 0; "
    drop += "policy drop; }"
    fresh.exec(edge1.ns, "nft", drop)
    fresh.wait_routes("r1", V4[0], {fresh.nodes["edge2"].address}, timeout=30)
    assert last_notification(fresh, "edge1") == "Cease/BFD Down"
    peers = fresh.tors["r1"].frr.json("show bfd peers json")
    assert [p["status"] for p in peers if p.get("peer") == edge1.address] == ["down"]


def test_all_node_processes_stopped_leaves_ecmp(fresh: LabPod) -> None:
    edge2 = fresh.nodes["edge2"]
    for proc in [p for p in fresh.box.processes if p.ns == edge2.ns]:
        os.kill(proc.pid, signal.SIGKILL)
    fresh.wait_routes("r1", V4[0], {fresh.nodes["edge1"].address}, timeout=30)
    fresh.wait_routes("r1", V6[0], {fresh.nodes["edge1"].address}, timeout=30)


def test_hung_exabgp_leaves_ecmp_through_bfd(fresh: LabPod) -> None:
    """ExaBGP frozen (SIGSTOP), its TCP session and the node's bfdd alive: the announcer sees
    its commands unanswered and shuts BFD down, so the ToR drops the session in BFD time, not
    at the 9 s hold timer. When ExaBGP runs again, BFD and the routes come back."""
    edge1 = fresh.nodes["edge1"]
    assert edge1.exabgp is not None
    hold = float(edge1.doc.bgp.hold_time)
    start = time.monotonic()
    os.kill(edge1.exabgp.pid, signal.SIGSTOP)
    try:
        fresh.wait_routes("r1", V4[0], {fresh.nodes["edge2"].address}, timeout=30)
        took = time.monotonic() - start
        print(f"hung ExaBGP out of ECMP after {took:.2f} s")
        assert last_notification(fresh, "edge1") == "Cease/BFD Down"
        assert took < hold / 3, f"{took:.2f} s: not BFD, the hold timer ({hold:g} s)"
        assert fresh.metrics("edge1")["sixpod_announcer_speaker_alive"] == 0
        assert fresh.metrics("edge1")["sixpod_announcer_bfd_shutdown"] == 1
    finally:
        os.kill(edge1.exabgp.pid, signal.SIGCONT)
    fresh.wait_routes("r1", V4[0], edges(fresh), timeout=60)
    wait_for(lambda: edge1.address in fresh.bfd_up("r1"), timeout=10, what="BFD back up")
    assert fresh.metrics("edge1")["sixpod_announcer_bfd_shutdown"] == 0


@pytest.fixture
def floored(tmp_path: Path) -> Iterator[LabPod]:
    """Floor of 1 node, and a *broken*-severity check each edge node fails when told to."""
    broken = {
        "name": "alive",
        "kind": "command",
        "argv": ["test", "-e", str(tmp_path / "alive")],
        "severity": "broken",
    }
    (tmp_path / "alive").write_text("")
    with lab_pod(tmp_path, floor=1, extra_checks=(broken,)) as pod:
        pod.wait_ready("r1")
        pod.wait_routes("r1", V4[0], edges(pod), timeout=60)
        yield pod


def test_floor_keeps_the_last_node_on_a_degraded_failure(floored: LabPod, tmp_path: Path) -> None:
    lab = floored
    e1, e2 = lab.nodes["edge1"], lab.nodes["edge2"]
    e1.healthy(False)
    lab.wait_routes("r1", V4[0], {e2.address}, timeout=10)  # 1 remains: allowed
    e2.healthy(False)
    wait_for(
        lambda: lab.metrics("edge2").get("sixpod_announcer_floor_held") == 1,
        timeout=10,
        what="the floor to hold edge2's VIPs",
    )
    assert lab.routes("r1", V4[0]) == {e2.address}
    held = vip_groups(lab, "edge2")["ipv4"]  # the node says why it still announces
    assert (held["state"], held["cause"]) == ("announced", "floor")
    assert "degraded check failing: edge (" in held["reason"]
    assert "the floor (at least 1 node) holds" in held["reason"]
    wait_for(lambda: lab.resilient_paths("r1", V4[0]) == 1, timeout=10, what="group")
    assert lab.whoami(V4[0]) == "edge2"
    # A broken check is not subject to the floor.
    (tmp_path / "alive").unlink()
    lab.wait_routes("r1", V4[0], set(), timeout=10)
    (tmp_path / "alive").write_text("")
    e1.healthy(True)
    e2.healthy(True)
    lab.wait_routes("r1", V4[0], edges(lab), timeout=15)


def test_floor_holds_while_redis_is_down(floored: LabPod) -> None:
    lab = floored
    [redis] = [p for p in lab.box.processes if p.name == "ctl-redis"]
    lab.box.stop(redis)
    lab.nodes["edge1"].healthy(False)
    wait_for(
        lambda: lab.metrics("edge1").get("sixpod_announcer_floor_held") == 1,
        timeout=10,
        what="the floor to hold edge1's VIPs without Redis",
    )
    assert lab.routes("r1", V4[0]) == edges(lab), "no permission, no degraded withdrawal"
    lab.nodes["edge1"].healthy(True)
