"""Endpoint parse+format throughput: sixpod.addr against the naive stdlib path.

The anchor is the minimum any code must do: rsplit on ':', strip brackets,
``ipaddress.ip_address`` and ``str()``. Target: sixpod's validation costs at most 2x that.
"""

from __future__ import annotations

import ipaddress
import json
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sixpod.addr import format_endpoint, parse_endpoint

COUNT = 10_000
REPEATS = 5
TARGET = 0.5
T = TypeVar("T")


def _spell_v6(rng: random.Random, n: int) -> str:
    """A valid, often non-canonical spelling: uppercase, zero-padded, expanded or compressed."""
    groups = [f"{(n >> (112 - 16 * i)) & 0xFFFF:x}" for i in range(8)]
    style = rng.random()
    if style < 0.4:
        return str(ipaddress.IPv6Address(n))  # canonical
    if style < 0.6:
        return str(ipaddress.IPv6Address(n)).upper()
    if style < 0.8:
        return ":".join(g.zfill(4) for g in groups)  # fully expanded
    return ":".join(g.zfill(rng.randint(len(g), 4)) for g in groups)  # ragged padding


def endpoints(seed: int = 6) -> list[str]:
    """~10k endpoints as the publisher sees them: containers in node /64s, some IPv4 edges."""
    rng = random.Random(seed)
    pod = 0x20010DB80042 << 80  # 2001:db8:42::/48
    out = []
    for _ in range(COUNT):
        port = rng.choice((80, 443, 8080, 9100, rng.randint(1024, 65535)))
        if rng.random() < 0.8:
            node = rng.randint(0, 0x3FF) << 64
            low = rng.choice((rng.randint(1, 0xFFFF), rng.randint(1, 2**32), rng.getrandbits(64)))
            out.append(f"[{_spell_v6(rng, pod | node | low)}]:{port}")
        else:
            out.append(f"198.51.{rng.randint(0, 255)}.{rng.randint(1, 254)}:{port}")
    return out


def _sixpod(texts: list[str]) -> list[str]:
    return [format_endpoint(parse_endpoint(t)) for t in texts]


def _anchor(texts: list[str]) -> list[str]:
    out = []
    for t in texts:
        host, _, port = t.rpartition(":")
        ip = ipaddress.ip_address(host.strip("[]"))
        out.append(f"[{ip}]:{int(port)}" if ip.version == 6 else f"{ip}:{int(port)}")
    return out


def _best_ops(fn: Callable[[list[T]], object], items: list[T]) -> float:
    """Items per second over the whole list, best of REPEATS."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn(items)
        best = min(best, time.perf_counter() - start)
    return len(items) / best


def run() -> dict[str, object]:
    texts = endpoints()
    if _sixpod(texts) != _anchor(texts):  # same work, same answers (no mixed-notation inputs)
        raise AssertionError("sixpod and the anchor disagree")
    parsed = [parse_endpoint(t) for t in texts]
    sixpod = _best_ops(_sixpod, texts)
    anchor = _best_ops(_anchor, texts)
    parse_only = _best_ops(lambda ts: [parse_endpoint(t) for t in ts], texts)
    format_only = _best_ops(lambda es: [format_endpoint(e) for e in es], parsed)
    ratio = round(sixpod / anchor, 3)
    return {
        "figures": {
            "endpoints": len(texts),
            "parse_format_ops_per_s": round(sixpod),
            "parse_ops_per_s": round(parse_only),
            "format_ops_per_s": round(format_only),
        },
        "anchors": {"stdlib_parse_format_ops_per_s": round(anchor)},
        "ratios": {"parse_format_vs_stdlib": ratio},
        "targets": {
            "parse_format_vs_stdlib": {
                "value": ratio,
                "target": f">= {TARGET}",
                "met": ratio >= TARGET,
            }
        },
    }


if __name__ == "__main__":
    print(json.dumps(run()))
