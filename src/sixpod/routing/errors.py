"""The routing package's one root exception, split by whose fault it is.

Every error the announcer, its codecs and adapters, and the ToR resilient helper raise on
purpose is a :class:`RoutingError`. Below it, by whose fault:

- :class:`ConfigError`: the operator's (``announcer.yaml``, ``resilient.yaml``).
- :class:`DataError`: the data's: what ExaBGP, FRR or iproute2 printed, or a ledger or
  status file, is not in a shape this package understands.
- :class:`Unavailable`: the environment's: a program, a socket, netlink or Redis failed,
  timed out or could not be reached.

On the command line each ends the command with ``exit_code`` (1); the daemons log the data
and environment errors and carry on (each module says how).
"""

from __future__ import annotations

from sixpod.errors import SixpodError

__all__ = ["ConfigError", "DataError", "RoutingError", "Unavailable"]


class RoutingError(SixpodError):
    """Root of every error the routing package raises on purpose. Exit code 1."""

    exit_code = 1


class ConfigError(RoutingError):
    """The operator's fault: a routing daemon's config cannot be used. Exit 1."""


class DataError(RoutingError):
    """The data's fault: another program's output, or a file, this package does not
    understand."""


class Unavailable(RoutingError):
    """The environment's fault: a program, socket, netlink or Redis failed or is down."""
