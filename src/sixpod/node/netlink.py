"""The bootstrap's adapter: read the node's network state and apply a plan, in the network
namespace this process runs in (pyroute2 netlink; sysctls under ``/proc/sys``).

Netlink and OS errors become :class:`~sixpod.node.errors.ApplyFailed` naming the change.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from ipaddress import IPv4Interface, IPv6Address, IPv6Interface, ip_interface, ip_network
from pathlib import Path
from socket import AF_INET, AF_INET6
from typing import Any

from sixpod import addr
from sixpod.errors import ExceptionMap, map_exceptions
from sixpod.node.errors import ApplyFailed
from sixpod.node.events import AddAddress, AddRoute, Change, SetMtu, SetSysctl, SetUp
from sixpod.node.netconfig import NetConfig, Route, RouteKind
from sixpod.node.plan import LinkState, NetState, sysctl_paths

PROC_SYS = Path("/proc/sys")
IFA_F_NODAD = 0x02  # linux/if_addr.h
IFF_UP = 0x1
RT_TABLE_MAIN = 254
RTN_UNICAST = 1
RTN_UNREACHABLE = 7
RTPROT_STATIC = 4
RT_SCOPE_UNIVERSE = 0


@contextmanager
def _rtnl(what: str) -> Iterator[Any]:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    failed: ExceptionMap = {
        NetlinkError: lambda e: ApplyFailed(
            f"{what}: {e.args[1] if len(e.args) > 1 else os.strerror(e.code)}"
        ),
        OSError: lambda e: ApplyFailed(f"{what}: {e.strerror or e}"),
    }
    with map_exceptions(failed), IPRoute() as ipr:
        yield ipr


def _read_sysctl(path: tuple[str, ...]) -> int | None:
    try:
        text = PROC_SYS.joinpath(*path).read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ApplyFailed(f"sysctl {'.'.join(path)}: {e.strerror or e}") from None
    try:
        return int(text)
    except ValueError:
        raise ApplyFailed(f"sysctl {'.'.join(path)}: not a number: {text!r}") from None


def _route(msg: Any, names: dict[int, str]) -> Route | None:
    family = msg["family"]
    kind = msg["type"]
    dst = msg.get_attr("RTA_DST")
    plen = msg["dst_len"]
    if dst is None:
        dst = "::" if family == AF_INET6 else "0.0.0.0"
    to = ip_network(f"{dst}/{plen}")
    if kind == RTN_UNREACHABLE:
        return Route(to, RouteKind.UNREACHABLE)
    if kind != RTN_UNICAST:
        return None
    dev = names.get(msg.get_attr("RTA_OIF") or 0)
    gw = msg.get_attr("RTA_GATEWAY")
    via = msg.get_attr("RTA_VIA")
    if gw is None and via is not None:
        gw = via.get("addr")
    ip = addr.parse_ip(gw) if gw is not None else None
    if not isinstance(ip, IPv6Address):
        return Route(to, RouteKind.UNICAST, None, dev)  # on-link, or via IPv4: not ours
    pref = msg.get_attr("RTA_PREFSRC")
    src = addr.parse_ip(pref) if pref is not None and family == AF_INET6 else None
    return Route(to, RouteKind.UNICAST, ip, dev, src if isinstance(src, IPv6Address) else None)


def read_state(cfg: NetConfig) -> NetState:
    """The links, addresses, main-table routes and the config's sysctls, as they are now."""
    with _rtnl("reading links, addresses and routes") as ipr:
        names: dict[int, str] = {}
        flags: dict[int, tuple[bool, int]] = {}
        for link in ipr.get_links():
            names[link["index"]] = link.get_attr("IFLA_IFNAME")
            flags[link["index"]] = (bool(link["flags"] & IFF_UP), link.get_attr("IFLA_MTU"))
        addrs: dict[int, set[IPv4Interface | IPv6Interface]] = {i: set() for i in names}
        for a in ipr.get_addr():
            ip = a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS")
            if ip is not None and a["index"] in addrs:
                addrs[a["index"]].add(ip_interface(f"{ip}/{a['prefixlen']}"))
        routes: dict[Any, Route] = {}
        for family in (AF_INET, AF_INET6):
            for msg in ipr.get_routes(family=family, table=RT_TABLE_MAIN):
                r = _route(msg, names)
                if r is not None:
                    routes.setdefault(r.to, r)
    links = {
        name: LinkState(name, flags[i][0], flags[i][1], frozenset(addrs[i]))
        for i, name in names.items()
    }
    sysctls = {p: _read_sysctl(p) for p in sysctl_paths(cfg)}
    return NetState(links, routes, sysctls)


def apply(changes: Sequence[Change]) -> None:
    """Make each change, in order; stop at the first the kernel refuses."""
    for change in changes:
        if isinstance(change, SetSysctl):
            path = PROC_SYS.joinpath(*change.path)
            try:
                path.write_text(f"{change.value}\n")
            except OSError as e:
                raise ApplyFailed(f"{change}: {e.strerror or e}") from None
            continue
        with _rtnl(str(change)) as ipr:
            _apply_one(ipr, change)


def _index(ipr: Any, name: str) -> int:
    found = ipr.link_lookup(ifname=name)
    if not found:
        raise OSError(errno.ENODEV, f"no interface {name}")
    return int(found[0])


def _apply_one(ipr: Any, change: Change) -> None:
    if isinstance(change, SetMtu):
        ipr.link("set", index=_index(ipr, change.link), mtu=change.mtu)
    elif isinstance(change, SetUp):
        ipr.link("set", index=_index(ipr, change.link), state="up")
    elif isinstance(change, AddAddress):
        a = change.address
        ipr.addr(
            "add",
            index=_index(ipr, change.link),
            address=addr.format_ip(a.ip),
            prefixlen=a.network.prefixlen,
            flags=IFA_F_NODAD,
        )
    elif isinstance(change, AddRoute):
        r = change.route
        family = AF_INET6 if r.to.version == 6 else AF_INET
        spec: dict[str, Any] = {
            "dst": addr.format_prefix(r.to),
            "family": family,
            "table": RT_TABLE_MAIN,
            "proto": RTPROT_STATIC,
        }
        if r.kind is RouteKind.UNREACHABLE:
            spec["type"] = RTN_UNREACHABLE
        else:
            assert r.via is not None
            assert r.dev is not None
            spec |= {"oif": _index(ipr, r.dev), "scope": RT_SCOPE_UNIVERSE}
            gateway = addr.format_ip(r.via)
            if r.to.version == 6:
                spec["gateway"] = gateway
                if r.src is not None:
                    spec["prefsrc"] = addr.format_ip(r.src)
            else:  # RFC 8950: ip route add ... via inet6 GW
                spec["via"] = {"family": AF_INET6, "addr": gateway}
        ipr.route("replace" if change.replaces is not None else "add", **spec)
