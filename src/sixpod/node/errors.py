"""The node package's errors: one root, split by whose fault it is."""

from __future__ import annotations

from sixpod.errors import SixpodError


class NodeError(SixpodError):
    """Root of the node package's errors. Exit 1."""

    exit_code = 1


class BadInput(NodeError):
    """The operator's fault: a rendered file is missing, malformed or inconsistent (an address
    of the wrong family, an interface this node does not have). Nothing was changed."""


class ApplyFailed(NodeError):
    """The kernel refused a change (netlink, a sysctl) or a program could not be started."""
