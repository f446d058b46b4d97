"""Errors of the fabric package: one root, split by whose fault it is."""

from __future__ import annotations

from sixpod.errors import SixpodError

__all__ = ["FabricError", "ParseError", "RefusedError", "ToolError"]


class FabricError(SixpodError):
    """Root of the fabric package's errors. Exit code 1."""

    exit_code = 1


class ParseError(FabricError):
    """A config or a tool's output is not what it should be; the message says where."""


class ToolError(FabricError):
    """A device tool (vtysh, frr-reload, lldpcli, nft) could not be run or failed."""


class RefusedError(FabricError):
    """A plan the guard refuses (``--force`` overrides it)."""
