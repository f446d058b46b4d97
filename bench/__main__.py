"""Run one benchmark and print its result as the last line, one JSON object.

Each module ``bench.NAME`` defines ``run() -> dict`` returning ``figures``, ``anchors``,
``ratios`` and ``targets`` (``{KEY: {"value": v, "target": ">= 120000", "met": bool}}``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from typing import Any

import bench

KEYS = ("figures", "anchors", "ratios", "targets")


def available() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_")
    )


def target_met(value: float, target: str) -> bool:
    """Evaluate a target such as ``">= 0.5"`` or ``"< 50"`` against a value."""
    op, _, bound = target.partition(" ")
    limit = float(bound)
    checks = {
        ">=": value >= limit,
        ">": value > limit,
        "<=": value <= limit,
        "<": value < limit,
        "==": value == limit,
    }
    if op not in checks:
        raise ValueError(f"bad target {target!r}: expected '<op> <number>'")
    return checks[op]


def finish(name: str, result: dict[str, Any]) -> dict[str, Any]:
    missing = [k for k in KEYS if k not in result]
    if missing:
        raise SystemExit(f"bench {name}: result lacks {', '.join(missing)}")
    for key, t in result["targets"].items():
        t["met"] = target_met(float(t["value"]), str(t["target"]))
        result["targets"][key] = {"value": t["value"], "target": t["target"], "met": t["met"]}
    return {"bench": name, **{k: result[k] for k in KEYS}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("name", choices=available())
    args = parser.parse_args(argv)
    module = importlib.import_module(f"bench.{args.name}")
    out = finish(args.name, module.run())
    print(json.dumps(out, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
