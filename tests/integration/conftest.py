"""Fixtures shared by the integration tests: the edge under test (see edgekit)."""

from edgekit import edge, netns, pod  # noqa: F401
