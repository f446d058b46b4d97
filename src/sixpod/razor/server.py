"""``sixpod razor``: the adapter. A parent process forks ``workers`` processes; each binds
its own UDP and TCP sockets on every ``listen`` address with SO_REUSEPORT (the kernel spreads
clients over them), runs a uvloop loop and feeds :class:`~sixpod.razor.engine.Engine`.

UDP is read by a plain non-blocking socket drained in a tight ``recvfrom``/``sendto`` loop
from a uvloop reader callback (measured faster than datagram protocol objects); TCP uses
uvloop streams with 2-byte length framing. Each worker follows the state feed on its own
(state file polled every ``state_poll`` s, or re-read at once on SIGHUP) and rebuilds its
answer tables when the state changes. The parent serves /metrics (sums of the workers'
shared counters), forwards SIGHUP/SIGTERM to the workers and restarts one that dies.
No per-query logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sixpod import addr
from sixpod.razor import metrics as M
from sixpod.razor.config import RazorConfig, Rrl
from sixpod.razor.engine import Engine
from sixpod.razor.errors import ConfigError
from sixpod.razor.feed import StaticFeed, follow_reader, reader_settings, within_pool
from sixpod.razor.rrl import ConnectionTable, Limit
from sixpod.razor.state import RazorState
from sixpod.tenants.config import RedisConfig
from sixpod.tenants.model import VipState
from sixpod.tenants.reader import TenantReader

log = logging.getLogger("sixpod.razor")

TIMER = 0.1  # seconds between engine timer runs
PUBLISH = 1.0  # seconds between copies of the counters to the shared slots
BATCH = 256  # datagrams handled per reader callback before yielding to the loop
RESTART_BACKOFF = 1.0  # seconds before a dead worker is restarted
RESTART_WINDOW = 600.0  # seconds over which worker failures are counted


def _bind(ep: addr.Endpoint, kind: int, *, reuseport: bool = True) -> socket.socket:
    fam = socket.AF_INET6 if ep.ip.version == 6 else socket.AF_INET
    s = socket.socket(fam, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        host = addr.format_ip(ep.ip)
        s.bind((host, ep.port, 0, 0) if fam == socket.AF_INET6 else (host, ep.port))
        if kind == socket.SOCK_STREAM:
            s.listen(1024)
        else:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s


def check_listen(cfg: RazorConfig) -> None:
    """Bind every listener once without SO_REUSEPORT (then close), so a port that anything
    holds (another Razor too, which SO_REUSEPORT would silently join) fails at start."""
    for ep in cfg.listen:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            try:
                _bind(ep, kind, reuseport=False).close()
            except OSError as e:
                what = "udp" if kind == socket.SOCK_DGRAM else "tcp"
                raise ConfigError(
                    f"listen {addr.format_endpoint(ep)} ({what}): {e.strerror}"
                ) from None


def tcp_table(cfg: RazorConfig) -> ConnectionTable[_Tcp]:
    """A worker's TCP connections, limited per RRL's client prefix (sixpod.razor.rrl)."""
    rrl = cfg.rrl if cfg.rrl is not None else Rrl()
    return ConnectionTable(
        max_connections=cfg.tcp_max_connections,
        per_client=min(cfg.tcp_max_per_client, cfg.tcp_max_connections),
        idle_timeout=cfg.tcp_idle_timeout,
        busy_idle_timeout=min(cfg.tcp_busy_idle_timeout, cfg.tcp_idle_timeout),
        ipv4_prefix=rrl.ipv4_prefix,
        ipv6_prefix=rrl.ipv6_prefix,
    )


class _Tcp(asyncio.Protocol):
    """DNS over TCP (RFC 7766): length-prefixed messages, pipelined. The worker's
    :class:`~sixpod.razor.rrl.ConnectionTable` decides which connections close (idle, or
    evicted for a newcomer); the worker's ticker closes the idle ones."""

    def __init__(self, worker: Worker) -> None:
        self.w = worker
        self.buf = bytearray()
        self.t: Any = None
        self.host = ""
        self.open = False  # in the worker's table, being served
        self.paused = False

    def connection_made(self, transport: Any) -> None:
        self.t = transport
        w = self.w
        peer = transport.get_extra_info("peername")
        self.host = peer[0] if peer else "::"
        victim = w.tcp.open(self, self.host, time.monotonic())
        self.open = True
        if victim is not None:  # RFC 7766 6.2.3: a full server closes an idle connection
            victim[0].evict()

    def evict(self) -> None:
        """Closed to make room (already out of the table): at once, nothing more is read."""
        self.open = False
        self.t.abort()

    def pause_writing(self) -> None:
        """The client does not read its answers: stop reading its queries (backpressure)."""
        self.paused = True
        self.t.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        self.t.resume_reading()
        self.data_received(b"")  # the queries already buffered

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.w.tcp.forget(self)

    def data_received(self, data: bytes) -> None:
        if not self.open:
            return
        buf = self.buf
        buf += data
        while len(buf) >= 2 and not self.paused:
            size = buf[0] << 8 | buf[1]
            if len(buf) < 2 + size:
                break
            msg = bytes(buf[2 : 2 + size])
            del buf[: 2 + size]
            self.w.tcp_queries += 1
            now = time.monotonic()
            try:
                out = self.w.engine.respond(msg, self.host, now, tcp=True)
            except Exception:
                self.w.internal_error()
                out = None
            if out is None:
                self.t.close()
                return
            # the idle time runs from the last whole message, not the last byte
            self.w.tcp.touch(self, now)
            self.t.write(len(out).to_bytes(2, "big") + out)


class Worker:
    """One serving process: sockets, loop, engine, state following, counters."""

    def __init__(
        self, cfg: RazorConfig, index: int, shared: M.SharedCounters, cookie_secret: bytes
    ) -> None:
        import uvloop

        self.cfg = cfg
        self.index = index
        self.shared = shared
        self.carried = shared.carried(index)  # a predecessor's counters, counted on from
        self.feed = StaticFeed(cfg)
        if cfg.tenants is None:
            state = self.feed.load()
        else:  # until the reader has bootstrapped: the whole pool (DNS keeps answering)
            state = within_pool(RazorState(), self.feed.pool)
        self.engine = Engine(cfg, state, cookie_secret=cookie_secret)
        self.reader: TenantReader | None = None
        self.engine.handle_timer(time.monotonic(), time.time())
        self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        self.udp_queries = 0
        self.tcp_queries = 0
        self.rebuilds = 0
        self.rebuild_seconds = 0.0
        self.state_errors = 0
        self.internal_errors = 0
        self.tcp = tcp_table(cfg)
        self._vips: list[float] = []
        self._vips_for: RazorState | None = None
        self._stop = False
        self._reload = False
        self._sockets: list[socket.socket] = []

    def internal_error(self) -> None:
        if not self.internal_errors:
            log.exception("razor worker %d: internal error answering a query", self.index)
        self.internal_errors += 1

    def _reader(self, sock: socket.socket) -> Callable[[], None]:
        recvfrom = sock.recvfrom
        sendto = sock.sendto
        engine = self.engine
        monotonic = time.monotonic

        def drain() -> None:
            respond = engine.respond
            now = monotonic()
            n = 0
            # try blocks cost nothing in 3.11 unless they catch; a context manager would.
            for n in range(BATCH):  # noqa: B007
                try:
                    data, peer = recvfrom(4096)
                    out = respond(data, peer[0], now)
                    if out is not None:
                        sendto(out, peer)
                except (BlockingIOError, InterruptedError):
                    break  # drained (or a full send buffer: the query is dropped, as UDP may)
                except OSError:
                    continue  # e.g. an ICMP error queued on the socket
                except Exception:
                    self.internal_error()
            else:
                n = BATCH
            self.udp_queries += n

        return drain

    def apply(self, state: RazorState) -> None:
        start = time.perf_counter()
        self.engine.apply(state)
        self.rebuild_seconds = time.perf_counter() - start
        self.rebuilds += 1
        _settle()
        log.info(
            "razor worker %d: state revision %d applied in %.3f s",
            self.index,
            state.revision,
            self.rebuild_seconds,
        )

    def follow(self, force: bool = False) -> None:
        try:
            state = self.feed.poll(force=force)
        except ConfigError as e:
            self.state_errors += 1
            log.error("razor worker %d: %s (serving the last good state)", self.index, e)
            return
        if state is not None:
            self.apply(state)

    def _vip_counts(self) -> list[float]:
        state = self.engine.state
        if self._vips_for is not state:  # counted once per state, not once per second
            vips = [0.0] * 6
            for ip, st in state.vips.items():
                vips[(0 if ip.version == 4 else 3) + M.VIP_STATES.index(VipState(st).value)] += 1
            self._vips, self._vips_for = vips, state
        return self._vips

    def publish(self, up: bool = True) -> None:
        e = self.engine
        row = [float(c) for c in e.counts]
        vips = self._vip_counts()
        row += [
            self.udp_queries,
            self.tcp_queries,
            e.state.revision,
            self.rebuilds,
            self.rebuild_seconds,
            e.tables.apps,
            self.state_errors,
            *vips,
            self.internal_errors,
            1.0 if up else 0.0,
            len(self.tcp),
            self.tcp.evicted[Limit.WORKER],
            self.tcp.evicted[Limit.CLIENT],
            self.tcp.idle_closed,
        ]
        self.shared.publish(self.index, row, self.carried)

    async def _ticker(self) -> None:
        last_poll = last_pub = 0.0
        while not self._stop:
            try:
                last_poll, last_pub = self._tick(last_poll, last_pub)
            except Exception:
                self.internal_error()
            await asyncio.sleep(TIMER)

    def _tick(self, last_poll: float, last_pub: float) -> tuple[float, float]:
        """Timers, state polling and metrics; one pass of the ticker."""
        now = time.monotonic()
        self.engine.handle_timer(now, time.time())
        for conn in self.tcp.handle_timer(now):
            conn.open = False
            conn.t.close()
        if self.reader is not None:
            pass  # the reader pushes every change
        elif self._reload:
            self._reload = False
            self.follow(force=True)
        elif now - last_poll >= self.cfg.state_poll:
            last_poll = now
            self.follow()
        if now - last_pub >= PUBLISH:
            last_pub = now
            self.publish()
        return last_poll, last_pub

    def _start_reader(self, t: RedisConfig) -> TenantReader:
        """Follow VIP states and apps from the local replica (upstream lists left out)."""
        reader = TenantReader(reader_settings(t))
        self.loop.run_until_complete(reader.start())
        log.info("razor worker %d: waiting for the tenant state in Redis", self.index)
        self.loop.run_until_complete(reader.ready.wait())
        follow_reader(reader, self.apply, self.feed.pool)
        return reader

    def run(self, ready: Callable[[], None] = lambda: None) -> int:
        loop = self.loop
        asyncio.set_event_loop(loop)
        if self.cfg.tenants is not None:
            # Answer nothing until the tenant state is loaded: a blackholed VIP handed out, or
            # an app name answered NXDOMAIN (and cached), is worse than a silent instance.
            self.reader = self._start_reader(self.cfg.tenants)
        for ep in self.cfg.listen:
            u = _bind(ep, socket.SOCK_DGRAM)
            self._sockets.append(u)
            loop.add_reader(u.fileno(), self._reader(u))
            t = _bind(ep, socket.SOCK_STREAM)
            self._sockets.append(t)
            loop.run_until_complete(loop.create_server(lambda: _Tcp(self), sock=t))
        done = loop.create_future()

        def stop() -> None:
            self._stop = True
            if not done.done():
                done.set_result(None)

        def reload() -> None:
            self._reload = True

        loop.add_signal_handler(signal.SIGTERM, stop)
        loop.add_signal_handler(signal.SIGINT, stop)
        loop.add_signal_handler(signal.SIGHUP, reload)
        ticker = loop.create_task(self._ticker())
        self.publish()
        _settle()
        ready()
        loop.run_until_complete(done)
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(ticker)
        if self.reader is not None:
            loop.run_until_complete(self.reader.stop())
        self.publish(up=False)
        for s in self._sockets:
            with contextlib.suppress(OSError):
                loop.remove_reader(s.fileno())
            s.close()
        loop.close()
        return 0


def attribution_api(cfg: RazorConfig) -> M.Attribute:
    """``GET /v1/attribute``: rank apps from the current state (read on each request)."""
    from sixpod.razor.attribution import rank_apps
    from sixpod.razor.shard import Shards

    feed = StaticFeed(cfg)
    shards = Shards(cfg.shard_size, cfg.max_overlap)
    lock = threading.Lock()

    def attribute(texts: list[str], limit: int) -> tuple[int, dict[str, object]]:
        try:
            vips = [addr.parse_ip(t) for t in texts]
        except addr.AddressError as e:
            return 400, {"error": str(e)}
        with lock:
            try:
                state = feed.load()
            except ConfigError as e:
                return 503, {"error": e.message}
            unknown = [addr.format_ip(ip) for ip in vips if ip not in state.vips]
            if unknown:
                return 400, {"error": f"not in the pool: {', '.join(unknown)}"}
            ranked = rank_apps(vips, state, shards, limit=limit)
        return 200, {
            "attacked": [addr.format_ip(ip) for ip in vips],
            "revision": state.revision,
            "suspects": [s.to_json() for s in ranked],
        }

    return attribute


def _settle() -> None:
    """Collect once, then move every live object (tables, modules) out of the collector's
    sight: the hot path creates no reference cycles, so the collections the allocation
    counter would trigger every few hundred queries would only rescan the tables, and a
    full one stalls the loop for milliseconds. Old tables are still freed by refcounting."""
    gc.collect()
    gc.freeze()


def cookie_secret(cfg: RazorConfig) -> bytes:
    if cfg.cookie_secret_file is None:
        return os.urandom(32)
    try:
        with open(cfg.cookie_secret_file, "rb") as f:
            secret = f.read().strip()
    except OSError as e:
        raise ConfigError(f"{cfg.cookie_secret_file}: cannot read: {e.strerror}") from None
    if len(secret) < 16:
        raise ConfigError(f"{cfg.cookie_secret_file}: the secret needs at least 16 bytes")
    return secret


_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """SIGTERM this (forked) process when its parent dies, even by SIGKILL: a worker left
    behind would keep answering from an old state and hold the ports a new Razor needs."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


def _spawn(cfg: RazorConfig, index: int, shared: M.SharedCounters, secret: bytes) -> int:
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        _die_with(parent)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the loop installs its handlers
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's flag-setting ones
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        code = Worker(cfg, index, shared, secret).run()
    except ConfigError as e:
        print(f"sixpod razor: {e.message}", file=sys.stderr, flush=True)
    except BaseException:
        log.exception("razor worker %d failed", index)
    finally:
        os._exit(code)


def main(cfg: RazorConfig) -> int:
    """Run the server until SIGTERM/SIGINT; exit 1 on a config that cannot be served."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        feed = StaticFeed(cfg)  # fail before forking: a broken pool or state file
        if cfg.tenants is None:
            feed.load()
        else:
            try:
                Path(cfg.tenants.password_file).read_text(encoding="utf-8")
            except OSError as e:
                raise ConfigError(
                    f"{cfg.tenants.password_file}: cannot read: {e.strerror}"
                ) from None
        check_listen(cfg)
        secret = cookie_secret(cfg)
    except ConfigError as e:
        print(f"sixpod razor: {e.message}", file=sys.stderr)
        return 1
    shared = M.SharedCounters(cfg.workers)
    flags = {"stop": False, "hup": False}

    def on_stop(*_: Any) -> None:
        flags["stop"] = True

    def on_hup(*_: Any) -> None:
        flags["hup"] = True

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    pids = {_spawn(cfg, i, shared, secret): i for i in range(cfg.workers)}
    if cfg.metrics is not None:
        M.serve_http(shared, addr.format_ip(cfg.metrics.ip), cfg.metrics.port, attribution_api(cfg))
    where = ", ".join(addr.format_endpoint(ep) for ep in cfg.listen)
    log.info("razor: %d worker(s) serving %s on %s", cfg.workers, cfg.zone, where)
    failures: list[float] = []  # when workers failed, within the last RESTART_WINDOW s
    code = 0
    while not flags["stop"]:
        if flags["hup"]:
            flags["hup"] = False
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGHUP)
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pid, status = 0, 0
        if pid and pid in pids:
            index = pids.pop(pid)
            now = time.monotonic()
            failures = [t for t in failures if now - t < RESTART_WINDOW] + [now]
            log.error("razor worker %d (pid %d) exited with %d", index, pid, status)
            if len(failures) > 5 * cfg.workers:
                log.error("razor: workers keep failing; stopping")
                code = 1
                break
            time.sleep(RESTART_BACKOFF)
            pids[_spawn(cfg, index, shared, secret)] = index
            continue
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while pids and time.monotonic() < deadline:
        for pid in list(pids):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                pids.pop(pid)
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    log.info("razor: stopped")
    return code
