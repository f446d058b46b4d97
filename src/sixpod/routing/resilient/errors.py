"""Errors of the ToR resilient-hashing helper, split by whose fault it is.

Its root is a :class:`~sixpod.routing.errors.RoutingError`; each error is also the routing
package's category for its fault (data, environment).
"""

from __future__ import annotations

from sixpod.routing.errors import DataError, RoutingError, Unavailable

__all__ = [
    "CommandError",
    "NetlinkError",
    "ParseError",
    "ResilientError",
]


class ResilientError(RoutingError):
    """Root of this package's errors; the daemon logs it, keeps the last state and retries."""

    exit_code = 1


class ParseError(ResilientError, DataError):
    """FRR's or iproute2's output is not what this package understands (their data)."""


class CommandError(ResilientError, Unavailable):
    """``vtysh`` or ``ip`` failed, timed out or is missing (the environment).

    For a failed ``ip -batch`` the operations before ``line`` were applied; the next sync
    re-reads the kernel and finishes the job.
    """

    def __init__(self, message: str, *, line: str | None = None) -> None:
        super().__init__(message)
        self.line = line


class NetlinkError(CommandError):
    """The route-event socket (netlink) failed; the loop falls back to its interval."""
