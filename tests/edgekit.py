"""The edge under test: real nginx, real Redis and the real publishing path.

store -> publisher -> Redis primary -> replica -> reader -> agent -> nginx. nginx and the
backends run in a network namespace the test creates, with endpoint addresses inside a node
/64 of ``examples/pod.lock``; the agent (root namespace) reaches nginx over its unix socket.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sixpod.edge.config import EdgeConfig
from sixpod.edge.nginxconf import nginx_conf
from sixpod.inventory.lock import parse_lock
from sixpod.lab.redisproc import RedisServer, redis_server
from sixpod.lab.redisproc import wait_until as wait_redis
from sixpod.tenants.model import EndpointSpec
from sixpod.tenants.store import Store
from tenantkit import RunningPublisher, open_store

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "examples" / "pod.lock"
LUA = ROOT / "src" / "sixpod" / "edge" / "lua"
BACKEND = ROOT / "tests" / "edge" / "backend.py"
NODE_NET = "2001:db8:100:1"  # r1-edge1's /64 in examples/pod.lock
BACKENDS = {"a": f"{NODE_NET}::a", "b": f"{NODE_NET}::b", "c": f"{NODE_NET}::c"}
PORT = 8080


def wait_until(cond: Callable[[], object], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout} s")


class Netns:
    def __init__(self) -> None:
        self.name = f"sixpod-edge-{secrets.token_hex(3)}"
        self.procs: list[subprocess.Popen[bytes]] = []

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            check=check,
            capture_output=True,
            text=True,
            timeout=20,
        )

    def popen(self, *argv: str) -> subprocess.Popen[str]:
        """A process in the namespace with its stdin and stdout as text pipes."""
        p = subprocess.Popen(
            ["ip", "netns", "exec", self.name, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(p)  # type: ignore[arg-type]
        return p

    def spawn(self, *argv: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(["ip", "netns", "exec", self.name, *argv])
        self.procs.append(p)
        return p

    def get(
        self, host: str, path: str = "/", *extra: str, base: str = f"http://[::1]:{PORT}"
    ) -> tuple[int, str, dict[str, str]]:
        r = self.run(
            "curl",
            "-s",
            "-g",
            "-o",
            "-",
            "-D",
            "/dev/stderr",
            "-H",
            f"Host: {host}",
            "--max-time",
            "10",
            *extra,
            f"{base}{path}",
            check=False,
        )
        lines = r.stderr.splitlines()
        status = int(lines[0].split()[1]) if lines else 0
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if v:
                headers[k.strip().lower()] = v.strip()
        return status, r.stdout, headers


@pytest.fixture
def netns() -> Iterator[Netns]:
    ns = Netns()
    subprocess.run(["ip", "netns", "add", ns.name], check=True)
    try:
        subprocess.run(["ip", "-n", ns.name, "link", "set", "lo", "up"], check=True)
        for ip in BACKENDS.values():
            subprocess.run(
                ["ip", "-n", ns.name, "addr", "add", f"{ip}/128", "dev", "lo", "nodad"],
                check=True,
            )
        yield ns
    finally:
        for p in ns.procs:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait(timeout=10)
            for pipe in (p.stdin, p.stdout):
                if pipe is not None:
                    pipe.close()
        subprocess.run(["ip", "netns", "del", ns.name], check=False)


@pytest.fixture
def pod(tmp_path: Path) -> Iterator[tuple[Store, RedisServer]]:
    lock = parse_lock(LOCK.read_text(), "pod.lock")[0]
    store = open_store(f"sqlite:///{tmp_path / 't.db'}", lock)
    try:
        with (
            redis_server(tmp_path, host="::1") as primary,
            redis_server(tmp_path, host="::1", replica_of=primary) as replica,
        ):
            wait_redis(lambda: replica.info("replication")["master_link_status"] == "up")
            with RunningPublisher(store, primary, debounce=0):
                yield store, replica
    finally:
        store.close()


class Edge:
    def __init__(self, tmp: Path, ns: Netns, replica: RedisServer) -> None:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            metrics_port = s.getsockname()[1]
        self.metrics_url = f"http://[::1]:{metrics_port}/metrics"
        self.tmp = tmp
        self.ns = ns
        run = tmp / "run"
        self.data = {
            "node": "r1-edge1",
            "listen": [f"[::1]:{PORT}", f"127.0.0.1:{PORT}"],
            "health": "[::1]:8081",
            "run_dir": str(run),
            "nginx_conf": str(tmp / "nginx.conf"),
            "lua_dir": str(LUA),
            "access_log": str(tmp / "access.log"),
            "error_log": str(tmp / "error.log"),
            "nginx": ["ip", "netns", "exec", ns.name, "/usr/sbin/nginx"],
            "workers": 2,
            "check_interval": 0.2,
            "stats_interval": 0.2,
            "metrics": f"[::1]:{metrics_port}",
            "redis": {
                "address": f"[::1]:{replica.port}",
                "password_file": str(replica.password_file),
            },
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.configure()

    def configure(self, **changes: object) -> None:
        """Write edge.yaml and nginx.conf from the data, with ``changes`` applied."""
        self.data.update(changes)
        cfg = EdgeConfig.model_validate(self.data)
        (self.tmp / "nginx.conf").write_text(nginx_conf(cfg))
        (self.tmp / "edge.yaml").write_text(json.dumps(self.data))

    def status(self) -> dict[str, object]:
        r = self.ns.run("curl", "-s", "-g", "http://[::1]:8081/status", check=False)
        return json.loads(r.stdout) if r.stdout else {}

    def scrape(self) -> str:
        import httpx

        try:
            return httpx.get(self.metrics_url, timeout=5).text
        except httpx.HTTPError:
            return ""

    def metric(self, name: str) -> float:
        for line in self.scrape().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return math.nan

    def start(self) -> None:
        """Start the agent; what it logs goes to ``agent.log``."""
        with (self.tmp / "agent.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "sixpod"),
                    "edge-agent",
                    "--config",
                    str(self.tmp / "edge.yaml"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def admin(self, batch: dict[str, object]) -> dict[str, object]:
        """POST a batch to nginx's admin socket, as the agent does: the answer, with ``ok``."""
        import httpx

        transport = httpx.HTTPTransport(uds=str(self.tmp / "run" / "admin" / "admin.sock"))
        with httpx.Client(transport=transport, base_url="http://admin", timeout=5) as c:
            r = c.post("/apply", json=batch)
        return {**r.json(), "ok": r.status_code == 200}

    def kill_agent(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def nginx_pid(self) -> int:
        return int((self.tmp / "run" / "nginx.pid").read_text())

    def health(self) -> int:
        r = self.ns.run(
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-g",
            "http://[::1]:8081/healthz",
            check=False,
        )
        return int(r.stdout or 0)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        with contextlib.suppress(OSError, ValueError):
            os.kill(self.nginx_pid(), signal.SIGTERM)
            wait_until(lambda: not (self.tmp / "run" / "nginx.pid").exists(), timeout=10)


@pytest.fixture
def edge(tmp_path: Path, netns: Netns, pod: tuple[Store, RedisServer]) -> Iterator[Edge]:
    for name, ip in BACKENDS.items():
        netns.spawn(sys.executable, str(BACKEND), ip, str(PORT), name)
    e = Edge(tmp_path, netns, pod[1])
    try:
        yield e
    finally:
        e.stop()


def ep(name: str, **kw: Any) -> EndpointSpec:
    return EndpointSpec.parse(BACKENDS[name], PORT, **kw)


def answer(ns: Netns, host: str) -> str:
    status, body, _ = ns.get(host)
    return json.loads(body)["name"] if status == 200 else str(status)
