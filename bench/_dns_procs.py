"""Processes for the DNS benchmark: pinned servers stopped by PID, dnsperf and its output."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench._stats import percentile

SERVER_CPU = 0
CLIENT_CPU = 1


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (bound, then closed)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port")


def _query(name: str, qid: int) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + labels + struct.pack("!HH", 1, 1)


def wait_answering(port: int, name: str, timeout: float = 20.0) -> None:
    """Poll with a real query until the server answers it (bounded)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        qid = 1
        while time.monotonic() < deadline:
            s.sendto(_query(name, qid), ("127.0.0.1", port))
            with contextlib.suppress(TimeoutError):
                data = s.recv(4096)
                if data[:2] == struct.pack("!H", qid):
                    return
            qid += 1
    raise RuntimeError(f"nothing answers {name} on port {port} after {timeout} s")


@contextlib.contextmanager
def pinned(argv: Sequence[str], log: Path, cpu: int = SERVER_CPU) -> Iterator[int]:
    """Run ``argv`` pinned to ``cpu`` in its own process group; SIGTERM, then SIGKILL, by PID."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@dataclass(frozen=True)
class PerfResult:
    qps: float
    sent: int
    completed: int
    lost: int
    avg_latency: float
    latencies: tuple[float, ...] = ()

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile (0-100) of the latencies, in seconds."""
        return percentile(self.latencies, p / 100)


def _num(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    if m is None:
        raise RuntimeError(f"dnsperf output lacks {pattern!r}:\n{text[-2000:]}")
    return float(m.group(1))


def dnsperf(
    port: int,
    queries: Path,
    seconds: float,
    *,
    clients: int = 4,
    outstanding: int = 200,
    max_qps: int | None = None,
    verbose: bool = False,
) -> PerfResult:
    """Run dnsperf pinned to CLIENT_CPU against 127.0.0.1:port; parse its statistics."""
    argv = ["taskset", "-c", str(CLIENT_CPU), "dnsperf", "-s", "127.0.0.1", "-p", str(port)]
    argv += ["-d", str(queries), "-l", str(seconds), "-c", str(clients)]
    argv += ["-q", str(outstanding), "-t", "2"]
    if max_qps is not None:
        argv += ["-Q", str(max_qps)]
    if verbose:
        argv.append("-v")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    text = r.stdout + r.stderr
    if r.returncode != 0:
        raise RuntimeError(f"dnsperf failed ({r.returncode}):\n{text[-2000:]}")
    lat: tuple[float, ...] = ()
    if verbose:
        lat = tuple(float(m) for m in re.findall(r"^> \S+ \S+ \S+ ([0-9.]+)$", text, re.M))
    return PerfResult(
        qps=_num(r"Queries per second:\s+([0-9.]+)", text),
        sent=int(_num(r"Queries sent:\s+([0-9]+)", text)),
        completed=int(_num(r"Queries completed:\s+([0-9]+)", text)),
        lost=int(_num(r"Queries lost:\s+([0-9]+)", text)),
        avg_latency=_num(r"Average Latency \(s\):\s+([0-9.]+)", text),
        latencies=lat,
    )
