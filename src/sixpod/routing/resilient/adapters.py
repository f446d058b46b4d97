"""Thin adapters of the helper: FRR through ``vtysh``, the kernel through ``ip``, route events.

Each translates its foreign errors (``OSError``, timeouts, pyroute2's) into
:class:`~.errors.CommandError` or :class:`~.errors.ParseError`.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import subprocess
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Final

from sixpod.errors import ExceptionMap, map_exceptions
from sixpod.routing.resilient.errors import CommandError, NetlinkError
from sixpod.routing.resilient.frr import _bad
from sixpod.routing.resilient.iproute import format_batches, parse_kernel_state
from sixpod.routing.resilient.model import KernelState, Op, Settings, _check_int

__all__ = [
    "IpKernel",
    "RouteEvents",
    "VtyshFrr",
]


_ROUTE_GROUPS: Final = 0x40 | 0x400  # RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE


def _run(
    argv: Sequence[str], *, stdin: str | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    failed: ExceptionMap = {
        subprocess.TimeoutExpired: lambda e: CommandError(
            f"{' '.join(argv)}: no answer within {timeout:g} s"
        ),
        OSError: lambda e: CommandError(f"{' '.join(argv)}: {e.strerror or e}"),
    }
    with map_exceptions(failed):
        return subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )


class VtyshFrr:
    """Reads FRR's routes with one ``vtysh -c ... -c ...`` run."""

    def __init__(
        self, *, vty_socket: str | None = None, vtysh: str = "vtysh", timeout: float = 5.0
    ) -> None:
        self._argv = [vtysh] + (["--vty_socket", vty_socket] if vty_socket else [])
        self._timeout = timeout

    def read(self) -> tuple[object, object]:
        argv = [*self._argv, "-c", "show ip route json", "-c", "show ipv6 route json"]
        res = _run(argv, stdin=None, timeout=self._timeout)
        if res.returncode != 0:
            raise CommandError(f"vtysh: exit {res.returncode}: {res.stderr.strip()}")
        decoder = json.JSONDecoder()
        text, pos, docs = res.stdout, 0, []
        for version in (4, 6):
            while pos < len(text) and text[pos].isspace():
                pos += 1
            try:
                doc, pos = decoder.raw_decode(text, pos)
            except ValueError as e:
                raise _bad(f"vtysh printed no IPv{version} JSON document: {e}") from None
            docs.append(doc)
        return docs[0], docs[1]


class IpKernel:
    """The ToR's kernel through iproute2's ``ip`` (``-n NS`` when ``netns`` is set).

    ``ip``, not pyroute2, because the helper's whole state is nexthop objects and routes that
    use them, which pyroute2 0.9 has no messages for (no ``RTM_NEWNEXTHOP``, no ``RTA_NH_ID``).
    """

    def __init__(self, *, netns: str | None = None, ip: str = "ip", timeout: float = 5.0) -> None:
        self.netns = netns
        self._program = ip
        self._ip = [ip] + (["-n", netns] if netns else [])
        self._timeout = timeout

    def _show(self, *args: str, missing_ok: bool = False) -> str:
        res = _run([*self._ip, "-N", "-j", *args], stdin=None, timeout=self._timeout)
        if res.returncode != 0:
            # A table that never had a route does not exist yet (kernel extack): it is empty.
            if missing_ok and "FIB table does not exist" in res.stderr:
                return "[]"
            raise CommandError(f"ip {' '.join(args)}: exit {res.returncode}: {res.stderr.strip()}")
        return res.stdout

    def read(self, settings: Settings) -> KernelState:
        table = str(settings.table)
        return parse_kernel_state(
            nexthops=self._show("nexthop", "show"),
            routes4=self._show("-4", "route", "show", "table", table, missing_ok=True),
            routes6=self._show("-6", "route", "show", "table", table, missing_ok=True),
            rules4=self._show("-4", "rule", "show"),
            rules6=self._show("-6", "rule", "show"),
            table=settings.table,
            priority=settings.priority,
        )

    def apply(self, ops: Sequence[Op]) -> None:
        for batch in format_batches(ops):
            argv = [*self._ip, *(["-6"] if batch.ipv6_rules else []), "-batch", "-"]
            res = _run(argv, stdin=batch.text, timeout=self._timeout)
            if res.returncode != 0:
                err = res.stderr.strip()
                m = re.search(r"Command failed -:(\d+)", err)
                line = batch.lines[int(m.group(1)) - 1] if m else None
                where = f" at '{line}'" if line else ""
                raise CommandError(f"ip -batch failed{where}: {err}", line=line)

    def set_multipath_hash(self, policy: int = 1) -> None:
        """``fib_multipath_hash_policy`` for both families (1 = L4 5-tuple) in the ToR's ns."""
        _check_int(policy, "policy", 0, 3)
        keys = ("net.ipv4.fib_multipath_hash_policy", "net.ipv6.fib_multipath_hash_policy")
        prefix = [self._program, "netns", "exec", self.netns] if self.netns else []
        argv = [*prefix, "sysctl", "-q", "-w", *(f"{k}={policy}" for k in keys)]
        res = _run(argv, stdin=None, timeout=self._timeout)
        if res.returncode != 0:
            raise CommandError(f"sysctl: exit {res.returncode}: {res.stderr.strip()}")


class RouteEvents:
    """Wakes the loop on route changes in the ToR's namespace (netlink, through pyroute2).

    Changes of the helper's own table are ignored. Use as a context manager, from one thread
    (pyroute2 binds its socket to the event loop of the thread that opened it).
    """

    def __init__(self, *, netns: str | None = None, ignore_table: int | None = None) -> None:
        self._netns = netns
        self._ignore = ignore_table
        self._ipr: Any = None

    def __enter__(self) -> RouteEvents:
        from pyroute2 import IPRoute

        try:
            self._ipr = IPRoute(netns=self._netns) if self._netns else IPRoute()
            self._ipr.bind(groups=_ROUTE_GROUPS)
        except Exception as e:  # pyroute2 raises OSError, NetlinkError and others
            self.close()
            raise NetlinkError(f"route events in {self._netns or 'this namespace'}: {e}") from None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._ipr is not None:
            with contextlib.suppress(Exception):
                self._ipr.close()
            self._ipr = None

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s; True if a relevant route changed (pending ones drained)."""
        if self._ipr is None:
            raise NetlinkError("route events: not open")
        relevant = False
        deadline = time.monotonic() + max(0.0, timeout)
        for _ in range(10_000):  # bounded drain of a burst
            left = 0.0 if relevant else max(0.0, deadline - time.monotonic())
            try:
                ready, _, _ = select.select([self._ipr.fileno()], [], [], left)
                if not ready:
                    return relevant
                msgs = self._ipr.get()
            except Exception as e:
                raise NetlinkError(f"route events: {e}") from None
            for msg in msgs:
                table = msg.get_attr("RTA_TABLE") or msg.get("table")
                if table != self._ignore:
                    relevant = True
        return relevant
