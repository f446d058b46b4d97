"""The changes a bootstrap makes to the node's network, one small frozen value each
(:func:`sixpod.node.plan.plan` computes them; :mod:`sixpod.node.netlink` applies them)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Interface

from sixpod import addr
from sixpod.node.netconfig import Route, RouteKind


@dataclass(frozen=True, slots=True)
class SetSysctl:
    path: tuple[str, ...]
    """Under ``/proc/sys``: ``("net", "ipv6", "conf", "eth0", "accept_dad")``."""
    value: int
    old: int | None

    def __post_init__(self) -> None:
        if not self.path or any(not p or "/" in p or p in (".", "..") for p in self.path):
            raise ValueError(f"bad sysctl path {self.path!r}")

    def __str__(self) -> str:
        return f"sysctl {'.'.join(self.path)} = {self.value} (was {self.old})"


@dataclass(frozen=True, slots=True)
class SetMtu:
    link: str
    mtu: int
    old: int

    def __str__(self) -> str:
        return f"link {self.link} mtu {self.mtu} (was {self.old})"


@dataclass(frozen=True, slots=True)
class SetUp:
    link: str

    def __str__(self) -> str:
        return f"link {self.link} up"


@dataclass(frozen=True, slots=True)
class AddAddress:
    link: str
    address: IPv6Interface

    def __str__(self) -> str:
        return f"address {addr.format_prefix(self.address)} on {self.link} (nodad)"


@dataclass(frozen=True, slots=True)
class AddRoute:
    route: Route
    replaces: Route | None = None
    """The route to the same destination that is there now (replaced)."""

    def __str__(self) -> str:
        r = self.route
        text = f"route {addr.format_prefix(r.to)}"
        if r.kind is RouteKind.UNREACHABLE:
            text = f"route unreachable {addr.format_prefix(r.to)}"
        elif r.via is not None:
            inet6 = "inet6 " if r.to.version == 4 else ""
            text += f" via {inet6}{addr.format_ip(r.via)} dev {r.dev}"
            if r.src is not None:
                text += f" src {addr.format_ip(r.src)}"
        if self.replaces is not None:
            return f"{text} (replacing one {describe_route(self.replaces)})"
        return text


def describe_route(r: Route) -> str:
    if r.kind is RouteKind.UNREACHABLE:
        return "unreachable"
    via = addr.format_ip(r.via) if r.via is not None else "nothing"
    src = f" src {addr.format_ip(r.src)}" if r.src is not None else ""
    return f"via {via} dev {r.dev}{src}"


Change = SetSysctl | SetMtu | SetUp | AddAddress | AddRoute
