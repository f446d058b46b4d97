"""The edge agent: supervises nginx and keeps its tables equal to the local replica's state.

Deltas go to nginx as they arrive from :class:`~sixpod.tenants.reader.TenantReader`; a full
push (in chunks) happens on bootstrap, on a reader resync and whenever nginx no longer holds
this agent's generation marker (nginx restarted, or a reload emptied a shared dict).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from pathlib import Path
from typing import Any

import httpx

from sixpod.edge import metrics, tables
from sixpod.edge.config import EdgeConfig
from sixpod.edge.nginxconf import ADMIN_SOCKET
from sixpod.tenants.model import Changed
from sixpod.tenants.reader import ReaderSettings, TenantReader, TenantState

log = logging.getLogger(__name__)


class EdgeError(Exception):
    """The edge could not do what was asked; ``exit_code`` is the process's exit status."""

    exit_code = 1


class Agent:
    def __init__(self, cfg: EdgeConfig) -> None:
        self.cfg = cfg
        self.generation = ""
        self.full_pushes = 0
        self.deltas = 0
        self.pending: list[Changed] = []
        self.wake = asyncio.Event()
        self.nginx: asyncio.subprocess.Process | None = None
        self.nginx_status: dict[str, Any] = {}
        self.nginx_stats: dict[str, float] = {}
        self._stats_at = float("-inf")
        run = Path(cfg.run_dir)
        self.admin_sock = run / ADMIN_SOCKET
        self.client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(self.admin_sock)),
            base_url="http://admin",
            timeout=10.0,
        )
        self.reader = TenantReader(
            ReaderSettings(
                address=cfg.redis.address,
                password_file=cfg.redis.password_file,
                prefix=cfg.redis.prefix,
            )
        )
        self.reader.add_listener(self._changed)

    def _changed(self, state: TenantState, changed: Changed) -> None:
        self.pending.append(changed)
        self.wake.set()

    # -- nginx ---------------------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        run = Path(self.cfg.run_dir)
        run.mkdir(parents=True, exist_ok=True)
        admin = run / "admin"
        admin.mkdir(mode=0o700, exist_ok=True)
        os.chmod(admin, 0o700)  # nginx makes the socket 0666: the directory guards it
        with contextlib.suppress(FileNotFoundError):
            self.admin_sock.unlink()

    def nginx_running(self) -> bool:
        try:
            pid = int((Path(self.cfg.run_dir) / "nginx.pid").read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        return self.admin_sock.exists()

    async def _adopt_or_start_nginx(self) -> None:
        """Adopt an nginx left running by a previous agent (traffic never stops), else start."""
        if self.nginx_running():
            log.info("edge: adopting the running nginx")
            return
        if self.nginx is not None and self.nginx.returncode is None:
            return
        self._prepare_dirs()
        log.info("edge: starting nginx")
        self.nginx = await asyncio.create_subprocess_exec(
            *self.cfg.nginx,
            "-c",
            self.cfg.nginx_conf,
            "-e",
            self.cfg.error_log,
            start_new_session=True,
        )
        for _ in range(100):
            if self.admin_sock.exists():
                return
            if self.nginx.returncode is not None:
                raise EdgeError(f"nginx exited with status {self.nginx.returncode}")
            await asyncio.sleep(0.05)
        raise EdgeError("nginx did not open its admin socket within 5 s")

    # -- pushing -------------------------------------------------------------------------

    async def _post(self, batch: dict[str, Any]) -> int:
        r = await self.client.post("/apply", json=batch)
        if r.status_code not in (200, 409):
            raise EdgeError(f"nginx refused a batch: {r.status_code} {r.text.strip()}")
        return r.status_code

    async def push_full(self) -> None:
        state = self.reader.state
        self.generation = secrets.token_hex(8)
        self.pending.clear()
        for batch in tables.full(state, self.generation, self.cfg.chunk_apps):
            await self._post(batch)
            await asyncio.sleep(0)
        self.full_pushes += 1
        log.info("edge: full state pushed at revision %d", state.revision)

    async def nginx_state(self) -> dict[str, Any]:
        r = await self.client.get("/state")
        data: dict[str, Any] = r.json()
        return data

    async def _sync_loop(self) -> None:
        await self.reader.ready.wait()
        while True:
            try:
                if not self.nginx_running():
                    await self._adopt_or_start_nginx()
                st = self.nginx_status = await self.nginx_state()
                now = asyncio.get_running_loop().time()
                if now - self._stats_at >= self.cfg.check_interval:
                    self._stats_at = now  # counters are for scrapes: not on every delta
                    self.nginx_stats = (await self.client.get("/stats")).json()
                if st.get("generation") != self.generation or not st.get("ready"):
                    await self.push_full()
                while self.pending:
                    changed = self.pending.pop(0)
                    if changed.resync:
                        await self.push_full()
                        break
                    batch = tables.delta(self.reader.state, changed, self.generation)
                    if await self._post(batch) == 409:
                        await self.push_full()
                        break
                    self.deltas += 1
            except (httpx.HTTPError, OSError, ValueError, EdgeError) as e:
                log.warning("edge: nginx admin unreachable (%s); retrying", e)
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.cfg.check_interval)

    async def run(self, stop: asyncio.Event) -> None:
        await self._adopt_or_start_nginx()
        if self.cfg.metrics is not None:
            metrics.serve(self, self.cfg.metrics)
        await self.reader.start()
        sync = asyncio.create_task(self._sync_loop())
        try:
            await stop.wait()
        finally:
            sync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sync
            await self.reader.stop()
            await self.client.aclose()


async def _main(cfg: EdgeConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    agent = Agent(cfg)
    try:
        await agent.run(stop)
    except EdgeError as e:
        log.error("edge: %s", e)
        return e.exit_code
    return 0


def main(cfg: EdgeConfig) -> int:
    """Run the agent until SIGTERM; nginx is left serving (it runs in its own session)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return asyncio.run(_main(cfg))
