"""iproute2's formats: ``ip -N -j`` output in (the kernel state), ``ip -batch`` text out.

:func:`parse_kernel_state` reads ``nexthop``, ``route`` and ``rule show``;
:func:`format_batches` renders the planner's operations.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Final

from sixpod import addr
from sixpod.routing.resilient.errors import ParseError
from sixpod.routing.resilient.model import (
    _RTN_UNICAST,
    AddGroup,
    AddMember,
    AddRule,
    DelNexthop,
    DelRoute,
    DelRule,
    GroupSettings,
    KernelNexthop,
    KernelRoute,
    KernelRule,
    KernelState,
    Op,
    ReplaceGroup,
    SetRoute,
)

__all__ = [
    "Batch",
    "format_batches",
    "format_op",
    "parse_kernel_state",
]


_RULE_KEYS: Final = frozenset({"priority", "src", "dst", "dstlen", "table", "protocol", "flags"})


# -- kernel codec ---------------------------------------------------------------------------------
def _kbad(what: str) -> ParseError:
    return ParseError(f"ip -j output: {what}")


def _json_list(text: str, what: str) -> list[dict[str, Any]]:
    if not text.strip():
        return []
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise _kbad(f"{what} is not JSON: {e}") from None
    if not isinstance(doc, list) or not all(isinstance(x, dict) for x in doc):
        raise _kbad(f"{what} is not a list of objects")
    return doc


def _int(obj: Mapping[str, Any], key: str, what: str, *, default: int | None = None) -> int:
    value = obj.get(key, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _kbad(f"{what}: '{key}' is {value!r}, not a non-negative integer")
    return value


def _opt_int(obj: Mapping[str, Any], key: str, what: str) -> int | None:
    return None if key not in obj else _int(obj, key, what)


def _dst(text: object, version: int, what: str, dstlen: object = None) -> addr.IPNetwork:
    if not isinstance(text, str):
        raise _kbad(f"{what}: dst is {text!r}, not text")
    try:
        if text == "default":
            net = addr.parse_prefix("0.0.0.0/0" if version == 4 else "::/0")
        elif "/" in text:
            net = addr.parse_prefix(text)
        elif dstlen is not None:
            if isinstance(dstlen, bool) or not isinstance(dstlen, int):
                raise _kbad(f"{what}: dstlen is {dstlen!r}")
            net = addr.parse_prefix(f"{text}/{dstlen}")
        else:
            ip = addr.parse_ip(text)
            net = addr.parse_prefix(f"{text}/{ip.max_prefixlen}")
    except addr.AddressError as e:
        raise _kbad(f"{what}: {e}") from None
    if net.version != version:
        raise _kbad(f"{what}: {text} is not an IPv{version} prefix")
    return net


def _nexthop(obj: Mapping[str, Any]) -> KernelNexthop:
    nid = _int(obj, "id", "nexthop")
    what = f"nexthop {nid}"
    protocol = _opt_int(obj, "protocol", what)
    flags = obj.get("flags", [])
    if not isinstance(flags, list):
        raise _kbad(f"{what}: flags is {flags!r}")
    special = any(k in obj for k in ("blackhole", "fdb", "encap")) or "onlink" in flags
    if "group" in obj:
        group = obj["group"]
        if not isinstance(group, list) or not all(isinstance(g, dict) for g in group):
            raise _kbad(f"{what}: group is {group!r}")
        entries = tuple((_int(g, "id", what), _int(g, "weight", what, default=1)) for g in group)
        resilient = None
        kind = obj.get("type", "mpath")
        if kind == "resilient":
            args = obj.get("resilient_args")
            if not isinstance(args, dict):
                raise _kbad(f"{what}: resilient_args is {args!r}")
            try:
                resilient = GroupSettings(
                    buckets=_int(args, "buckets", what),
                    idle_timer=_int(args, "idle_timer", what),
                    unbalanced_timer=_int(args, "unbalanced_timer", what),
                )
            except ValueError as e:
                raise _kbad(f"{what}: {e}") from None
        elif kind != "mpath":
            special = True
        return KernelNexthop(
            id=nid, protocol=protocol, group=entries, resilient=resilient, special=special
        )
    gateway: IPv4Address | IPv6Address | None = None
    if "gateway" in obj:
        text = obj["gateway"]
        if not isinstance(text, str):
            raise _kbad(f"{what}: gateway is {text!r}")
        try:
            gateway = addr.parse_ip(text)
        except addr.AddressError as e:
            raise _kbad(f"{what}: {e}") from None
    dev = obj.get("dev")
    if dev is not None and not isinstance(dev, str):
        raise _kbad(f"{what}: dev is {dev!r}")
    return KernelNexthop(id=nid, protocol=protocol, gateway=gateway, dev=dev, special=special)


def _route(obj: Mapping[str, Any], version: int) -> KernelRoute:
    dst = _dst(obj.get("dst"), version, "route")
    what = f"route {addr.format_prefix(dst)}"
    return KernelRoute(
        dst=dst,
        metric=_int(obj, "metric", what, default=0),
        nhid=_opt_int(obj, "nhid", what),
        protocol=_opt_int(obj, "protocol", what),
        type=_int(obj, "type", what, default=_RTN_UNICAST),
    )


def _rule(obj: Mapping[str, Any], version: int) -> KernelRule:
    dst = None if "dst" not in obj else _dst(obj["dst"], version, "rule", obj.get("dstlen"))
    plain = set(obj) <= _RULE_KEYS and obj.get("src", "all") == "all" and dst is not None
    return KernelRule(dst=dst, protocol=_opt_int(obj, "protocol", "rule"), plain=plain)


def parse_kernel_state(
    *,
    nexthops: str,
    routes4: str,
    routes6: str,
    rules4: str,
    rules6: str,
    table: int,
    priority: int,
) -> KernelState:
    """The kernel state from ``ip -N -j`` output (``-N``: protocols and tables as numbers).

    ``nexthops`` is ``nexthop show``; ``routes4``/``routes6`` are ``-4``/``-6 route show table
    T``; ``rules4``/``rules6`` are ``-4``/``-6 rule show``, of which only the rules at
    ``priority`` that look up ``table`` are kept.
    """
    nhs: dict[int, KernelNexthop] = {}
    for obj in _json_list(nexthops, "nexthop show"):
        nh = _nexthop(obj)
        nhs[nh.id] = nh
    routes = [_route(o, 4) for o in _json_list(routes4, "route show")]
    routes += [_route(o, 6) for o in _json_list(routes6, "-6 route show")]
    rules: list[KernelRule] = []
    for version, text in ((4, rules4), (6, rules6)):
        for obj in _json_list(text, f"-{version} rule show"):
            if obj.get("priority") != priority or obj.get("table") not in (table, str(table)):
                continue
            rules.append(_rule(obj, version))
    return KernelState(nexthops=nhs, routes=tuple(routes), rules=tuple(rules))


# -- ip -batch ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Batch:
    """Lines for one ``ip [-6] -batch -`` run (``ip -batch`` cannot mix rule families)."""

    ipv6_rules: bool
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.lines)


def _group_args(op: AddGroup | ReplaceGroup) -> str:
    s = op.settings
    members = "/".join(str(i) for i in op.members)
    return (
        f"id {op.id} group {members} type resilient buckets {s.buckets} "
        f"idle_timer {s.idle_timer} unbalanced_timer {s.unbalanced_timer} proto {op.protocol}"
    )


def format_op(op: Op) -> str:
    """One ``ip -batch`` line (without the leading ``ip``)."""
    match op:
        case AddRule(vip, table, priority, protocol):
            dst = addr.format_prefix(vip)
            return f"rule add to {dst} lookup {table} priority {priority} proto {protocol}"
        case DelRule(dst, table, priority, protocol):
            text = addr.format_prefix(dst)
            return f"rule del to {text} lookup {table} priority {priority} proto {protocol}"
        case AddMember(nid, member, protocol):
            gw = addr.format_ip(member.gateway)
            return f"nexthop add id {nid} via {gw} dev {member.dev} proto {protocol}"
        case AddGroup():
            return f"nexthop add {_group_args(op)}"
        case ReplaceGroup():
            return f"nexthop replace {_group_args(op)}"
        case SetRoute(vip, group, table, protocol):
            dst = addr.format_prefix(vip)
            return f"route replace {dst} nhid {group} table {table} proto {protocol}"
        case DelRoute(dst, metric, table):
            return f"route del {addr.format_prefix(dst)} table {table} metric {metric}"
        case DelNexthop(nid):
            return f"nexthop del id {nid}"
    raise TypeError(f"not an operation: {op!r}")


def format_batches(ops: Sequence[Op]) -> tuple[Batch, ...]:
    """Consecutive operations grouped into ``ip -batch`` runs, order preserved."""
    batches: list[Batch] = []
    for op in ops:
        six = isinstance(op, AddRule | DelRule) and (
            (op.vip if isinstance(op, AddRule) else op.dst).version == 6
        )
        line = format_op(op)
        if batches and batches[-1].ipv6_rules == six:
            batches[-1] = Batch(six, (*batches[-1].lines, line))
        else:
            batches.append(Batch(six, (line,)))
    return tuple(batches)
