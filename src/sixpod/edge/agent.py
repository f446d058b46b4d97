"""The edge agent: supervises nginx and keeps its tables equal to the local replica's state.

Deltas go to nginx as they arrive from :class:`~sixpod.tenants.reader.TenantReader`; a full
push (in chunks) happens on bootstrap, on a reader resync and whenever nginx no longer holds
this agent's generation marker (nginx restarted, or a reload emptied a shared dict).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import logging
import math
import os
import secrets
import signal
import time
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

from sixpod.edge import metrics, tables, tls, tlsfiles
from sixpod.edge.config import EdgeConfig
from sixpod.edge.errors import EdgeError
from sixpod.edge.nginxconf import ADMIN_SOCKET
from sixpod.metricshttp import MetricsServerError
from sixpod.tenants import sealed
from sixpod.tenants.model import Cert, Changed
from sixpod.tenants.reader import ReaderSettings, TenantReader, TenantState

log = logging.getLogger(__name__)

LUA_MODULE = "sixpod_edge.lua"
RELOAD_TIMEOUT = 10.0
"""Seconds a reload may take to start new workers before the agent calls it failed."""
CLOCK_SLACK = 0.02
"""Seconds a new worker's monotonic clock (a coarse one, in ms) may trail the agent's."""


class LatencyHistogram:
    """Counts per upper bound (seconds), for a histogram the collector exports."""

    BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

    def __init__(self) -> None:
        self.counts = [0] * (len(self.BOUNDS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.BOUNDS, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, n in zip((*self.BOUNDS, math.inf), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == math.inf else f"{bound:g}", float(running)))
        return out


class _Stale(Exception):
    """nginx answered 409: it holds another generation than the batch's."""


class Agent:
    def __init__(self, cfg: EdgeConfig) -> None:
        self.cfg = cfg
        self.generation = ""
        self.need_full = True
        self.full_pushes = 0
        self.deltas = 0
        self.push_errors = 0
        self.not_stored: set[str] = set()
        self.reloads = 0
        self.reload_failures = 0
        self.last_full_seconds = 0.0
        self._refused = ""
        self._stats_at = float("-inf")
        self.pending: list[tuple[Changed, float]] = []  # with the time the reader had it
        self.apply_seconds = LatencyHistogram()
        self.wake = asyncio.Event()
        self.nginx: asyncio.subprocess.Process | None = None
        self.nginx_status: dict[str, Any] = {}
        self.nginx_stats: dict[str, float] = {}
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
                certs=cfg.tls is not None,
            )
        )
        self.reader.add_listener(self._changed)
        self.seal_key = None
        if cfg.tls is not None:
            try:
                self.seal_key = sealed.load_private(cfg.tls.seal_key)
            except sealed.SealError as e:
                raise EdgeError(str(e)) from None
        self.certs_mark = secrets.token_hex(8)
        """What nginx's certificate table holds once this agent synced it whole."""
        self.need_tls_sync = cfg.tls is not None
        self.certs_not_stored: set[str] = set()
        self.unseal_failed: dict[str, str] = {}  # domain -> fingerprint that did not open
        self.pushed: dict[str, str] = {}
        """Certificate versions nginx holds (while it holds ``certs_mark``)."""
        self.challenges_pushed: dict[str, str] = {}
        self.ticket_rotations = 0

    def _changed(self, state: TenantState, changed: Changed) -> None:
        self.pending.append((changed, time.monotonic()))
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
        self._note_loaded()
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

    # -- nginx's own config --------------------------------------------------------------

    def _conf_digest(self) -> str:
        """What nginx runs: its config and the Lua module it loads."""
        h = hashlib.sha256(Path(self.cfg.nginx_conf).read_bytes())
        with contextlib.suppress(FileNotFoundError):
            h.update((Path(self.cfg.lua_dir) / LUA_MODULE).read_bytes())
        return h.hexdigest()

    def install_lua(self) -> None:
        """Put this agent's own Lua module at ``lua_dir`` (atomically) when it differs, so
        nginx runs the data plane that speaks this agent's admin protocol."""
        target = Path(self.cfg.lua_dir) / LUA_MODULE
        code = (resources.files("sixpod.edge") / "lua" / LUA_MODULE).read_bytes()
        with contextlib.suppress(FileNotFoundError):
            if target.read_bytes() == code:
                return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{LUA_MODULE}.{os.getpid()}")
        tmp.write_bytes(code)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        log.info("edge: installed %s", target)
        for d in target.parents:  # nginx's workers (user nobody) must reach the file
            if d.exists() and not os.stat(d).st_mode & 0o001:
                log.warning("edge: %s is closed to others: nginx may not load %s", d, target)
                break

    async def _prefixed(self, *argv: str) -> tuple[int, str]:
        """Run a command where nginx runs (``cfg.nginx`` minus the binary: a netns prefix)."""
        proc = await asyncio.create_subprocess_exec(
            *self.cfg.nginx[:-1],
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode(errors="replace")

    async def allow_nonlocal_bind(self) -> None:
        """Let nginx bind VIPs that are not on ``lo`` yet: the announcer adds them at its
        start and removes them at its stop, and neither may keep nginx from (re)starting."""
        if not self.cfg.nonlocal_bind:
            return
        code, out = await self._prefixed(
            "sysctl", "-q", "-w", "net.ipv4.ip_nonlocal_bind=1", "net.ipv6.ip_nonlocal_bind=1"
        )
        if code != 0:
            raise EdgeError(f"cannot allow nginx to bind absent VIPs (ip_nonlocal_bind): {out}")

    def _loaded_path(self) -> Path:
        return Path(self.cfg.run_dir) / "nginx.conf.loaded"

    def _note_loaded(self) -> None:
        self._loaded_path().write_text(self._conf_digest() + "\n")

    async def reload_if_changed(self) -> bool:
        """HUP nginx when nginx.conf differs from what it runs, after ``nginx -t`` passes."""
        try:
            loaded = self._loaded_path().read_text().strip()
        except FileNotFoundError:
            loaded = ""
        digest = self._conf_digest()
        if digest == loaded:
            return False
        if digest == self._refused:
            return False
        code, out = await self._prefixed(
            self.cfg.nginx[-1], "-t", "-q", "-c", self.cfg.nginx_conf, "-e", self.cfg.error_log
        )
        if code != 0:
            self._refused = digest
            self.reload_failures += 1
            log.error("edge: nginx.conf changed but fails nginx -t; not reloaded: %s", out)
            return False
        pid = await self._hup("nginx.conf changed and passed nginx -t; the old one serves on")
        if pid is None:
            # the master kept its old workers (init_by_lua failed, a resource ran out)
            self._refused = digest
            return False
        self._loaded_path().write_text(digest + "\n")
        self._refused = ""  # (while set, ticket rotations wait: a fixed config loaded)
        self.reloads += 1
        log.info("edge: nginx.conf changed; nginx reloaded (master %d)", pid)
        return True

    async def _hup(self, what: str) -> int | None:
        """SIGHUP the nginx master; its PID once new workers answer, or None (a counted,
        logged reload failure) when none did within RELOAD_TIMEOUT."""
        pid = int((Path(self.cfg.run_dir) / "nginx.pid").read_text().strip())
        sent = time.monotonic()
        os.kill(pid, signal.SIGHUP)
        if await self._new_workers_since(sent):
            return pid
        self.reload_failures += 1
        log.error(
            "edge: %s, but nginx (master %d) did not reload within %g s (see %s)",
            what,
            pid,
            RELOAD_TIMEOUT,
            self.cfg.error_log,
        )
        return None

    async def _new_workers_since(self, sent: float) -> bool:
        """Whether the admin socket is answered by a worker started after ``sent`` (the
        system's monotonic clock, which nginx's workers read too: a step of the wall clock
        between the HUP and the new workers' start cannot make a loaded config look
        refused, nor an old worker look new)."""
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            try:
                r = await self.client.get("/state")
                started = float(r.json().get("worker_started_monotonic", 0))
            except (httpx.HTTPError, ValueError, TypeError, AttributeError):
                continue
            if started >= sent - CLOCK_SLACK:
                return True
        return False

    # -- TLS -----------------------------------------------------------------------------

    def load_value(self, cert: Cert) -> str | None:
        """The certificate as nginx stores it, or None (logged once per fingerprint) when
        its key does not unseal or it does not convert."""
        assert self.seal_key is not None
        try:
            value = tls.cert_value(cert, sealed.unseal(cert.sealed_key, cert.domain, self.seal_key))
        except (sealed.SealError, ValueError) as e:
            if self.unseal_failed.get(cert.domain) != cert.fingerprint:
                log.error("edge: certificate of %s not loaded: %s", cert.domain, e)
            self.unseal_failed[cert.domain] = cert.fingerprint
            return None
        self.unseal_failed.pop(cert.domain, None)
        return value

    async def _post_certs(self, domains: list[str]) -> None:
        held_format = self.nginx_status.get("cert_format")
        if held_format != tls.CERT_FORMAT:  # an older module (a reload that did not happen)
            raise EdgeError(
                f"nginx's sixpod_edge.lua reads certificates as {held_format or 'PEM'}, this "
                f"agent writes {tls.CERT_FORMAT}: not pushing them until nginx reloads"
            )
        assert self.cfg.tls is not None
        certs = self.reader.state.certs
        for batch in tls.cert_batches(
            certs, domains, self.load_value, self.generation, self.cfg.tls.chunk_certs
        ):
            self.nginx_status = await self._post(batch)
            for d, v in batch["certs"].items():
                if v is None:
                    self.pushed.pop(d, None)
                elif d not in self.certs_not_stored:
                    self.pushed[d] = v.split("\n", 1)[0]
            await asyncio.sleep(0)

    async def sync_tls(self) -> None:
        """Make nginx's certificates and challenges equal to the state, sending only what
        differs, then mark the table loaded (health may pass from then on). While nginx
        holds this agent's mark, what it holds is what this agent pushed; otherwise (an
        agent restart, an nginx that lost its table) nginx is asked, once."""
        state = self.reader.state
        if self.nginx_status.get("certs_mark") != self.certs_mark:
            r = await self.client.get("/tls")
            if r.status_code != 200:
                raise EdgeError(f"nginx admin /tls answered {r.status_code}: {r.text[:300]!r}")
            held = r.json()
            self.pushed = dict(held.get("certs") or {})
            self.challenges_pushed = dict(held.get("challenges") or {})
        await self._post_certs(tls.cert_sync(state.certs, self.pushed))
        tokens = frozenset(state.challenges) | frozenset(self.challenges_pushed)
        stale = frozenset(
            t for t in tokens if self.challenges_pushed.get(t) != state.challenges.get(t)
        )
        batch = tls.challenge_batch(state.challenges, stale, self.generation)
        if batch is not None:
            self.nginx_status = await self._post(batch)
        self.challenges_pushed = dict(state.challenges)
        self.nginx_status = await self._post(
            {"generation": self.generation, "certs_mark": self.certs_mark}
        )
        self.need_tls_sync = False
        log.info("edge: certificates synced (%d held)", len(state.certs))

    async def rotate_tickets_if_due(self) -> bool:
        if self.cfg.tls is None or self._refused or not self.nginx_running():
            return False  # (a refused nginx.conf: a HUP would not load the new keys)
        if tlsfiles.ticket_age(self.cfg.run_dir) < self.cfg.tls.ticket_rotate:
            return False
        tlsfiles.rotate(self.cfg.run_dir)
        pid = await self._hup("session ticket keys rotated; nginx still uses the old ones")
        if pid is None:
            return False
        self.ticket_rotations += 1
        log.info("edge: session ticket keys rotated; nginx reloaded (master %d)", pid)
        return True

    # -- pushing -------------------------------------------------------------------------

    async def _post(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Send one batch; a 507 (values that did not fit) is applied but for those, which
        are kept to be tried again and never hold back the changes after them."""
        r = await self.client.post("/apply", json=batch)
        if r.status_code == 409:
            raise _Stale(r.text.strip())
        if r.status_code not in (200, 507):
            raise EdgeError(f"nginx refused a batch: {r.status_code} {r.text.strip()}")
        data: dict[str, Any] = r.json()
        sent = set(batch.get("apps", {})) | set(batch.get("hosts", {}))
        missing = set(data.pop("not_stored", None) or ())
        data.pop("error", None)
        certs_missing = set(data.pop("certs_not_stored", None) or ())
        lost = certs_missing - self.certs_not_stored
        self.certs_not_stored = (
            self.certs_not_stored - set(batch.get("certs", {}))
        ) | certs_missing
        if lost:
            log.error(
                "edge: nginx's certificate table is full: %d not stored (%s); raise tls.certs_dict",
                len(lost),
                ", ".join(sorted(lost)[:5]),
            )
        for token in data.pop("challenges_not_stored", None) or ():
            log.error("edge: nginx's ACME table is full: challenge %s not stored", token)
        new = missing - self.not_stored
        self.not_stored = (self.not_stored - sent) | missing
        if missing:
            self.push_errors += 1
        if new:
            log.error(
                "edge: nginx's shared dicts are full: %d entries not stored (%s%s); raise "
                "apps_dict/hosts_dict",
                len(new),
                ", ".join(sorted(new)[:5]),
                ", ..." if len(new) > 5 else "",
            )
        return data

    async def retry_not_stored(self) -> None:
        """Offer what did not fit again (space may have been freed since)."""
        if self.need_full:
            return
        if self.certs_not_stored and not self.need_tls_sync:
            await self._post_certs(sorted(self.certs_not_stored))
        if not self.not_stored:
            return
        state = self.reader.state
        apps = {k: tables.app_entry(state, k) for k in self.not_stored if k in state.apps}
        hosts = {k: state.domains.get(k) for k in self.not_stored if k not in state.apps}
        self.nginx_status = await self._post(
            {"generation": self.generation, "apps": apps, "hosts": hosts}
        )

    async def push_full(self) -> None:
        """Load the whole state into nginx's inactive slot and switch to it at the end.

        The deltas queued so far are part of the state pushed; those arriving meanwhile stay
        queued and apply after the commit. On failure nothing is lost: nginx keeps serving
        its active slot and the next round starts over."""
        state = self.reader.state
        covered = len(self.pending)
        generation = secrets.token_hex(8)
        began = asyncio.get_running_loop().time()
        for batch in tables.full(state, generation, self.cfg.chunk_apps):
            self.nginx_status = await self._post(batch)
            await asyncio.sleep(0)
        self.generation = generation
        del self.pending[:covered]
        self.need_full = False
        if self.cfg.tls is not None:
            self.need_tls_sync = True  # until it completes: a failed sync is tried again
            await self.sync_tls()
        self.full_pushes += 1
        self.last_full_seconds = asyncio.get_running_loop().time() - began
        log.info(
            "edge: full state pushed at revision %d (%d apps, %.2f s)",
            self.nginx_status.get("revision", -1),
            len(state.apps),
            self.last_full_seconds,
        )

    async def push_pending(self) -> None:
        """Apply the queued deltas in order; each leaves the queue only once nginx has it."""
        while self.pending and not self.need_full:
            changed, queued = self.pending[0]
            if changed.resync:
                self.need_full = True
                return
            state = self.reader.state
            if changed.certs and self.cfg.tls is not None:
                await self._post_certs(sorted(changed.certs))
            batch = tls.challenge_batch(state.challenges, changed.challenges, self.generation)
            if batch is not None:
                self.nginx_status = await self._post(batch)
                for t in changed.challenges:
                    if t in state.challenges:
                        self.challenges_pushed[t] = state.challenges[t]
                    else:
                        self.challenges_pushed.pop(t, None)
            for batch in tables.delta(state, changed, self.generation, self.cfg.chunk_apps):
                self.nginx_status = await self._post(batch)
            self.pending.pop(0)
            self.deltas += 1
            self.apply_seconds.observe(time.monotonic() - queued)

    def behind_seconds(self) -> float:
        """How long the oldest change the replica has but nginx lacks has waited."""
        return time.monotonic() - self.pending[0][1] if self.pending else 0.0

    async def check(self) -> None:
        """Look at nginx: running, its config current, holding this agent's state intact."""
        if not self.nginx_running():
            await self._adopt_or_start_nginx()
        if await self.reload_if_changed() or await self.rotate_tickets_if_due():
            await asyncio.sleep(0.2)  # new workers pick up the shared dicts
        r = await self.client.get("/state")
        if r.status_code != 200:  # e.g. nginx cannot load the Lua module: say what it said
            raise EdgeError(f"nginx admin /state answered {r.status_code}: {r.text[:300]!r}")
        st = self.nginx_status = r.json()
        if st.get("generation") != self.generation or not st.get("ready"):
            if self.generation:
                log.warning("edge: nginx lost this agent's state (%s); pushing it all again", st)
            self.need_full = True
        elif self.cfg.tls is not None and st.get("certs_mark") != self.certs_mark:
            if not self.need_tls_sync:
                log.warning("edge: nginx lost this agent's certificates; syncing them again")
            self.need_tls_sync = True
        now = asyncio.get_running_loop().time()
        if now - self._stats_at >= self.cfg.stats_interval:
            # every key of the stats dict: it locks the dict, so not on every check
            self._stats_at = now
            self.nginx_stats = (await self.client.get("/stats")).json()
        await self.retry_not_stored()

    async def _sync_loop(self) -> None:
        await self.reader.ready.wait()
        loop = asyncio.get_running_loop()
        checked = float("-inf")
        backoff = 0.0
        while True:
            try:
                if loop.time() - checked >= self.cfg.check_interval:
                    checked = loop.time()
                    await self.check()
                if self.need_full:
                    await self.push_full()
                elif self.need_tls_sync:
                    await self.sync_tls()
                await self.push_pending()
                backoff = 0.0
            except _Stale as e:
                log.warning("edge: nginx holds another generation (%s); pushing it all", e)
                self.need_full = True
                backoff = min(max(backoff * 2, 0.05), 1.0)
            except EdgeError as e:
                log.error("edge: %s; retrying in %.1f s", e, max(backoff * 2, 1.0))
                backoff = min(max(backoff * 2, 1.0), 30.0)
            except (httpx.HTTPError, OSError, ValueError) as e:
                log.warning("edge: nginx admin: %s; retrying", e)
                backoff = min(max(backoff * 2, self.cfg.check_interval), 5.0)
            self.wake.clear()
            if backoff:
                await asyncio.sleep(backoff)
                continue
            if self.pending or self.need_full:
                continue
            timeout = max(0.0, checked + self.cfg.check_interval - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)

    async def run(self, stop: asyncio.Event) -> None:
        self.install_lua()
        if self.cfg.tls is not None:
            tlsfiles.prepare(self.cfg.run_dir)
        await self.allow_nonlocal_bind()
        await self._adopt_or_start_nginx()
        served = metrics.serve(self, self.cfg.metrics) if self.cfg.metrics else None
        await self.reader.start()
        sync = asyncio.create_task(self._sync_loop())
        try:
            await stop.wait()
        finally:
            if served is not None:
                served.stop()
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
    try:
        agent = Agent(cfg)
        await agent.run(stop)
    except (EdgeError, MetricsServerError) as e:
        log.error("edge: %s", e)
        return e.exit_code
    return 0


def main(cfg: EdgeConfig) -> int:
    """Run the agent until SIGTERM; nginx is left serving (it runs in its own session)."""
    return asyncio.run(_main(cfg))  # logging: sixpod.logs.setup, by the CLI
