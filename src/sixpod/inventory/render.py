"""Per-device data files: what each node and ToR needs, from the inventory and its lock.

Pure: returns ``{relative path: text}``. Files are JSON with sorted keys, one value per line,
and a ``schema`` field (``sixpod.node/1``, ``sixpod.tor/1``) that later renderers check.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, IPv6Interface, IPv6Network

from sixpod import devices
from sixpod.edge.render import edge_files
from sixpod.fabric.render import FABRIC_FILES, fabric_files
from sixpod.inventory.errors import InventoryError
from sixpod.inventory.lock import Lock
from sixpod.inventory.model import Announce, Floor, Inventory
from sixpod.inventory.rules import tor_ports
from sixpod.monitoring.prometheus import prometheus_files
from sixpod.node.render import node_files
from sixpod.routing.frrcheck import check_frr
from sixpod.routing.render import Paths, device_configs
from sixpod.routing.spine import spine_frr_conf

# Every file a render writes, with what it is for (``sixpod render --help`` lists them; a test
# renders the examples and checks the list is complete).
RENDERED_FILES: tuple[tuple[str, str], ...] = (
    ("nodes/NAME/device.json", "the node's data: prefix, uplink, BGP, what it may announce"),
    ("nodes/NAME/exabgp.conf", "ExaBGP: one IPv6 session to the ToR; runs `sixpod announcer`"),
    ("nodes/NAME/announcer.yaml", "`sixpod announcer`: VIPs, node /64, checks, drain, floor"),
    ("nodes/NAME/bfdd.conf", "FRR bfdd on the node: BFD for the ToR session"),
    ("nodes/NAME/edge.yaml", "edge nodes: `sixpod edge-agent`'s config"),
    ("nodes/NAME/nginx.conf", "edge nodes: the nginx config the edge agent runs"),
    ("nodes/NAME/network.json", "the network config `sixpod node bootstrap` applies"),
    ("nodes/NAME/network/10-sixpod-uplink.network", "systemd-networkd: uplink, MTU, routes"),
    ("nodes/NAME/network/10-sixpod-lo.network", "systemd-networkd: the node's own address"),
    ("nodes/NAME/network/90-sixpod.conf", "sysctl.d: no DAD, keep addresses, forwarding"),
    ("nodes/NAME/redis.conf", "redis-replica nodes: the replica of the pod's Redis primary"),
    ("nodes/NAME/systemd/sixpod-node.target", "systemd: wants every service of the node"),
    ("nodes/NAME/systemd/sixpod-zebra.service", "systemd: FRR zebra, for bfdd"),
    ("nodes/NAME/systemd/sixpod-bfdd.service", "systemd: FRR bfdd with bfdd.conf"),
    ("nodes/NAME/systemd/sixpod-exabgp.service", "systemd: ExaBGP, which runs the announcer"),
    ("nodes/NAME/systemd/sixpod-redis.service", "systemd: the Redis replica (redis.conf)"),
    ("nodes/NAME/systemd/sixpod-edge.service", "systemd: `sixpod edge-agent` (edge nodes)"),
    ("nodes/NAME/razor.yaml", "razor nodes: `sixpod razor`, the route zone on the VIPs"),
    ("nodes/NAME/systemd/sixpod-razor.service", "systemd: `sixpod razor` (razor nodes)"),
    ("tors/NAME/device.json", "the ToR's data: ASN, ports, neighbors, upstreams, VIPs"),
    ("tors/NAME/frr.conf", "FRR on the ToR: interfaces, BGP, filters, BFD, ECMP"),
    ("tors/NAME/resilient.yaml", "`sixpod tor-resilient`: VIPs kept on resilient groups"),
    *FABRIC_FILES,
    ("spines/NAME/device.json", "each spine in the ToRs' upstreams: ASN, links to the ToRs"),
    ("spines/NAME/frr.conf", "FRR on the spine: ToR sessions, filters, ECMP, default route"),
    ("prometheus/prometheus.yml", "Prometheus: a scrape job per exporter, the alert rules"),
    ("prometheus/targets/JOB.json", "file_sd targets of each job: nodes, ToRs, VIP probes"),
    ("prometheus/alerts.yml", "the alert rules (sixpod's own, copied beside the config)"),
    ("prometheus/blackbox.yml", "blackbox exporter modules: HTTP over ip6 only, over ip4"),
    (".sixpod-render", "marks DIR as a render, that the next render may replace"),
)


class RenderError(InventoryError):
    """The lock does not cover the inventory (run ``sixpod allocate`` first), or a rendered
    config fails its checks."""

    def __init__(self, message: str) -> None:
        super().__init__([], message)


def node_router_id(link: IPv6Network) -> IPv4Address:
    """A node's BGP router id: the low 32 bits of its uplink /64's network number."""
    return IPv4Address((int(link.network_address) >> 64) & 0xFFFFFFFF)


def tor_router_id(asn: int) -> IPv4Address:
    """A ToR's BGP router id: its (pod-unique) ASN as a 32-bit number."""
    return IPv4Address(asn)


def _check_router_ids(lock: Lock) -> None:
    seen: dict[IPv4Address, str] = {}
    ids = [(tor_router_id(asn), f"rack {r}") for r, asn in lock.racks.items()]
    ids += [(node_router_id(a.link), f"node {n}") for n, a in lock.nodes.items()]
    for rid, who in ids:
        if int(rid) == 0 or rid in seen:
            other = seen.get(rid, "nobody")
            raise RenderError(f"BGP router id {rid} of {who} is zero or taken by {other}")
        seen[rid] = who


def _vips(lock: Lock) -> devices.Vips:
    return devices.Vips(tuple(lock.vips4), tuple(lock.vips6))


def _floor(floor: Floor) -> devices.Floor:
    """The announcer's ``floor`` section (:class:`sixpod.routing.config.FloorConfig`)."""
    return devices.Floor(floor.min_nodes, floor.ttl, floor.redis, floor.password_file)


def device_documents(inv: Inventory, lock: Lock) -> dict[str, devices.Device]:
    """One document per device, keyed by its relative file path."""
    missing = [n.name for n in inv.nodes if n.name not in lock.nodes]
    missing += [f"rack {r.name}" for r in inv.racks if r.name not in lock.racks]
    if lock.pod != inv.pod.name or missing:
        what = ", ".join(missing) if missing else f"pod {inv.pod.name}"
        raise RenderError(f"the lock does not cover {what}: run `sixpod allocate` first")
    _check_router_ids(lock)
    pod = inv.pod
    ports = tor_ports(inv)
    racks = {r.name: r for r in inv.racks}
    vips = _vips(lock)
    docs: dict[str, devices.Device] = {}
    neighbors: dict[str, list[devices.Neighbor]] = {r.name: [] for r in inv.racks}
    for node in inv.nodes:
        alloc = lock.nodes[node.name]
        role = inv.role_of(node)
        rack = racks[node.rack]
        assert rack.tor is not None
        announces_vips = Announce.VIPS in role.announce
        prefixes = (alloc.prefix,) if Announce.NODE_PREFIX in role.announce else ()
        docs[f"nodes/{node.name}/device.json"] = devices.NodeDevice(
            pod=pod.name,
            name=node.name,
            rack=rack.name,
            role=node.role,
            services=tuple(str(s) for s in role.services),
            prefix=alloc.prefix,
            prefixes=prefixes,
            vips=vips if announces_vips else devices.Vips(),
            uplink=devices.Uplink(
                port=node.port,
                mtu=node.mtu,
                nic=str(node.nic),
                link=alloc.link,
                address=alloc.node,
                peer=devices.Peer(rack.tor.name, node.port, alloc.tor, lock.racks[rack.name]),
            ),
            bgp=devices.Bgp(lock.node_asn, pod.hold_time, node_router_id(alloc.link)),
            floor=_floor(pod.floor) if announces_vips else None,
        )
        neighbors[rack.name].append(
            devices.Neighbor(
                node=node.name,
                role=node.role,
                port=node.port,
                address=alloc.node,
                local_address=alloc.tor,
                link=alloc.link,
                asn=lock.node_asn,
                prefixes=prefixes,
                vips=announces_vips,
            )
        )
    for rack in inv.racks:
        assert rack.tor is not None
        docs[f"tors/{rack.tor.name}/device.json"] = devices.TorDevice(
            pod=pod.name,
            name=rack.tor.name,
            rack=rack.name,
            asn=lock.racks[rack.name],
            router_id=tor_router_id(lock.racks[rack.name]),
            aggregate=pod.aggregate,
            hold_time=pod.hold_time,
            ports=tuple(devices.Port(p, m) for p, m in ports[rack.name].items()),
            neighbors=tuple(sorted(neighbors[rack.name], key=lambda n: n.node)),
            upstreams=tuple(
                devices.Upstream(u.name, u.port, u.address, u.local, u.asn)
                for u in rack.tor.upstreams
            ),
            vips=vips,
        )
    return docs


def spine_documents(tors: list[devices.TorDevice]) -> dict[str, devices.SpineDevice]:
    """One document per spine named in the ToRs' ``upstreams``, keyed by its file path.

    The spine's ports are numbered ``swp1``, ``swp2``, ... in the order of the ToRs (by rack,
    as in the inventory) that name it; its ASN is the one the ToRs name (they must agree).
    """
    links: dict[str, list[tuple[devices.TorDevice, devices.Upstream]]] = {}
    for tor in tors:
        for up in tor.upstreams:
            links.setdefault(up.name, []).append((tor, up))
    out: dict[str, devices.SpineDevice] = {}
    for name, pairs in sorted(links.items()):
        asns = {up.asn for _, up in pairs}
        if len(asns) != 1:
            raise RenderError(f"the ToRs name spine {name} with different ASNs {sorted(asns)}")
        asn = asns.pop()
        first = pairs[0][0]
        downlinks = tuple(
            devices.Downlink(
                tor=tor.name,
                rack=tor.rack,
                port=f"swp{i}",
                tor_port=up.port,
                address=up.local.ip,
                local=IPv6Interface((up.address, up.local.network.prefixlen)),
                asn=tor.asn,
                prefixes=tuple(sorted({p for n in tor.neighbors for p in n.prefixes})),
            )
            for i, (tor, up) in enumerate(pairs, 1)
        )
        out[f"spines/{name}/device.json"] = devices.SpineDevice(
            pod=first.pod,
            name=name,
            asn=asn,
            router_id=tor_router_id(asn),
            aggregate=first.aggregate,
            hold_time=first.hold_time,
            downlinks=downlinks,
            vips=first.vips,
        )
    ids: dict[IPv4Address, str] = {t.router_id: f"ToR {t.name}" for t in tors}
    for spine in out.values():
        other = ids.get(spine.router_id)
        if other is not None:
            raise RenderError(
                f"BGP router id {spine.router_id} of spine {spine.name} is taken by {other}"
            )
        ids[spine.router_id] = f"spine {spine.name}"
    return out


def render(inv: Inventory, lock: Lock, paths: Paths | None = None) -> dict[str, str]:
    """Every device file's text (data and configs), keyed by relative path.

    Raises :class:`RenderError` if a generated ToR config fails the semantic checks.
    """
    docs = device_documents(inv, lock)
    spines = spine_documents([d for d in docs.values() if isinstance(d, devices.TorDevice)])
    files = {path: devices.dumps(dev) for path, dev in (docs | spines).items()}
    paths = paths or Paths()
    configs = device_configs(docs, paths)
    for path, dev in docs.items():
        if isinstance(dev, devices.NodeDevice):
            folder = path.rsplit("/", 1)[0]
            configs |= {f"{folder}/{k}": v for k, v in edge_files(dev, paths).items()}
    controller = inv.pod.floor.redis.ip if inv.pod.floor.redis is not None else None
    assert controller is None or isinstance(controller, IPv6Address)
    configs |= prometheus_files(docs, pod=inv.pod.name, controller=controller)
    configs |= node_files(docs, primary=inv.pod.floor.redis, paths=paths)
    configs |= fabric_files(docs, inv.pod)
    for path, spine in spines.items():
        configs[path.replace("device.json", "frr.conf")] = spine_frr_conf(spine)
    for path, dev in docs.items():
        if isinstance(dev, devices.TorDevice):
            frr_path = path.replace("device.json", "frr.conf")
            problems = check_frr(configs[frr_path], dev)
            if problems:
                raise RenderError(f"{frr_path}: " + "; ".join(problems))
    return dict(sorted((files | configs).items()))
