"""Errors of the edge package: one root, split by whose fault it is."""

from __future__ import annotations

from sixpod.errors import SixpodError


class EdgeError(SixpodError):
    """The edge could not do what was asked (nginx would not start, a refused batch, a
    sealing key that cannot be used). Exit code 1."""


class ConfigError(EdgeError):
    """The operator's fault: ``edge.yaml`` cannot be used. Exit code 1."""
