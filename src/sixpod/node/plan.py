"""What a bootstrap changes: the wanted network config against the node's current state
(pure; the adapter, :mod:`sixpod.node.netlink`, reads the state and applies the plan).

Only what is missing or different is changed, so a second run plans nothing. What the config
does not name is left alone: other addresses (the announcer's VIPs on ``lo``, the
containers'), other routes, other links. A route to a destination the config names is
replaced when it goes elsewhere (the default routes are the config's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv4Network, IPv6Interface, IPv6Network

from sixpod.node.errors import BadInput
from sixpod.node.events import AddAddress, AddRoute, Change, SetMtu, SetSysctl, SetUp
from sixpod.node.netconfig import NetConfig, Route


@dataclass(frozen=True, slots=True)
class LinkState:
    name: str
    up: bool
    mtu: int
    addresses: frozenset[IPv4Interface | IPv6Interface] = frozenset()


@dataclass(frozen=True, slots=True)
class NetState:
    """The node's network as the kernel has it (the main routing table)."""

    links: Mapping[str, LinkState]
    routes: Mapping[IPv4Network | IPv6Network, Route] = field(default_factory=dict)
    sysctls: Mapping[tuple[str, ...], int | None] = field(default_factory=dict)
    """Current values of the sysctls the config names (None: there is no such sysctl)."""


def sysctl_paths(cfg: NetConfig) -> dict[tuple[str, ...], int]:
    """Every sysctl the config sets, as a path under ``/proc/sys``, with its value."""
    out: dict[tuple[str, ...], int] = {tuple(k.split(".")): v for k, v in cfg.sysctls}
    for link in cfg.links:
        for key, value in link.ipv6:
            out[("net", "ipv6", "conf", link.name, key)] = value
    return out


def plan(want: NetConfig, have: NetState) -> list[Change]:
    """The changes that make ``have`` what ``want`` says, in the order to apply them
    (sysctls first: no DAD before the addresses come). Raises :class:`BadInput`, before any
    change, when a link or sysctl the config names does not exist here."""
    missing = [x.name for x in want.links if x.name not in have.links]
    if missing:
        present = ", ".join(sorted(have.links)) or "none"
        raise BadInput(
            f"no interface {', '.join(missing)} on this node (it has: {present}); "
            "name the uplink with --uplink"
        )
    changes: list[Change] = []
    for path, value in sysctl_paths(want).items():
        if path not in have.sysctls:
            raise BadInput(f"sysctl {'.'.join(path)}: not read")  # the adapter reads them all
        old = have.sysctls[path]
        if old is None:
            raise BadInput(f"sysctl {'.'.join(path)}: no such setting on this kernel")
        if old != value:
            changes.append(SetSysctl(path, value, old))
    for link in want.links:
        state = have.links[link.name]
        if link.mtu is not None and state.mtu != link.mtu:
            changes.append(SetMtu(link.name, link.mtu, state.mtu))
        if not state.up:
            changes.append(SetUp(link.name))
    for link in want.links:
        have_addrs = have.links[link.name].addresses
        changes += [AddAddress(link.name, a) for a in link.addresses if a not in have_addrs]
    for route in want.routes:
        now = have.routes.get(route.to)
        if now != route:
            changes.append(AddRoute(route, now))
    return changes
