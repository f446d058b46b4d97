"""The whole pod on this machine: time to come up, memory, the journey, every drill.

Through the command line an operator uses: ``sixpod lab up POD`` (``examples/pod.yaml``, or
``SIXPOD_BENCH_LAB_POD``) timed from the command to its exit (the pod up and serving),
then the memory of every process in the lab's namespaces (proportional set size from
``/proc/PID/smaps_rollup``, so shared pages count once), ``sixpod lab test --json`` (the
journey), each drill with ``--json`` in turn (its figures, and whether the pod behaved),
and ``sixpod lab down``. No anchor: these are the lab's own figures. About 10 minutes for
``examples/pod.yaml`` on 2 cores; run ``flock /tmp/sixpod-bench.lock bench/run lab`` (root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIXPOD = str(Path(sys.executable).with_name("sixpod"))
POD = Path(os.environ.get("SIXPOD_BENCH_LAB_POD", str(ROOT / "examples" / "pod.yaml")))
TIMEOUT = 900.0


def log(text: str) -> None:
    print(f"bench lab: {text}", file=sys.stderr, flush=True)


def sixpod(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SIXPOD, *args], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def lab_memory(prefix: str) -> dict[str, float]:
    """PSS in MiB of every process inside a network namespace whose name starts with
    ``prefix`` (the lab's), by program name, and the total."""
    inodes = {
        os.stat(f"/run/netns/{ns}").st_ino
        for ns in os.listdir("/run/netns")
        if ns.startswith(prefix)
    }
    by_program: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino not in inodes:
                continue
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue  # gone meanwhile, or a kernel thread
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                kib = int(line.split()[1])
                by_program[comm] = by_program.get(comm, 0.0) + kib / 1024
    out = {k: round(v, 1) for k, v in sorted(by_program.items(), key=lambda kv: -kv[1])}
    out["total"] = round(sum(by_program.values()), 1)
    return out


def _numbers(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Flatten ``value``'s numbers into ``out`` as ``prefix_key`` (bools as they are)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _numbers(f"{prefix}_{k}", v, out)
    elif isinstance(value, bool | int | float):
        out[prefix] = value


def run() -> dict[str, Any]:
    from sixpod.lab.drills import DRILLS

    work = Path(tempfile.mkdtemp(prefix="sixpod-bench-lab-"))
    workdir = work / "lab"
    figures: dict[str, Any] = {"pod": POD.name}
    log(f"lab up {POD} in {workdir}")
    t0 = time.monotonic()
    try:
        up = sixpod("lab", "up", str(POD), "--workdir", str(workdir))
        figures["up_s"] = round(time.monotonic() - t0, 1)
        if up.returncode != 0:
            raise RuntimeError(f"lab up failed: {up.stderr.strip()[-2000:]}")
        prefix = json.loads((workdir / "lab.json").read_text())["box"]["prefix"]
        memory = lab_memory(prefix)
        figures["memory_mib"] = memory.pop("total")
        figures["memory_mib_by_program"] = memory
        log(f"up in {figures['up_s']} s, {figures['memory_mib']} MiB; the journey")
        t0 = time.monotonic()
        journey = sixpod("lab", "test", "--workdir", str(workdir), "--json")
        figures["journey_s"] = round(time.monotonic() - t0, 1)
        figures["journey_ok"] = journey.returncode == 0
        if journey.returncode == 0:
            _numbers("journey", json.loads(journey.stdout), figures)
        else:
            figures["journey_error"] = journey.stderr.strip()[-500:]
        for name in sorted(DRILLS):
            log(f"drill {name}")
            t0 = time.monotonic()
            drill = sixpod("lab", "drill", name, "--workdir", str(workdir), "--json")
            figures[f"drill_{name}_s"] = round(time.monotonic() - t0, 1)
            try:
                result = json.loads(drill.stdout)
            except json.JSONDecodeError:
                figures[f"drill_{name}_ok"] = False
                figures[f"drill_{name}_error"] = drill.stderr.strip()[-500:]
                continue
            figures[f"drill_{name}_ok"] = bool(result.get("ok"))
            _numbers(f"drill_{name}", result.get("figures", {}), figures)
            if result.get("problems"):
                figures[f"drill_{name}_problems"] = result["problems"]
    finally:
        down = sixpod("lab", "down", "--workdir", str(workdir))
        if down.returncode != 0:
            log(f"lab down: {down.stderr.strip()}; its files stay in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return {"figures": figures, "anchors": {}, "ratios": {}, "targets": {}}
