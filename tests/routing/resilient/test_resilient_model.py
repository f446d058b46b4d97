"""The helper's values, validated when built."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Address

import pytest

from resilientkit import (
    PROTO,
)
from sixpod.routing.resilient.model import (
    GROUP_BASE,
    AddGroup,
    GroupSettings,
    Member,
    Settings,
)


def test_values_are_validated_when_built() -> None:
    with pytest.raises(ValueError, match="interface name"):
        Member(IPv6Address("2001:db8::1"), "eth0 up")
    with pytest.raises(ValueError, match="IPv6Address"):
        Member("2001:db8::1", "eth0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="host prefix"):
        Settings(vips=frozenset({IPv4Network("203.0.113.0/24")}))
    with pytest.raises(ValueError, match="buckets"):
        GroupSettings(buckets=0)
    with pytest.raises(ValueError, match="at least one member"):
        AddGroup(GROUP_BASE, (), GroupSettings(), PROTO)
