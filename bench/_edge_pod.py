"""The tenants side of the edge benchmark: the store, the real controller, the edge agent.

The store is bulk-loaded (``bench.publish.bulk_load``: ``app{N}`` with 10 endpoints each
over the pod's node /64s) plus one domain per app (``app{N}.bench.example``) and a few
one-endpoint apps (``mv{N}``) whose endpoint the change test moves. ``sixpod controller``
then runs on that database (its publisher rebuilds the empty Redis primary from the store),
and ``sixpod edge-agent`` follows the replica: the real publishing path.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench._edge_nginx import read_pid
from bench._edge_ns import Proc, UnixHttp, stop_group
from bench.publish import PER_APP, Pod, bulk_load
from sixpod.edge.config import EdgeConfig
from sixpod.edge.nginxconf import ADMIN_SOCKET, nginx_conf
from sixpod.inventory.lock import Lock
from sixpod.lab.redisproc import RedisServer, free_port
from sixpod.tenants.schema import apps_t, domains_t, endpoints_t, revision_t
from sixpod.tenants.store import Store

ROOT = Path(__file__).resolve().parents[1]
SIXPOD = str(ROOT / ".venv" / "bin" / "sixpod")
PORT = 8080  # every endpoint's port (bulk_load's)
ZONE = "bench.example"


def log(msg: str) -> None:
    print(f"[edge] {msg}", file=sys.stderr, flush=True)


def wait_for(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def host_of(app: str) -> str:
    return f"{app}.{ZONE}"


class Tenants:
    """What the store holds, computed the way bulk_load lays it out (no read-back needed)."""

    def __init__(self, lock: Lock, apps: int, movers: int) -> None:
        self.pod = Pod(lock)
        self.apps = apps
        self.movers = [f"mv{i}" for i in range(movers)]
        self.mover_addr = {
            name: self.pod.address(apps * PER_APP + i) for i, name in enumerate(self.movers)
        }
        self.fresh = apps * PER_APP + movers  # next unused endpoint index
        self.extra_domains: dict[str, list[str]] = {}  # attached through the API

    def endpoints(self, a: int) -> list[str]:
        return [self.pod.address(i) for i in range(a * PER_APP, (a + 1) * PER_APP)]

    def new_address(self) -> str:
        self.fresh += 1
        return self.pod.address(self.fresh)

    def names(self) -> list[str]:
        return [f"app{a}" for a in range(self.apps)] + self.movers


def load_store(url: str, lock: Lock, t: Tenants) -> int:
    """Bulk-load apps, endpoints, domains and the movers; return the store's head revision."""
    store = Store(url, lock=lock)
    try:
        store.migrate()
        store.sync_pool()
        bulk_load(store, t.pod, t.apps * PER_APP)
        with store.engine.begin() as conn:
            step = 50_000
            for start in range(0, t.apps, step):
                conn.execute(
                    domains_t.insert(),
                    [
                        {"name": host_of(f"app{a}"), "app": f"app{a}", "revision": 1}
                        for a in range(start, min(t.apps, start + step))
                    ],
                )
            rows = [
                {"name": m, "owner": "", "shard_seed": 0, "settings": "{}", "revision": 1}
                for m in t.movers
            ]
            if rows:
                conn.execute(apps_t.insert(), rows)
                conn.execute(
                    endpoints_t.insert(),
                    [
                        {
                            "app": m,
                            "address": t.mover_addr[m],
                            "port": PORT,
                            "node": "",
                            "weight": 100,
                            "state": "up",
                            "revision": 1,
                        }
                        for m in t.movers
                    ],
                )
                conn.execute(
                    domains_t.insert(),
                    [{"name": host_of(m), "app": m, "revision": 1} for m in t.movers],
                )
            conn.execute(revision_t.update().values(value=revision_t.c.value + 1))
        return store.head()
    finally:
        store.close()


class Controller:
    """``sixpod controller`` on ``[::1]`` over the bulk-loaded database."""

    def __init__(self, work: Path, db_url: str, primary: RedisServer, **extra: Any) -> None:
        self.port = free_port("::1")
        self.token = secrets.token_hex(16)
        (work / "token").write_text(self.token + "\n")
        cfg = {
            "listen": [f"[::1]:{self.port}"],
            "token_file": str(work / "token"),
            "database": db_url,
            "lock": str(ROOT / "examples" / "pod.lock"),
            "redis": {"address": primary.address, "password_file": str(primary.password_file)},
            **extra,
        }
        (work / "controller.yaml").write_text(json.dumps(cfg))
        self.url = f"http://[::1]:{self.port}"
        self.proc = Proc(
            [SIXPOD, "controller", "--config", str(work / "controller.yaml")],
            work / "controller.log",
        )

    def up(self) -> bool:
        if not self.proc.alive():
            raise RuntimeError(
                "controller exited:\n" + self.proc.log.read_text(errors="replace")[-3000:]
            )
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )

    def stop(self) -> None:
        self.proc.stop()


def replica_revision(replica: RedisServer) -> Callable[[], int]:
    """A fast poll of the replica's published revision (one open connection)."""
    client = replica.client()

    def rev() -> int:
        v = client.hget("sixpod:meta", "revision")
        return int(v) if v is not None else -1

    return rev


def replica_ready(replica: RedisServer, head: int) -> bool:
    with replica.client() as c:
        meta = c.hgetall("sixpod:meta")
    return meta.get("state") == "ready" and int(meta.get("revision", -1)) >= head


class EdgeAgent:
    """``sixpod edge-agent`` whose nginx runs in the namespace (``nginx_prefix``)."""

    def __init__(
        self,
        work: Path,
        name: str,
        replica: RedisServer,
        listen: str,
        nginx_prefix: list[str],
        workers: int,
        **extra: Any,
    ) -> None:
        self.dir = work / name
        self.dir.mkdir()
        self.run_dir = self.dir / "run"
        self.data: dict[str, Any] = {
            "node": "r1-edge1",
            "listen": [listen],
            "health": "[::1]:8081",
            "run_dir": str(self.run_dir),
            "nginx_conf": str(self.dir / "nginx.conf"),
            # the agent installs its own Lua module (the package's, src/sixpod/edge/lua) here
            "lua_dir": str(self.dir / "lua"),
            "access_log": str(self.dir / "access.log"),
            "error_log": str(self.dir / "error.log"),
            "nginx": [*nginx_prefix, "/usr/sbin/nginx"],
            "workers": workers,
            "redis": {"address": replica.address, "password_file": str(replica.password_file)},
            **extra,
        }
        self.cfg = EdgeConfig.model_validate(self.data)
        (self.dir / "nginx.conf").write_text(nginx_conf(self.cfg))
        (self.dir / "edge.yaml").write_text(json.dumps(self.data, indent=1))
        self.access_log = self.dir / "access.log"
        self.proc: Proc | None = None
        self.admin = UnixHttp(self.run_dir / ADMIN_SOCKET)
        self.master: int | None = None

    def start(self) -> None:
        self.proc = Proc(
            [SIXPOD, "edge-agent", "--config", str(self.dir / "edge.yaml")], self.dir / "agent.log"
        )

    def logs(self, chars: int = 3000) -> str:
        """The tails of the agent's log and nginx's error log, for error messages."""
        out = []
        for f in (self.dir / "agent.log", self.dir / "error.log"):
            try:
                out.append(f"{f.name}:\n{f.read_text(errors='replace')[-chars:]}")
            except FileNotFoundError:
                out.append(f"{f.name}: (none)")
        return "\n".join(out)

    def check_alive(self) -> None:
        if self.proc is not None and not self.proc.alive():
            raise RuntimeError(
                "edge agent exited:\n" + self.proc.log.read_text(errors="replace")[-3000:]
            )

    def state(self) -> dict[str, Any] | None:
        """nginx's ``/state`` over the admin socket, or None while it is not there."""
        if not self.admin.path.exists():
            return None
        try:
            status, body = self.admin.get("/state")
        except OSError:
            return None
        if status != 200:
            return None
        data: dict[str, Any] = json.loads(body)
        return data

    def nginx_pid(self) -> int | None:
        pid = read_pid(self.run_dir / "nginx.pid")
        if pid is not None:
            self.master = pid
        return pid

    def stop(self) -> None:
        """The agent (SIGTERM), then its nginx (it runs in a session of its own)."""
        if self.proc is not None:
            self.proc.stop()
        self.admin.close()
        pid = self.nginx_pid() or self.master
        if pid is not None:
            stop_group(pid)
