"""A pod in network namespaces, built from rendered device files (``sixpod render``).

Per spine named in the ToRs' upstreams: a namespace running FRR (zebra, bgpd), cabled to
each ToR's upstream port. Per rack: a ToR namespace running FRR (zebra, bgpd, bfdd). Per node:
a namespace with its uplink veth to the ToR port named in the inventory (the "hardware"), and
in it the product's own ``sixpod node bootstrap --supervise`` on a copy of the node's rendered
directory with the lab's edits (:meth:`LabPod.node_files`): it applies the node's network
config (addresses, routes, sysctls) and supervises its services (FRR bfdd, ExaBGP running
``sixpod announcer``, and on edge nodes the Redis replica, the edge agent with nginx, Razor).
A node's own traffic leaves from the first address of its /64 (on ``lo``), which the pod
routes everywhere, while its uplink address is only known to its ToR. A
``ctl`` namespace wired to every ToR holds the pod's Redis primary (floor coordination, and
the primary the edge replicas follow); a dual-stack ``client`` namespace on the first spine
(on the first ToR in a pod without spines) plays the Internet. No link between namespaces
carries IPv4: IPv4 exists only on the client's link and on the nodes' VIPs (RFC 8950 routes
IPv4 over the IPv6 sessions and next hops).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    ip_network,
)
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

from sixpod import addr, devices
from sixpod.devices import NodeDevice, SpineDevice, TorDevice
from sixpod.inventory.files import write_atomic
from sixpod.lab.fabric import CONFIG as FABRIC_CONFIG
from sixpod.lab.frr import Frr
from sixpod.lab.netns import LabError, Process, Sandbox, close_saved, run, wait_for
from sixpod.monitoring import ports
from sixpod.node.render import route_zone
from sixpod.node.supervisor import STATUS_FILE
from sixpod.routing.resilient.frr import selected_members
from sixpod.tenants import sealed

HEALTH_PORT = 8081  # the edge's health endpoint, [::1]:8081 (sixpod.routing.render.EDGE_HEALTH)
NFT_TABLE = "sixpod_lab"
WHOAMI_PORT = 8080
APP_PORT = 8080  # in containers (their own namespaces: no clash with the nodes' whoami)
JOURNEY_APP = "journey"
JOURNEY_ZONE = "journey.example"
"""The customer zone of the journey's app, hosted by Razor as a DNS provider would: the
apex answered from the app's shard, ``www.journey.example`` a CNAME to the app's route name."""
CONTAINER_GATEWAY = IPv6Address("fe80::1")
"""The node's address on every container link (as routed container networks do)."""
METRICS_PORT = ports.ANNOUNCER
REDIS_PORT = 6379
CONTROLLER_PORT = 8700
CLIENT_V4_CANDIDATES = ("198.51.100.252/30", "203.0.113.252/30", "100.64.0.0/30")


@dataclass
class LabNode:
    name: str
    ns: str
    doc: NodeDevice
    dir: Path
    edge: bool
    run: Path | None = None
    """The bootstrap's ``--run-dir`` (reachable by the ``frr`` user): effective configs,
    FRR's vty sockets, ExaBGP's CLI pipes, ``supervisor.json``."""
    boot: Process | None = None
    """``sixpod node bootstrap --supervise``: the node's only process besides the lab's test
    app; every daemon of the node is its child (:meth:`LabPod.service_pid`)."""
    frr: Frr | None = None
    """vtysh on the node's bfdd (started by the bootstrap, not by this object)."""
    exabgp: Process | None = None
    """An ExaBGP the lab started itself (:meth:`LabPod.start_exabgp`, for benchmarks)."""
    whoami: Process | None = None
    """The lab's test app on edge nodes (:data:`WHOAMI_PORT`): not node setup."""

    @property
    def address(self) -> str:
        return addr.format_ip(self.doc.uplink.address)

    @property
    def etc(self) -> Path:
        """The copy of the node's rendered directory the bootstrap runs on."""
        return self.dir / "etc"

    @property
    def config(self) -> Path:
        """The announcer's effective config (what ``sixpod node drain --config`` takes)."""
        return (self.run or self.etc) / "announcer.yaml"

    @property
    def razor_config(self) -> Path:
        return (self.run or self.etc) / "razor.yaml"

    def supervisor_state(self) -> dict[str, Any]:
        """The bootstrap's ``supervisor.json``: the supervisor's pid, each service's pid,
        restarts and last exit (empty before the bootstrap started its services)."""
        if self.run is None:
            return {}
        try:
            state: dict[str, Any] = json.loads((self.run / STATUS_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return state

    def service_pid(self, service: str) -> int | None:
        """The pid of a supervised service (``zebra``, ``bfdd``, ``exabgp``, ``redis``,
        ``edge``, ``razor``); None when it is not running. The drills signal daemons by it."""
        pid = self.supervisor_state().get("services", {}).get(service, {}).get("pid")
        return pid if isinstance(pid, int) else None

    def healthy(self, ok: bool) -> None:
        """Let the edge's health endpoint answer (ok), or make every connection to it refused
        (an nftables rule in the node's namespace, as a crashed nginx would look to the
        announcer's check); idempotent."""
        rules = f"add table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n"
        if not ok:
            rules += (
                f"table inet {NFT_TABLE} {{\n"
                "  chain input {\n"
                "    type filter hook input priority 0; policy accept;\n"
                f"    ip6 daddr ::1 tcp dport {HEALTH_PORT} reject with tcp reset\n"
                "  }\n"
                "}\n"
            )
        run(["ip", "netns", "exec", self.ns, "nft", "-f", "-"], stdin=rules)


@dataclass
class LabContainer:
    """A container: a namespace with one address of its node's /64, routed by the node,
    running the lab's HTTP app (``whoami http``) on :data:`APP_PORT`."""

    name: str
    node: str
    ns: str
    address: IPv6Address
    proc: Process

    @property
    def endpoint(self) -> str:
        """``[address]:port``, as the tenants API takes an endpoint."""
        return addr.format_endpoint(addr.Endpoint(self.address, APP_PORT))


@dataclass
class LabTor:
    name: str
    ns: str
    doc: TorDevice
    frr: Frr
    resilient: Process | None = None


@dataclass
class LabSpine:
    name: str
    ns: str
    doc: SpineDevice
    frr: Frr


@dataclass
class LabPod:
    """Start with :meth:`up`; always :meth:`down` (it removes everything it created)."""

    rendered: Path
    workdir: Path
    prefix: str = field(default_factory=lambda: f"sx{secrets.token_hex(3)}-")
    floor: int | None = None
    """The floor's min_nodes; None: pod.yaml's (0: off)."""
    check_interval: float | None = 0.2  # None keeps the rendered timing (and its rise/fall)
    rise: int = 2
    fall: int = 3
    extra_checks: tuple[dict[str, Any], ...] = ()
    resilient: bool = True
    drain_timeout: float = 2.0
    speaker_timeout: float | None = None
    """Seconds an ExaBGP may leave a command unanswered before the announcer calls it hung
    (None: the rendered default, 0.25 s). A big pod's daemons oversubscribe this machine's
    cores many times over: an ExaBGP not scheduled for a quarter second is not hung there."""
    check_timeout: float | None = None
    """Each health check's timeout (None: as rendered, or 1.5 s with ``check_interval``);
    for the same reason."""
    monitoring: bool = True
    """Prometheus in ctl and the exporters it scrapes (:mod:`sixpod.lab.monitoring`)."""
    box: Sandbox = field(init=False)
    tors: dict[str, LabTor] = field(default_factory=dict)
    nodes: dict[str, LabNode] = field(default_factory=dict)
    spines: dict[str, LabSpine] = field(default_factory=dict)
    client_ns: str = ""
    client_v4: IPv4Interface | None = None
    client_v6: IPv6Interface | None = None
    ctl_ns: str = ""
    ctl_address: str = ""
    redis_password: str = field(default_factory=lambda: secrets.token_hex(16))
    lock: Path | None = None
    """The pod's ``pod.lock``: when given, the tenants controller runs in ctl."""
    saved_state: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.box = Sandbox(prefix=self.prefix, workdir=self.workdir)
        self._taken: dict[str, set[str]] = {}

    # -- bring-up -------------------------------------------------------------------------

    def up(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.box.journal = self.workdir / self.JOURNAL
        tor_docs = [_load(p, TorDevice) for p in sorted(self.rendered.glob("tors/*/device.json"))]
        node_docs = [
            _load(p, NodeDevice) for p in sorted(self.rendered.glob("nodes/*/device.json"))
        ]
        spine_docs = [
            _load(p, SpineDevice) for p in sorted(self.rendered.glob("spines/*/device.json"))
        ]
        if not tor_docs:
            raise LabError(f"{self.rendered}: no rendered ToRs (run `sixpod render` first)")
        for doc in tor_docs:
            ns = self.box.netns(f"t-{doc.rack}", router=True)
            frr = Frr(
                self.box,
                ns,
                doc.name,
                self.rendered / "tors" / doc.name / "frr.conf",
                ("bgpd", "bfdd"),
            )
            self.tors[doc.rack] = LabTor(doc.name, ns, doc, frr)
        for sd in spine_docs:
            ns = self.box.netns(f"s-{sd.name}", router=True)
            conf = self.rendered / "spines" / sd.name / "frr.conf"
            self.spines[sd.name] = LabSpine(
                sd.name, ns, sd, Frr(self.box, ns, sd.name, conf, ("bgpd",))
            )
            for d in sd.downlinks:
                tor = self.tors[d.rack]
                mtu = next((p.mtu for p in tor.doc.ports if p.name == d.tor_port), 1500)
                self.box.veth(tor.ns, d.tor_port, ns, d.port, mtu=mtu)
        for nd in node_docs:
            ns = self.box.netns(f"n-{nd.name}")
            edge = bool(nd.vips.all)
            node = LabNode(nd.name, ns, nd, self.workdir / "nodes" / nd.name, edge)
            node.dir.mkdir(parents=True, exist_ok=True)
            self.nodes[nd.name] = node
            tor = self.tors[nd.rack]
            # the cable only (at the rendered MTU, as the NIC would come): the bootstrap sets
            # the addresses, the routes and the sysctls
            self.box.veth(tor.ns, nd.uplink.port, ns, "eth0", mtu=nd.uplink.mtu)
        self._attach_ctl()
        if self.spines:
            spine = next(iter(self.spines.values()))
            self._attach_client(spine.ns, f"swp{len(spine.doc.downlinks) + 1}", spine.doc.vips)
        else:
            tor = self.tors[tor_docs[0].rack]
            self._attach_client(tor.ns, self._free_port(tor, set()), tor.doc.vips)
        for spine in self.spines.values():
            spine.frr.start()
        for tor in self.tors.values():
            tor.frr.start()
            if self.resilient:
                self.start_resilient(tor)
        self._start_redis_primary()
        if self.lock is not None:
            self._make_seal_keys()
            self._start_controller(self.lock)
        for node in self.nodes.values():
            self._start_node(node, wait=False)
        for node in self.nodes.values():
            self._wait_booted(node)
        from sixpod.lab.fabric import start_lldp  # lldpd everywhere; WORKDIR/fabric.yaml

        start_lldp(self)
        if self.monitoring:
            self._start_monitoring()

    def _start_monitoring(self) -> None:
        from sixpod.lab.monitoring import start_monitoring  # it reads LabPod's parts

        start_monitoring(self)

    @staticmethod
    def own_address(doc: NodeDevice) -> IPv6Address | None:
        """The node's own address: the first of the /64 it announces (None if it announces
        none). Its containers take others of the same /64."""
        return doc.prefixes[0].network_address + 1 if doc.prefixes else None

    def start_container(self, node: str, index: int, box: Sandbox | None = None) -> LabContainer:
        """Container ``index`` (from 1) on ``node``: address ``<node /64>::1<index:02x>``, a
        veth to the node (the node's end is ``c<index>`` with :data:`CONTAINER_GATEWAY`, and
        a host route to the container), the HTTP app started. ``box`` holds what is created
        (the pod's own by default; ``sixpod lab test`` passes its own and closes it)."""
        n = self.nodes[node]
        if not n.doc.prefixes:
            raise LabError(f"{node} announces no /64: it cannot host containers")
        box = box or self.box
        name = f"{node}-c{index}"
        ip = n.doc.prefixes[0].network_address + 0x100 + index
        ns = box.netns(f"c-{name}")
        link = f"c{index}"
        box.veth(n.ns, link, ns, "eth0", mtu=n.doc.uplink.mtu)
        box.addr(n.ns, link, IPv6Interface((CONTAINER_GATEWAY, 64)))
        box.addr(ns, "eth0", IPv6Interface((ip, 128)))
        box.route(n.ns, ip_network((ip, 128)), dev=link)
        box.route(ns, ip_network("::/0"), via=CONTAINER_GATEWAY, dev="eth0")
        run(["ip", "netns", "exec", n.ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"])
        argv = [sys.executable, "-m", "sixpod.lab.whoami", "http", name, node, str(APP_PORT)]
        proc = box.spawn(name, ns, argv)
        wait_for(
            lambda: not proc.alive() or self.reach(n.ns, str(ip), APP_PORT) == "open",
            timeout=20,
            interval=0.1,
            what=f"container {name} to listen",
        )
        if not proc.alive():
            raise LabError(f"container {name} exited; see {proc.log}")
        return LabContainer(name, node, ns, ip, proc)

    def start_resilient(self, tor: LabTor) -> None:
        cfg = json.loads(
            _strip_comment((self.rendered / "tors" / tor.name / "resilient.yaml").read_text())
        )
        cfg.update(vty_socket=str(tor.frr.rundir), interval=0.5)
        path = self.workdir / f"{tor.name}-resilient.yaml"
        path.write_text(json.dumps(cfg, indent=2) + "\n")
        sixpod_bin = str(Path(sys.executable).with_name("sixpod"))
        tor.resilient = self.box.spawn(
            f"{tor.name}-resilient", tor.ns, [sixpod_bin, "tor-resilient", "--config", str(path)]
        )

    def _free_port(self, tor: LabTor, taken: set[str]) -> str:
        used = {n.port for n in tor.doc.neighbors} | {u.port for u in tor.doc.upstreams}
        used |= self._taken.get(tor.name, set())
        for p in tor.doc.ports:
            if p.name not in used and p.name not in taken:
                return p.name
        raise LabError(f"{tor.name}: no free port for the lab's client and ctl namespaces")

    def _attach_ctl(self) -> None:
        """ctl holds the pod's Redis primary on the aggregate's reserved first /64.

        It has a link to every ToR (a /112 of the reserved /64 each) and routes each rack's
        uplink /64s back through that rack's ToR, so every node reaches it.
        """
        self.ctl_ns = self.box.netns("ctl")
        first = next(iter(self.tors.values()))
        net = first.doc.aggregate
        infra = int(net.network_address)
        ctl = ip_network((infra, 64)).network_address + 2
        self.ctl_address = str(ctl)
        self.box.addr(self.ctl_ns, "lo", IPv6Interface(ctl))
        for k, tor in enumerate(self.tors.values()):
            port = self._free_port(tor, set())
            self._taken.setdefault(tor.name, set()).add(port)
            link = ip_network((infra + ((k + 1) << 16), 112))
            tor_end, ctl_end = link.network_address + 1, link.network_address + 2
            self.box.veth(tor.ns, port, self.ctl_ns, f"tor{k}")
            self.box.addr(tor.ns, port, IPv6Interface((tor_end, 112)))
            self.box.route(tor.ns, ip_network(ctl), via=ctl_end)
            self.box.addr(self.ctl_ns, f"tor{k}", IPv6Interface((ctl_end, 112)))
            for n in tor.doc.neighbors:
                self.box.route(self.ctl_ns, n.link, via=tor_end)
                for p in n.prefixes:  # the node's own address and its containers
                    self.box.route(self.ctl_ns, p, via=tor_end)

    def _attach_client(self, ns: str, port: str, vips: devices.Vips) -> None:
        """The dual-stack client on ``port`` of the router ``ns``: the only IPv4 link."""
        self.client_ns = self.box.netns("client")
        self.box.veth(ns, port, self.client_ns, "eth0")
        vip_nets = [ip_network(f"{v}/32") for v in vips.ipv4]
        for cand in CLIENT_V4_CANDIDATES:
            net = IPv4Network(cand)
            if not any(net.overlaps(v) for v in vip_nets):
                break
        hosts = list(net.hosts())
        router_v4, self.client_v4 = hosts[0], IPv4Interface(f"{hosts[1]}/{net.prefixlen}")
        v6 = ip_network("2001:db8:ffff:ff00::/64")
        self.client_v6 = IPv6Interface(f"{v6.network_address + 2}/64")
        router_v6 = v6.network_address + 1
        self.box.addr(
            ns,
            port,
            IPv4Interface((router_v4, net.prefixlen)),
            IPv6Interface((router_v6, 64)),
        )
        self.box.addr(self.client_ns, "eth0", self.client_v4, self.client_v6)
        self.box.route(self.client_ns, ip_network("0.0.0.0/0"), via=router_v4)
        self.box.route(self.client_ns, ip_network("::/0"), via=router_v6)

    def _redis_argv(self, port_dir: Path, bind: str) -> list[str]:
        return [
            "redis-server",
            "--port", str(REDIS_PORT),
            "--bind", bind,
            "--dir", str(port_dir),
            "--save", "",
            "--appendonly", "no",
            "--requirepass", self.redis_password,
            "--masterauth", self.redis_password,
            "--repl-diskless-sync", "yes",
            "--repl-diskless-sync-delay", "0",
            "--daemonize", "no",
            "--protected-mode", "no",
        ]  # fmt: skip

    def _start_redis_primary(self) -> None:
        d = self.workdir / "ctl-redis"
        d.mkdir(parents=True, exist_ok=True)
        self.box.spawn("ctl-redis", self.ctl_ns, self._redis_argv(d, f"{self.ctl_address} ::1"))

    @property
    def seal_dir(self) -> Path:
        """The pod's key-sealing pair (``sixpod cert keygen``): the controller seals uploaded
        private keys with the public half, the edges open them with the private half."""
        return self.workdir / "seal"

    def _make_seal_keys(self) -> None:
        private, public = sealed.generate()
        self.seal_dir.mkdir(parents=True, exist_ok=True)
        for name, data, mode in (
            ("edge-seal.key", private, 0o600),
            ("edge-seal.pub", public, 0o644),
        ):
            path = self.seal_dir / name
            path.unlink(missing_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)

    @property
    def controller_dir(self) -> Path:
        return self.workdir / "ctl-controller"

    def _start_controller(self, lock: Path) -> None:
        """The tenants controller in ctl: SQLite in the workdir, publishing to ctl's Redis."""
        d = self.controller_dir
        d.mkdir(parents=True, exist_ok=True)
        write_atomic(d / "token", secrets.token_hex(16) + "\n")  # 0600: secrets
        write_atomic(d / "redis.pass", self.redis_password + "\n")
        config = {
            "listen": [
                f"[{self.ctl_address}]:{CONTROLLER_PORT}",
                f"[::1]:{CONTROLLER_PORT}",
            ],
            "token_file": str(d / "token"),
            "database": f"sqlite:///{d / 'tenants.db'}",
            "lock": str(lock.resolve()),
            "redis": {"address": f"[::1]:{REDIS_PORT}", "password_file": str(d / "redis.pass")},
            "cert_seal_key": str(self.seal_dir / "edge-seal.pub"),
        }
        path = d / "controller.yaml"
        path.write_text(json.dumps(config, indent=2) + "\n")
        sixpod_bin = str(Path(sys.executable).with_name("sixpod"))
        self.box.spawn(
            "ctl-controller", self.ctl_ns, [sixpod_bin, "controller", "--config", str(path)]
        )

    def api(self, *args: str) -> str:
        """Run one ``sixpod`` API verb in ctl against the lab's controller; its stdout."""
        sixpod_bin = str(Path(sys.executable).with_name("sixpod"))
        return self.exec(
            self.ctl_ns,
            sixpod_bin,
            *args,
            "--api",
            f"http://[::1]:{CONTROLLER_PORT}",
            "--token-file",
            str(self.controller_dir / "token"),
        )

    def publisher_active(self) -> bool:
        try:
            return bool(
                json.loads(self.api("publisher", "status", "--json"))["publisher"]["active"]
            )
        except (LabError, ValueError, KeyError, TypeError):
            return False

    def replica_field(self, node: str, key: str, name: str) -> str:
        """``HGET key name`` on a node's Redis replica (empty when absent)."""
        n = self.nodes[node]
        return self.exec(
            n.ns,
            "redis-cli",
            "-h",
            "::1",
            "-p",
            str(REDIS_PORT),
            "--no-auth-warning",
            "-a",
            self.redis_password,
            "hget",
            key,
            name,
        ).strip()

    def node_files(self, node: LabNode) -> Path:
        """Copy the node's rendered directory to :attr:`LabNode.etc` and make the lab's edits,
        the only ones: faster check timers (``check_interval``, ``rise``, ``fall``), the
        ``extra_checks`` on edge nodes, the drain timeout, the floor (``floor``, else
        pod.yaml's) at the lab's Redis primary in ctl; one nginx worker, faster edge checks,
        small TLS tables (HTTP only in a lab without the controller); Razor's customer zone
        of the journey. Everything else (the network config, bfdd, ExaBGP, the Redis replica,
        Razor's zone and pool) is what ``sixpod render`` wrote. Returns the copy."""
        rendered = self.rendered / "nodes" / node.name
        etc = node.etc
        shutil.rmtree(etc, ignore_errors=True)
        shutil.copytree(rendered, etc)
        password = node.dir / "redis.pass"

        def edit(name: str, change: Callable[[dict[str, Any]], None]) -> None:
            path = etc / name
            text = path.read_text()
            head = "".join(f"{x}\n" for x in text.splitlines() if x.startswith("#"))
            data: dict[str, Any] = json.loads(_strip_comment(text))
            change(data)
            path.write_text(f"{head}# edited by the lab\n{json.dumps(data, indent=2)}\n")

        def announcer(cfg: dict[str, Any]) -> None:
            cfg["checks"] += [dict(c) for c in self.extra_checks] if node.edge else []
            if self.check_interval is not None:
                for check in cfg["checks"]:
                    check.update(
                        interval=self.check_interval, fast_interval=min(0.1, self.check_interval)
                    )
                    check.update(rise=self.rise, fall=self.fall, timeout=1.5)
            cfg["drain_timeout"] = self.drain_timeout
            if self.speaker_timeout is not None:
                cfg.setdefault("speaker", {})["timeout"] = self.speaker_timeout
            if self.check_timeout is not None:
                for check in cfg["checks"]:
                    check["timeout"] = self.check_timeout
            pods = cfg.get("floor", {}).get("min_nodes", 0)
            min_nodes = pods if self.floor is None else self.floor
            if min_nodes:  # the lab's own Redis primary, in ctl, whatever pod.yaml names
                cfg["floor"] = {
                    "min_nodes": min_nodes,
                    "redis": f"[{self.ctl_address}]:{REDIS_PORT}",
                    "password_file": str(password),
                    "key": f"sixpod:floor:{node.doc.pod}",
                    "ttl": 3.0,
                    "retry": 0.5,
                }
            else:
                cfg.pop("floor", None)

        def edge(cfg: dict[str, Any]) -> None:
            cfg.update(workers=1, check_interval=0.2, stats_interval=1.0)
            if self.lock is not None and (self.seal_dir / "edge-seal.key").exists():
                cfg["tls"].update(certs_dict="32m", worker_cache=1000)  # the controller seals
            else:
                cfg.pop("tls", None)

        def razor(cfg: dict[str, Any]) -> None:
            cfg["customer_zones"] = [{"name": JOURNEY_ZONE, "app": JOURNEY_APP}]

        edit("announcer.yaml", announcer)
        if (etc / "edge.yaml").exists():
            edit("edge.yaml", edge)
        if (etc / "razor.yaml").exists():
            edit("razor.yaml", razor)
        return etc

    def _start_node(self, node: LabNode, *, wait: bool = True) -> None:
        """The node's rendered files (with the lab's edits), then ``sixpod node bootstrap
        --supervise`` on them inside the node's namespace, one process; and on edge nodes
        the lab's test app (whoami)."""
        etc = self.node_files(node)
        write_atomic(node.dir / "redis.pass", self.redis_password + "\n")
        if node.run is None:
            node.run = self.box.shared_dir(f"run-{node.name}")  # the frr user reaches it
        (node.run / STATUS_FILE).unlink(missing_ok=True)
        node.frr = Frr(self.box, node.ns, node.name, etc / "bfdd.conf", (), rundir=node.run / "frr")
        sixpod_bin = str(Path(sys.executable).with_name("sixpod"))
        argv = [
            sixpod_bin, "node", "bootstrap", "--dir", str(etc), "--supervise",
            "--run-dir", str(node.run),
            "--state-dir", str(node.dir / "state"),
            "--log-dir", str(node.dir / "log"),
            "--redis-password-file", str(node.dir / "redis.pass"),
            "--redis-primary", f"[{self.ctl_address}]:{REDIS_PORT}",
        ]  # fmt: skip
        seal_key = self.seal_dir / "edge-seal.key"
        if self.lock is not None and seal_key.exists():
            argv += ["--edge-seal-key", str(seal_key)]
        node.boot = self.box.spawn(f"{node.name}-node", node.ns, argv)
        if node.edge and (node.whoami is None or not node.whoami.alive()):
            node.whoami = self.box.spawn(
                f"{node.name}-whoami",
                node.ns,
                [sys.executable, "-m", "sixpod.lab.whoami", "serve", node.name, str(WHOAMI_PORT)],
            )
        if wait:
            self._wait_booted(node)

    def _wait_booted(self, node: LabNode) -> None:
        """The bootstrap applied the network config and its supervisor started (its
        ``supervisor.json``); a bootstrap that exits is an error naming its log."""
        boot, run_dir = node.boot, node.run
        assert boot is not None
        assert run_dir is not None
        wait_for(
            lambda: not boot.alive() or (run_dir / STATUS_FILE).exists(),
            timeout=60,
            interval=0.1,
            what=f"{node.name}'s sixpod node bootstrap",
        )
        if not boot.alive():
            raise LabError(f"{node.name}: sixpod node bootstrap exited; see {boot.log}")

    def service_pid(self, node: str, service: str) -> int | None:
        """The pid of one of a node's supervised services (:meth:`LabNode.service_pid`)."""
        return self.nodes[node].service_pid(service)

    def route_zone(self) -> str:
        """The pod's route zone (a customer CNAMEs to ``<app>.<zone>``), as rendered."""
        return route_zone(next(iter(self.nodes.values())).doc)

    def nameserver(self, family: int = 6) -> str:
        """The address the client asks Razor at: the pod's first VIP of ``family`` (every
        edge node answers DNS on port 53 of every VIP it announces)."""
        vips = next(iter(self.tors.values())).doc.vips
        return addr.format_ip((vips.ipv6 if family == 6 else vips.ipv4)[0])

    def wait_edges(self, *, timeout: float = 60) -> None:
        """Every edge node's health endpoint answers 200 (nginx up, tenant state loaded)."""
        for node in self.nodes.values():
            if node.edge:
                wait_for(
                    lambda node=node: self.edge_health(node.name) == 200,  # type: ignore[misc]
                    timeout=timeout,
                    interval=0.2,
                    what=f"{node.name}'s edge to be healthy",
                )

    def edge_health(self, node: str) -> int:
        """The status code of the edge's health endpoint (0: no answer)."""
        n = self.nodes[node]
        out = self.exec(
            n.ns,
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", "-g",
            f"http://[::1]:{HEALTH_PORT}/healthz",
            check=False,
        )  # fmt: skip
        return int(out.strip() or 0)

    def start_exabgp(self, node: LabNode, config: Path | None = None) -> None:
        """(Re)start the node's ExaBGP, with its own config or ``config``, and its own CLI
        pipes under the node's directory (``EXABGP_ROOT``; see :meth:`exabgp_cli`)."""
        exabgp = str(Path(sys.executable).with_name("exabgp"))
        pipes = node.dir / "run" / "exabgp"
        pipes.mkdir(parents=True, exist_ok=True)
        for end in ("in", "out"):
            if not (pipes / f"exabgp.{end}").is_fifo():
                os.mkfifo(pipes / f"exabgp.{end}", 0o600)
        node.exabgp = self.box.spawn(
            f"{node.name}-exabgp",
            node.ns,
            [exabgp, str(config or node.dir / "exabgp.conf")],
            env={
                "EXABGP_ROOT": str(node.dir),
                "exabgp_api_cli": "true",
                "exabgp_daemon_drop": "false",
                "exabgp_log_destination": "stdout",
                "exabgp_log_short": "false",  # each line with its time of day and PID
                "exabgp_tcp_delay": "0",
            },
        )

    # -- observation ----------------------------------------------------------------------

    def exabgp_cli(self, node: str, *command: str) -> str:
        """ExaBGP's own CLI (``exabgp-cli``) against the node's ExaBGP: its output."""
        cli = str(Path(sys.executable).with_name("exabgp-cli"))
        lab = self.nodes[node]
        root = f"EXABGP_ROOT={(lab.run or lab.dir) / 'exabgp'}"  # the bootstrap's
        return run(["ip", "netns", "exec", lab.ns, "env", root, cli, *command], timeout=20)

    def all_routes(self, rack: str) -> dict[str, set[str]]:
        """Every BGP route FRR selected on a ToR (both families) → its active next hops."""
        out: dict[str, set[str]] = {}
        for cmd in ("show ip route bgp json", "show ipv6 route bgp json"):
            for prefix, entries in self.tors[rack].frr.json(cmd).items():
                out[prefix] = selected_hops(prefix, entries)
        return out

    def routes(self, rack: str, vip: str) -> set[str]:
        """Next hops the ToR's FRR has selected for ``vip`` (from FRR's JSON, not the kernel)."""
        return _frr_routes(self.tors[rack].frr, vip)

    def spine_routes(self, spine: str, target: str) -> set[str]:
        """The ToRs (by name) the spine's FRR has selected as next hops for a VIP or a
        prefix (FRR picks their link-local addresses: the port says which ToR)."""
        key, cmd = _route_key(target)
        entries = self.spines[spine].frr.json(f"{cmd} {key} json").get(key, [])
        return self._spine_tors(spine, key, entries)

    def spine_all_routes(self, spine: str) -> dict[str, set[str]]:
        """Every BGP route the spine's FRR selected (both families) → its ToRs, by name."""
        out: dict[str, set[str]] = {}
        for cmd in ("show ip route bgp json", "show ipv6 route bgp json"):
            for prefix, entries in self.spines[spine].frr.json(cmd).items():
                out[prefix] = self._spine_tors(spine, prefix, entries)
        return out

    def _spine_tors(self, spine: str, prefix: str, entries: object) -> set[str]:
        by_port = {d.port: d.tor for d in self.spines[spine].doc.downlinks}
        members, _ = selected_members(addr.parse_prefix(prefix), entries)
        return {by_port.get(m.dev, m.dev) for m in members}

    def established(self, rack: str) -> set[str]:
        """Neighbors of a ToR with an established session."""
        return _established(self.tors[rack].frr)

    def spine_established(self, spine: str) -> set[str]:
        """ToRs (their link addresses) with an established session to the spine."""
        return _established(self.spines[spine].frr)

    def wait_spine(self, spine: str, *, timeout: float = 60) -> None:
        """Every ToR's session to the spine is established."""
        want = {addr.format_ip(d.address) for d in self.spines[spine].doc.downlinks}
        wait_for(
            lambda: self.spine_established(spine) >= want,
            timeout=timeout,
            what=f"BGP between {spine} and every ToR",
        )

    def bfd_up(self, rack: str) -> set[str]:
        """Peers of a ToR whose BFD session is up."""
        peers = self.tors[rack].frr.json("show bfd peers json")
        return {str(p["peer"]) for p in peers if p.get("status") == "up"}

    def wait_ready(self, rack: str, *, timeout: float = 60) -> None:
        """Every node of the rack has an established session and a BFD session up."""
        want = {n.address for n in self.nodes.values() if n.doc.rack == rack}
        wait_for(
            lambda: self.established(rack) >= want and self.bfd_up(rack) >= want,
            timeout=timeout,
            what=f"BGP and BFD with every node of {rack}",
        )

    def wait_routes(self, rack: str, vip: str, want: set[str], *, timeout: float = 30) -> None:
        try:
            wait_for(lambda: self.routes(rack, vip) == want, timeout=timeout, what="routes")
        except LabError:
            now = sorted(self.routes(rack, vip))
            raise LabError(
                f"{self.tors[rack].name}: {vip} via {now}, wanted {sorted(want)} "
                f"within {timeout:g} s"
            ) from None

    def whoami(self, vip: str) -> str:
        """Connect from the client to ``vip`` and return the node that answers."""
        out = self.exec(
            self.client_ns,
            sys.executable,
            "-c",
            "import socket,sys;"
            "s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=2);"
            "s.sendall(b'?\\n');print(s.recv(64).decode().strip())",
            vip,
            str(WHOAMI_PORT),
        )
        return out.strip()

    def reach(self, ns: str, host: str, port: int) -> str:
        """Open a TCP connection from ``ns`` (from the address the kernel picks there):
        ``open``, ``refused`` (the host answered with a reset: it is reachable both ways), or
        ``unreachable`` (no answer within 3 s, or an ICMP error)."""
        return self.exec(
            ns,
            sys.executable,
            "-c",
            "import socket,sys\n"
            "try:\n"
            " socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=3).close()\n"
            " print('open')\n"
            "except ConnectionRefusedError:\n"
            " print('refused')\n"
            "except OSError:\n"
            " print('unreachable')",
            host,
            str(port),
        ).strip()

    def resilient_paths(self, rack: str, vip: str, table: int = 1000) -> int:
        """How many members the kernel's resilient group for ``vip`` has (0: no helper route)."""
        ns = self.tors[rack].ns
        fam = "-6" if ":" in vip else "-4"
        try:
            routes = json.loads(
                run(["ip", fam, "-n", ns, "-j", "route", "show", "table", str(table), vip]) or "[]"
            )
        except LabError:
            return 0
        if not routes or "nhid" not in routes[0]:
            return 0
        [group] = json.loads(
            run(["ip", "-n", ns, "-j", "nexthop", "show", "id", str(routes[0]["nhid"])])
        )
        if group.get("type") != "resilient":
            return 0
        return len(group.get("group", []))

    def metrics(self, node: str) -> dict[str, float]:
        """The node announcer's Prometheus samples, as ``name{labels}`` → value."""
        return self.scrape(self.nodes[node].ns, f"http://[::1]:{METRICS_PORT}/metrics")

    def scrape(self, ns: str, url: str) -> dict[str, float]:
        """The Prometheus samples at ``url``, fetched from namespace ``ns`` (``ctl`` reaches
        every node and ToR at its global address, as the pod's Prometheus does)."""
        text = self.exec(
            ns,
            sys.executable,
            "-c",
            "import urllib.request,sys;"
            "sys.stdout.write(urllib.request.urlopen(sys.argv[1],timeout=2).read().decode())",
            url,
        )
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return out

    def flows(self, vip: str, count: int) -> Flows:
        """``count`` long-lived TCP flows from the client to ``vip`` (close with ``close()``)."""
        return Flows(self.client_ns, vip, count)

    def exec(self, ns: str, *argv: str, timeout: float = 30, check: bool = True) -> str:
        """A command's stdout, run in ``ns``; without ``check`` its exit status is ignored."""
        return run(["ip", "netns", "exec", ns, *argv], timeout=timeout, check=check)

    # -- persistence (``sixpod lab up`` exits; ``status``/``test``/``down`` come later) ----

    STATE = "lab.json"
    JOURNAL = "lab.box.json"
    """What ``up`` has created so far, kept current while it builds (see Sandbox.journal)."""

    def save(self) -> Path:
        state = {
            "rendered": str(self.rendered),
            "box": self.box.saved(),
            "tors": {
                r: {"name": t.name, "ns": t.ns, "vty": str(t.frr.rundir)}
                for r, t in self.tors.items()
            },
            "nodes": {
                n: {"ns": x.ns, "dir": str(x.dir), "edge": x.edge, "run": x.run and str(x.run)}
                for n, x in self.nodes.items()
            },
            "spines": {n: {"ns": x.ns, "vty": str(x.frr.rundir)} for n, x in self.spines.items()},
            "client_ns": self.client_ns,
            "ctl_ns": self.ctl_ns,
            "ctl_address": self.ctl_address,
            "redis_password": self.redis_password,
            "lock": None if self.lock is None else str(self.lock),
            "monitoring": self.monitoring,
        }
        path = self.workdir / self.STATE
        write_atomic(path, json.dumps(state, indent=2) + "\n")  # 0600: the Redis password
        return path

    @classmethod
    def attach(cls, workdir: Path) -> LabPod:
        """A view of a lab started by another process (to observe it, or take it down)."""
        state = cls._read_state(workdir)
        rendered = Path(state["rendered"])
        pod = cls(rendered=rendered, workdir=workdir, prefix=state["box"]["prefix"])
        pod.saved_state = state
        for rack, t in state["tors"].items():
            tor_doc = _load(rendered / "tors" / t["name"] / "device.json", TorDevice)
            frr = Frr(pod.box, t["ns"], t["name"], rendered, (), rundir=Path(t["vty"]))
            pod.tors[rack] = LabTor(t["name"], t["ns"], tor_doc, frr)
        for name, sp in state.get("spines", {}).items():
            spine_doc = _load(rendered / "spines" / name / "device.json", SpineDevice)
            frr = Frr(pod.box, sp["ns"], name, rendered, (), rundir=Path(sp["vty"]))
            pod.spines[name] = LabSpine(name, sp["ns"], spine_doc, frr)
        for name, n in state["nodes"].items():
            node_doc = _load(rendered / "nodes" / name / "device.json", NodeDevice)
            lab_node = LabNode(name, n["ns"], node_doc, Path(n["dir"]), n["edge"])
            if n.get("run"):
                lab_node.run = Path(n["run"])
                lab_node.frr = Frr(
                    pod.box, n["ns"], name, rendered, (), rundir=lab_node.run / "frr"
                )
            pod.nodes[name] = lab_node
        pod.client_ns, pod.ctl_ns = state["client_ns"], state["ctl_ns"]
        pod.ctl_address = state["ctl_address"]
        pod.redis_password = state.get("redis_password", pod.redis_password)
        pod.lock = Path(state["lock"]) if state.get("lock") else None
        pod.monitoring = bool(state.get("monitoring", False))
        return pod

    # -- teardown -------------------------------------------------------------------------

    def down(self) -> list[str]:
        """Remove everything this lab created (also one attached from a saved state)."""
        problems = self.box.close()
        if self.saved_state is not None:
            problems += close_saved(self.saved_state["box"])
        if not problems:
            self.saved_state = None
            for name in (self.STATE, self.JOURNAL, FABRIC_CONFIG):  # fabric.yaml: its ToRs
                (self.workdir / name).unlink(missing_ok=True)
        return problems

    @classmethod
    def down_saved(cls, workdir: Path) -> list[str]:
        """Take down a lab from its saved state alone (its rendered files may be gone), or,
        when ``lab up`` died before saving it, from the journal of what it had created."""
        journal = workdir / cls.JOURNAL
        if (workdir / cls.STATE).exists() or not journal.exists():
            problems = close_saved(cls._read_state(workdir)["box"])
        else:
            problems = []
        if journal.exists():
            try:
                problems += close_saved(json.loads(journal.read_text()))
            except (OSError, json.JSONDecodeError) as e:
                problems.append(f"{journal}: {e}")
        if not problems:
            for name in (cls.STATE, cls.JOURNAL, FABRIC_CONFIG):
                (workdir / name).unlink(missing_ok=True)
        return problems

    @classmethod
    def _read_state(cls, workdir: Path) -> dict[str, Any]:
        path = workdir / cls.STATE
        try:
            state: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            raise LabError(f"no lab is up in {workdir} (no {cls.STATE})") from None
        except (OSError, json.JSONDecodeError) as e:
            raise LabError(f"{path}: {e}") from None
        return state


class Flows:
    """Long-lived client flows; each :meth:`round` asks every flow which node answers."""

    def __init__(self, ns: str, vip: str, count: int) -> None:
        self.proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                sys.executable,
                "-m",
                "sixpod.lab.whoami",
                "flows",
                vip,
                str(WHOAMI_PORT),
                str(count),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def round(self) -> list[str | None]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise LabError("the flow client exited")
        answers: list[str | None] = json.loads(line)
        return answers

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def moved(before: list[str | None], after: list[str | None], gone: str) -> tuple[int, int]:
    """Of the flows that were on nodes other than ``gone``, how many moved or broke."""
    kept = [(b, a) for b, a in zip(before, after, strict=True) if b is not None and b != gone]
    return sum(1 for b, a in kept if a != b), len(kept)


def _route_key(target: str) -> tuple[str, str]:
    """A VIP or a prefix as FRR keys its routes, and the ``show`` command of its family."""
    if "/" in target:
        net = addr.parse_prefix(target)
        key, version = addr.format_prefix(net), net.version
    else:
        ip = addr.parse_ip(target)
        key, version = f"{addr.format_ip(ip)}/{32 if ip.version == 4 else 128}", ip.version
    return key, "show ip route" if version == 4 else "show ipv6 route"


def _frr_routes(frr: Frr, target: str) -> set[str]:
    """Next hops FRR selected for a host address (a VIP) or a prefix."""
    key, cmd = _route_key(target)
    return selected_hops(key, frr.json(f"{cmd} {key} json").get(key, []))


def _established(frr: Frr) -> set[str]:
    data = frr.json("show bgp summary json")
    out: set[str] = set()
    for af in data.values():
        if isinstance(af, dict):
            for peer, info in af.get("peers", {}).items():
                if info.get("state") == "Established":
                    out.add(peer)
    return out


def selected_hops(prefix: str, entries: object) -> set[str]:
    """The gateways FRR selected for ``prefix`` (its entries in ``show ip[v6] route json``),
    read as the ToR helper reads them (:func:`sixpod.routing.resilient.frr.selected_members`),
    so the lab and the benchmarks never disagree with the product about a route's paths."""
    members, _ = selected_members(addr.parse_prefix(prefix), entries)
    return {addr.format_ip(m.gateway) for m in members}


def _strip_comment(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


D = TypeVar("D", NodeDevice, TorDevice, SpineDevice)


def _load(path: Path, kind: type[D]) -> D:
    """A rendered ``device.json`` through the one loader, as the kind the lab expects."""
    try:
        doc = devices.load(path.read_text(), str(path))
    except (OSError, devices.DeviceError) as e:
        raise LabError(str(e)) from None
    if not isinstance(doc, kind):
        raise LabError(f"{path}: not a {kind.schema} document")
    return doc
