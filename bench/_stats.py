"""The one percentile of the benchmarks.

Every benchmark reports its latencies with :func:`percentile`, so a p99 means the same in
``publish``, ``edge``, ``dns`` and ``routing``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["percentile"]


def percentile(values: Iterable[float], q: float, *, interpolate: bool = False) -> float:
    """The ``q`` quantile (0 <= q <= 1) of ``values``; NaN if there are none.

    By default a sample: the one at rank ``floor(q * n)`` of the sorted values (the largest
    for q = 1), so a p99 of 100 samples is the largest but one. With ``interpolate``, linear
    interpolation between the closest ranks (numpy's default), for the few samples of a
    fault trial, where a median should fall between the two middle ones.
    """
    if not 0 <= q <= 1:
        raise ValueError(f"quantile {q}: expected 0..1")
    xs = sorted(values)
    if not xs:
        return math.nan
    if not interpolate:
        return xs[min(len(xs) - 1, int(q * len(xs)))]
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
