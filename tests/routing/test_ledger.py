"""The announcer's ledger: routes ExaBGP may hold across announcer restarts."""

from __future__ import annotations

import contextlib
from ipaddress import IPv6Address, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sixpod.routing.events import Route
from sixpod.routing.ledger import LedgerError, format_ledger, parse_ledger

NH = IPv6Address("2001:db8:2ff::2")
ROUTES = [
    Route(ip_network("2001:db8:2fe::1/128"), NH, 1000, ("65535:0",)),
    Route(ip_network("203.0.113.9/32"), NH),
    Route(ip_network("2001:db8:200:1::/64"), NH),
]
TEXT = """\
{
 "schema": "sixpod.announced/1",
 "routes": [
  {
   "prefix": "203.0.113.9/32",
   "next_hop": "2001:db8:2ff::2"
  },
  {
   "prefix": "2001:db8:200:1::/64",
   "next_hop": "2001:db8:2ff::2"
  },
  {
   "prefix": "2001:db8:2fe::1/128",
   "next_hop": "2001:db8:2ff::2"
  }
 ]
}
"""


def test_format_is_sorted_and_keeps_only_prefix_and_next_hop() -> None:
    assert format_ledger(ROUTES) == TEXT
    assert parse_ledger(TEXT) == {Route(r.prefix, r.next_hop) for r in ROUTES}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"schema": "other", "routes": []}',
        '{"schema": "sixpod.announced/1"}',
        '{"schema": "sixpod.announced/1", "routes": [1]}',
        '{"schema": "sixpod.announced/1", "routes": [{"prefix": "203.0.113.9/32"}]}',
        '{"schema": "sixpod.announced/1", "routes": [{"prefix": "203.0.113.9/32", '
        '"next_hop": "192.0.2.1"}]}',
        '{"schema": "sixpod.announced/1", "routes": [{"prefix": "203.0.113.9/24", '
        '"next_hop": "2001:db8::1"}]}',
    ],
)
def test_bad_ledgers_are_our_error(text: str) -> None:
    with pytest.raises(LedgerError):
        parse_ledger(text)


@given(st.text())
def test_garbage_in_only_our_error_out(text: str) -> None:
    with contextlib.suppress(LedgerError):
        parse_ledger(text)
