"""Golden responses: the exact bytes Razor sends for a fixed config, state and random seed.

``SIXPOD_UPDATE_GOLDEN=1`` rewrites ``data/responses.golden``; review the diff (every line is
a query and the hex of its response, decoded beside it by dnspython for the reviewer).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import dns.message

from razorkit import config, state
from sixpod.razor.engine import Engine

GOLDEN = Path(__file__).parent / "data" / "responses.golden"
QUERIES = [
    ("Route.Example.NET", "A", {}),
    ("route.example.net", "AAAA", {"use_edns": 0}),
    ("route.example.net", "SOA", {}),
    ("route.example.net", "NS", {"use_edns": 0, "want_dnssec": True}),
    ("shop.route.example.net", "A", {}),
    ("shop.route.example.net", "MX", {}),
    ("nope.route.example.net", "A", {}),
    ("dns.route.example.net", "A", {}),
    ("www.shop.example", "AAAA", {}),
    ("route.example.net", "ANY", {}),
    ("example.com", "A", {}),
]


def render() -> str:
    e = Engine(config(), state(), rng=random.Random(2026))
    lines = []
    for i, (name, rdtype, kw) in enumerate(QUERIES):
        q = dns.message.make_query(name, rdtype, **kw)
        q.id = i
        out = e.respond(q.to_wire(), "192.0.2.1", 0.0)
        assert out is not None
        summary = " | ".join(
            str(rr).replace("\n", " / ")
            for rr in (*dns.message.from_wire(out).answer, *dns.message.from_wire(out).authority)
        )
        lines.append(f"{name} {rdtype} {kw}\n  {out.hex()}\n  # {summary}")
    return "\n".join(lines) + "\n"


def test_responses_match_golden() -> None:
    text = render()
    if os.environ.get("SIXPOD_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
