"""Keep the VIPs on the node's loopback, through netlink (pyroute2, asyncio API).

Only the given host addresses are added or removed; nothing else on the interface is touched.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from sixpod.errors import ExceptionMap, map_exceptions
from sixpod.routing.errors import Unavailable

IFA_F_NODAD = 0x02
IP = IPv4Address | IPv6Address


class LoopbackError(Unavailable):
    """Netlink refused to change the loopback."""


def _plen(ip: IP) -> int:
    return 32 if ip.version == 4 else 128


def _refused(what: str) -> ExceptionMap:
    return {(NetlinkError, OSError): lambda e: LoopbackError(f"{what}: {e}")}


async def _index(ipr: AsyncIPRoute, ifname: str) -> int:
    found = await ipr.link_lookup(ifname=ifname)
    if not found:
        raise LoopbackError(f"no interface {ifname!r}")
    return int(found[0])


async def ensure(ifname: str, vips: Iterable[IP]) -> int:
    """Add every VIP missing from ``ifname`` (and set it up); returns how many were added."""
    added = 0
    with map_exceptions(_refused(f"adding VIPs to {ifname}")):
        async with AsyncIPRoute() as ipr:
            idx = await _index(ipr, ifname)
            await ipr.link("set", index=idx, state="up")
            for ip in vips:
                flags = IFA_F_NODAD if ip.version == 6 else 0
                try:
                    await ipr.addr(
                        "add", index=idx, address=str(ip), prefixlen=_plen(ip), flags=flags
                    )
                    added += 1
                except NetlinkError as e:
                    if e.code != errno.EEXIST:
                        raise
    return added


async def remove(ifname: str, vips: Iterable[IP]) -> int:
    """Remove the given VIPs from ``ifname`` (absent ones are fine); returns how many."""
    removed = 0
    with map_exceptions(_refused(f"removing VIPs from {ifname}")):
        async with AsyncIPRoute() as ipr:
            idx = await _index(ipr, ifname)
            for ip in vips:
                try:
                    await ipr.addr("del", index=idx, address=str(ip), prefixlen=_plen(ip))
                    removed += 1
                except NetlinkError as e:
                    if e.code not in (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ESRCH):
                        raise
    return removed
