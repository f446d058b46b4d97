"""The edge side of ``bench/run publish``: a TenantReader on the replica, in its own process.

``python -m bench._publish_reader ADDRESS PASSWORD_FILE OUT.json``. Prints ``READY`` once
bootstrapped; on SIGTERM writes what it saw (revision and wall time of each applied entry,
bootstrap time, CPU seconds, memory) to ``OUT.json`` and exits.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys
import time
from pathlib import Path

import uvloop

from sixpod import addr
from sixpod.tenants.model import Changed
from sixpod.tenants.reader import ReaderSettings, TenantReader, TenantState


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def main(address: str, password_file: str, out: str) -> None:
    base_rss = rss_bytes()
    reader = TenantReader(
        ReaderSettings(address=addr.parse_endpoint(address), password_file=password_file)
    )
    applied: list[tuple[int, float]] = []

    def seen(_state: TenantState, changed: Changed) -> None:
        if not changed.resync:
            applied.append((changed.revision, time.time()))

    reader.add_listener(seen)
    t0 = time.monotonic()
    await reader.start()
    await reader.ready.wait()
    bootstrap = time.monotonic() - t0
    loaded_rss = rss_bytes()
    print(f"READY {reader.state.revision} {reader.state.endpoint_count()}", flush=True)
    cpu0 = time.process_time()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    cpu = time.process_time() - cpu0
    await reader.stop()
    Path(out).write_text(
        json.dumps(
            {
                "applied": applied,
                "bootstrap_seconds": bootstrap,
                "endpoints": reader.state.endpoint_count(),
                "state_bytes": loaded_rss - base_rss,
                "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "cpu_seconds": cpu,
                "resyncs": reader.resyncs,
            }
        )
    )


if __name__ == "__main__":
    uvloop.run(main(*sys.argv[1:4]))
