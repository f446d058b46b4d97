"""The API side of ``bench/run publish``: commits app churn to the store, in its own process.

``python -m bench._publish_driver DB_URL ENDPOINTS SECONDS OUT.json``; writes the revision and
wall time of every commit, and the CPU seconds spent, to ``OUT.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bench.publish import ROOT, Pod, drive, guard_limits
from sixpod.inventory.lock import parse_lock
from sixpod.tenants.store import Store


def main(url: str, endpoints: int, seconds: float, out: str) -> None:
    lock = parse_lock((ROOT / "examples" / "pod.lock").read_text(), "pod.lock")[0]
    store = Store(url, lock=lock, guard=guard_limits())
    cpu0, wall0 = time.process_time(), time.monotonic()
    commits = drive(store, Pod(lock), endpoints, seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    Path(out).write_text(json.dumps({"commits": commits, "cpu_seconds": cpu, "seconds": wall}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
