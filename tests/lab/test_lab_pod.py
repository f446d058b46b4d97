"""The lab reads FRR's selected next hops with the product's parser, not rules of its own."""

from __future__ import annotations

from typing import Any

import pytest

from sixpod.lab.pod import selected_hops
from sixpod.routing.resilient.errors import ParseError


def _hop(ip: str, dev: str, **flags: bool) -> dict[str, Any]:
    return {"ip": ip, "afi": "ipv6", "interfaceName": dev} | flags


def test_recursive_and_duplicate_hops_are_read_as_the_tor_helper_reads_them() -> None:
    entries = [
        {"protocol": "bgp", "selected": False, "nexthops": [_hop("2001:db8:ff:9::2", "swp9")]},
        {
            "protocol": "bgp",
            "selected": True,
            "nexthops": [
                # a recursive hop is not a path itself: its resolved hops are
                {"ip": "2001:db8:aa::1", "afi": "ipv6", "active": True, "recursive": True},
                _hop("2001:db8:ff:1::2", "swp1", resolver=True, active=True),
                _hop("2001:db8:ff:2::2", "swp2", active=True),
                _hop("2001:db8:ff:3::2", "swp3", active=True, duplicate=True),
                _hop("2001:db8:ff:4::2", "swp4"),  # not active
            ],
        },
    ]
    assert selected_hops("203.0.113.10/32", entries) == {"2001:db8:ff:1::2", "2001:db8:ff:2::2"}


def test_any_prefix_not_only_vips() -> None:
    entries = [{"selected": True, "nexthops": [_hop("2001:DB8:FF:1:0::2", "swp1", active=True)]}]
    assert selected_hops("2001:db8:1::/64", entries) == {"2001:db8:ff:1::2"}
    assert selected_hops("2001:db8:1::/64", []) == set()


def test_output_not_shaped_like_frrs_is_the_parsers_error() -> None:
    with pytest.raises(ParseError):
        selected_hops("203.0.113.10/32", {"selected": True})
    with pytest.raises(ParseError):
        selected_hops("203.0.113.10/32", [{"selected": "yes"}])
