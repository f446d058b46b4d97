"""``sixpod announcer``: ExaBGP's API process on a node (the asyncio adapter of the core).

ExaBGP starts it and talks to it over stdin/stdout: commands out, ``done``/``error`` and
JSON neighbor events in. The adapter only feeds inputs to :class:`~sixpod.routing.health.
Announcer`, runs what it asks for (checks, floor questions), and writes the route operations
:class:`~sixpod.routing.routesync.RouteSync` plans. Logs go to stderr, which ExaBGP records.

Operator control: files ``drain`` and ``disable`` in ``state_dir`` (written by
``sixpod node drain|disable``) are polled; they survive restarts, so a drained node stays
drained. On SIGTERM/SIGINT, or when ExaBGP closes the pipe, everything is withdrawn before
exit; at start, every route the node could have announced before is withdrawn unless wanted:
those of its configuration and those of the ledger (``announced.json`` in ``state_dir``, see
:mod:`sixpod.routing.ledger`), which keeps VIPs removed from the configuration until their
withdrawal is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from sixpod import addr
from sixpod.inventory.files import write_atomic
from sixpod.metricshttp import MetricsServerError
from sixpod.routing import loopback
from sixpod.routing.bfd import BfdError, set_shutdown
from sixpod.routing.checks import run_check
from sixpod.routing.config import AnnouncerConfig
from sixpod.routing.events import (
    Announce,
    AskFloor,
    CheckChanged,
    CheckState,
    JoinFloor,
    LeaveFloor,
    NodeState,
    Probe,
    Resync,
    Route,
    RunCheck,
    SpeakerAlive,
    SpeakerHung,
    StateChanged,
)
from sixpod.routing.exabgp import (
    Acked,
    ExaBGPCodec,
    ExaBGPProtocolError,
    MalformedNegotiated,
    Negotiated,
    SessionDown,
    SessionUp,
    Shutdown,
)
from sixpod.routing.floor import FloorClient, FloorUnavailable
from sixpod.routing.health import BOTH_FAMILIES, Announcer, CheckSpec, CoreConfig
from sixpod.routing.ledger import LEDGER_FILE, LedgerError, format_ledger, parse_ledger
from sixpod.routing.liveness import SpeakerWatch
from sixpod.routing.metrics import AnnouncerMetrics
from sixpod.routing.routesync import RouteSync
from sixpod.routing.status import STATUS_FILE, Changes, node_status
from sixpod.tenants.model import Changed, VipState
from sixpod.tenants.reader import ReaderSettings, TenantReader, TenantState

log = logging.getLogger("sixpod.announcer")

_FAMILY_NEEDS = {  # what a session needs to carry each IP version from a node without IPv4
    4: "IPv4 unicast with RFC 8950 extended next hop (FRR: capability extended-nexthop)",
    6: "IPv6 unicast",
}

BLACKHOLED_FILE = "blackholed.json"  # in state_dir: the VIPs last seen blackholed, and why
CONTROL_POLL = 0.2  # seconds between looks at the drain/disable files
VIP_STATES_RETRY = 5.0  # seconds between attempts to start following VIP states
REFUSED_BACKOFF = 1.0  # seconds before resending after ExaBGP refused a command
BFD_MAX_BACKOFF = 30.0  # seconds between vtysh retries at most (bfdd not running)
EXIT_WITHDRAW_WAIT = 3.0  # seconds to wait for ExaBGP to acknowledge the final withdrawals
LINE_LIMIT = 1 << 20  # bytes in one line from ExaBGP at most (its events are ~1 KiB)


async def read_line(reader: asyncio.StreamReader) -> bytes:
    """The next line from ExaBGP (``b""`` at the end). A line longer than the reader's limit is
    skipped up to its newline and is :class:`ExaBGPProtocolError`; the next call goes on with
    the line after it (``StreamReader.readline`` raises ``ValueError`` and may hand out the
    rest of the long line as a line of its own)."""
    skipped = 0
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as e:  # the end, maybe after a last partial line
            line = e.partial
        except asyncio.LimitOverrunError as e:  # what it consumed is still in the buffer
            skipped += len(await reader.readexactly(max(e.consumed, 1)))
            continue
        if skipped:
            raise ExaBGPProtocolError(
                f"a line from ExaBGP of {skipped + len(line)} bytes is too long; skipped"
            )
        return line


def core_config(cfg: AnnouncerConfig) -> CoreConfig:
    """The pure core's view of the announcer configuration."""
    return CoreConfig(
        node_prefix=cfg.node_prefix,
        vips=tuple(ip_network(ip) for ip in cfg.vips),
        next_hop=cfg.next_hop,
        checks=tuple(
            CheckSpec(
                name=c.name,
                interval=c.interval,
                fast_interval=c.fast_interval,
                timeout=c.timeout,
                rise=c.rise,
                fall=c.fall,
                severity=c.severity,
            )
            for c in cfg.checks
        ),
        drain_timeout=cfg.drain_timeout,
        drain_med=cfg.drain_med,
        floor=cfg.floor.min_nodes,
        floor_retry=cfg.floor.retry,
    )


class AnnouncerDaemon:
    def __init__(
        self,
        cfg: AnnouncerConfig,
        *,
        write: Callable[[bytes], None],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        # The core's clock to the wall clock, fixed once: status times must not jitter.
        self._wall_offset = wall() - clock()
        self._write = write
        self.core = Announcer(config=core_config(cfg), now=clock())
        self.sync = RouteSync()
        self.codec = ExaBGPCodec()
        self.watch = SpeakerWatch(
            interval=cfg.speaker.probe_interval, timeout=cfg.speaker.timeout, now=clock()
        )
        self._bfd_want: bool | None = None  # BFD shutdown wanted (None: never touched)
        self.bfd_shutdown: bool | None = None  # what vtysh last applied
        self._bfd_task: asyncio.Task[None] | None = None
        self._full_due = True  # an input was pumped: the timer task looks at everything
        self.metrics = AnnouncerMetrics(cfg.node)
        self.floor: FloorClient | None = None
        if cfg.floor.min_nodes > 0:
            self.floor = FloorClient(config=cfg.floor, pod=cfg.pod, node=cfg.node)
        self._checks = {c.name: c for c in cfg.checks}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_floor = False
        self._flags = {"drain": False, "disable": False}
        self._state_dir = Path(cfg.state_dir)
        self._hold_until = 0.0  # no route operations before this (after a refusal)
        self._floor_lock = asyncio.Lock()  # floor calls reach Redis in the order they were made
        self._reported = False  # ExaBGP reported what the coming session negotiated
        self._malformed: str | None = None  # ... in a shape we do not understand (the error)
        self.peer_carries: frozenset[int] | None = None  # None: the session did not say
        self.report_error: str | None = None  # the up session's report was malformed (why)
        self._peer: str | None = None  # while the session is up
        self._status: dict[str, Any] | None = None  # last written to state_dir
        self._status_at = -float("inf")
        self._status_key: object = None  # what the last document was built from
        self.changes = Changes()  # the last changes, for `sixpod node status`
        self._session_since: float | None = None  # wall clock of the last session up/down
        self._capabilities: dict[str, object] | None = None
        self._floor_noted = False  # the floor's hold is in the changes
        # Whatever a previous instance announced is still in ExaBGP: assume all of it, also
        # the routes of an older configuration that the ledger still holds.
        possible = self._possible_routes()
        configured = {r.prefix for r in possible}
        stale = [r for r in self._read_ledger() if r.prefix not in configured]
        self._stale = {r.prefix: r for r in stale}
        for route in (*stale, *possible):
            self.sync.acked(Announce(route))
        self.vip_reader: TenantReader | None = None
        if cfg.vip_states is not None:  # until the replica answers: the last set it gave
            self._set_blackholed(self._read_blackholed(), persist=False)

    # -- VIP states (blackholed through the API), from the node's Redis replica ----------

    @property
    def _blackholed_path(self) -> Path:
        return self._state_dir / BLACKHOLED_FILE

    def _read_blackholed(self) -> dict[str, str]:
        path = self._blackholed_path
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, ValueError) as e:
            log.error("%s: %s; no VIP is taken as blackholed until the replica says", path, e)
            return {}
        if not isinstance(doc, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in doc.items()
        ):
            log.error("%s: not an object of VIPs to reasons; ignoring it", path)
            return {}
        return doc

    def _vip_states(self, state: TenantState, changed: Changed) -> None:
        """The reader's listener: a VIP state changed, or the whole state was reloaded."""
        if changed.vips or changed.resync:
            self._set_blackholed(
                {
                    addr.format_ip(ip): v.reason
                    for ip, v in state.vips.items()
                    if v.state is VipState.BLACKHOLED
                }
            )
            self.pump()

    async def _follow_vip_states(self) -> None:
        """Start the reader of the replica's VIP states; a password file that cannot be read
        yet is retried (the last set seen keeps applying meanwhile), never fatal."""
        states = self.cfg.vip_states
        assert states is not None
        said = ""
        while not self._stopping.is_set():
            try:
                reader = TenantReader(
                    ReaderSettings(
                        address=states.redis,
                        password_file=states.password_file,
                        prefix=states.prefix,
                        upstreams=False,
                        apps=False,
                    )
                )
            except OSError as e:
                if str(e) != said:
                    said = str(e)
                    log.error("VIP states: %s; retrying every %g s", e, VIP_STATES_RETRY)
                await asyncio.sleep(VIP_STATES_RETRY)
                continue
            reader.add_listener(self._vip_states)
            self.vip_reader = reader
            await reader.start()
            return

    def _set_blackholed(self, pulled: dict[str, str], *, persist: bool = True) -> None:
        nets = {}
        for text, reason in pulled.items():
            try:
                nets[ip_network(addr.parse_ip(text))] = reason
            except ValueError as e:
                log.error("blackholed VIP %r: %s; ignored", text, e)
        before = self.core.blackholed_vips
        reasons = sorted({r for r in nets.values() if r})
        self.core.blackholed(self.clock(), frozenset(nets), "; ".join(reasons))
        after = self.core.blackholed_vips
        for what, vips in (("blackholed", after - before), ("released", before - after)):
            if vips:
                text = ", ".join(sorted(addr.format_ip(v.network_address) for v in vips))
                why = f": {'; '.join(reasons)}" if what == "blackholed" and reasons else ""
                log.warning("VIP %s %s through the API%s", text, what, why)
                self._changed(f"VIP {text} {what} through the API{why}")
        if persist and after != before:
            doc = {addr.format_ip(v.network_address): nets[v] for v in sorted(after, key=str)}
            try:
                self._state_dir.mkdir(parents=True, exist_ok=True)
                write_atomic(self._blackholed_path, json.dumps(doc, indent=1) + "\n", mode=0o644)
            except OSError as e:
                log.error("%s: %s", self._blackholed_path, e)

    def _possible_routes(self) -> list[Route]:
        nets = [ip_network(ip) for ip in self.cfg.vips]
        if self.cfg.node_prefix is not None:
            nets.append(self.cfg.node_prefix)
        return [Route(n, self.cfg.next_hop) for n in nets]

    # -- the ledger (routes ExaBGP may hold across announcer restarts) -------------------

    @property
    def _ledger_path(self) -> Path:
        return self._state_dir / LEDGER_FILE

    def _read_ledger(self) -> frozenset[Route]:
        try:
            return parse_ledger(self._ledger_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return frozenset()
        except (OSError, UnicodeDecodeError, LedgerError) as e:
            log.error("%s: %s; ignoring it", self._ledger_path, e)
            return frozenset()

    def _write_ledger(self) -> None:
        routes = [*self._possible_routes(), *self._stale.values()]
        try:
            self._state_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(self._ledger_path, format_ledger(routes), mode=0o644)
        except OSError as e:
            log.error("%s: %s", self._ledger_path, e)

    def _forget_withdrawn(self) -> None:
        """Drop from the ledger the old routes whose withdrawal ExaBGP acknowledged."""
        if not self._stale:
            return
        gone = [p for p in self._stale if not self.sync.holds(p)]
        if gone:
            for prefix in gone:
                log.info("withdrew %s (no longer configured)", prefix)
                self._changed(f"withdrew {prefix} (no longer configured)")
                del self._stale[prefix]
            self._write_ledger()

    def _wall(self, t: float) -> float:
        """The core's time ``t`` on the wall clock."""
        return t + self._wall_offset

    def _changed(self, what: str) -> None:
        self.changes.add(self._wall(self.clock()), what)

    def write_status(self, *, force: bool = False) -> None:
        """Write ``status.json`` for ``sixpod node status`` if it changed."""
        now = self.clock()
        if now - self._status_at < CONTROL_POLL and not force:
            return  # written less than a timer tick ago (the next tick writes)
        core = self.core
        bfd = self.bfd_shutdown if self.cfg.bfd is not None else None
        key = (  # cheap: the document is built (up to 1,024 routes) only when this changes
            core.state,
            core.carries,
            core.floor_held,
            core.floor_reason,
            core.blackholed_vips,
            tuple(
                (c.name, c.state, c.detail if c.state is CheckState.FAILING else "", c.passes)
                for c in core.checks
                if c.state is not CheckState.PASSING
            ),
            tuple(c.state for c in core.checks),
            self.sync.generation,
            self._peer,
            self.peer_carries,
            self.report_error,
            self._session_since,
            self.watch.state,
            bfd,
            self.changes.seq,
        )
        if key == self._status_key and not force:
            return
        self._status_key = key
        doc = node_status(
            node=self.cfg.node,
            pid=os.getpid(),
            core=core,
            sync=self.sync,
            peer=self._peer,
            carries=self.peer_carries,
            report_error=self.report_error,
            wall=self._wall,
            session_since=self._session_since,
            negotiated=self._capabilities,
            changes=self.changes,
            speaker=self.watch.state,
            bfd_shutdown=bfd,
        )
        if doc == self._status:
            return
        self._status, self._status_at = doc, now
        try:
            self._state_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(
                self._state_dir / STATUS_FILE, json.dumps(doc, indent=1) + "\n", mode=0o644
            )
        except OSError as e:
            log.error("%s: %s", self._state_dir / STATUS_FILE, e)

    # -- inputs ---------------------------------------------------------------------------

    def receive_line(self, line: str) -> None:
        try:
            msg = self.codec.receive_line(line)
        except MalformedNegotiated as e:
            log.error(
                "ExaBGP's report of what the session with %s negotiated is malformed: %s;"
                " its families are unknown",
                e.peer or "the peer",
                e,
            )
            self._reported, self._malformed = False, str(e)
            return
        except ExaBGPProtocolError as e:
            log.error("%s", e)
            return
        now = self.clock()
        if isinstance(msg, Acked):
            # Acks change nothing to plan (a refused op is retried by the timer after the
            # backoff), so they do not pump: a burst of 1,000 acks stays linear.
            speaker = self.watch.state
            self.watch.acked(now)
            if self.watch.state is not speaker:
                self._speaker_events()
            if isinstance(msg.op, Probe):
                self._wake.set()  # the next probe is due from this answer on
                return
            if msg.ok:
                self.sync.acked(msg.op)
            else:
                if now >= self._hold_until:
                    log.error("ExaBGP refused: %s; retrying in %g s", msg.op, REFUSED_BACKOFF)
                self.sync.failed(msg.op)
                self._hold_until = now + REFUSED_BACKOFF
            return
        if isinstance(msg, Negotiated):
            self._negotiated(msg, now)
            self.pump()
            return
        if isinstance(msg, SessionUp):
            log.info("BGP session with %s up", msg.peer)
            self.metrics.session(up=True)
            self._session_since = self._wall(now)
            self._changed(f"BGP session with {msg.peer} up")
            self._session_up(msg.peer, now)
        elif isinstance(msg, SessionDown):
            log.warning("BGP session with %s down: %s", msg.peer, msg.reason)
            self.metrics.session(up=False)
            self._session_since = self._wall(now)
            self._changed(f"BGP session with {msg.peer} down: {msg.reason or 'no reason given'}")
            self._peer = None
            self.core.session_down(now)
        elif isinstance(msg, Shutdown):
            self._stopping.set()
        self.pump()

    def _negotiated(self, msg: Negotiated, now: float) -> None:
        """Before the session comes up: withdraw what it cannot carry, and say so."""
        self._reported, self._malformed = True, None
        self.peer_carries = msg.carries
        self._capabilities = msg.capabilities()
        self.core.negotiated(now, msg.carries)
        self.metrics.families(msg.carries)
        refused = self.core.refused()
        for version, why in _FAMILY_NEEDS.items():
            count = sum(1 for r in refused if r.prefix.version == version)
            if count:
                log.error(
                    "the session with %s cannot carry IPv%d: %s was not negotiated;"
                    " %d IPv%d routes not announced",
                    msg.peer,
                    version,
                    why,
                    count,
                    version,
                )
                self._changed(
                    f"refused {count} IPv{version} routes: the session with {msg.peer} did not"
                    f" negotiate {why}"
                )

    def _session_up(self, peer: str, now: float) -> None:
        self._peer = peer
        self.report_error = None
        if not self._reported:
            # Families unknown: send both, as the log says, not the previous session's.
            if self._malformed is not None:
                log.error(
                    "the session with %s came up after a malformed report of what it"
                    " negotiated (%s); routes of both families are sent unchecked",
                    peer,
                    self._malformed,
                )
                self._changed(
                    f"malformed report of what the session with {peer} negotiated: routes"
                    " of both families sent unchecked"
                )
                self.report_error = self._malformed
            else:
                log.warning(
                    "ExaBGP did not report what the session with %s negotiated (exabgp.conf"
                    " lacks `api { negotiated; }`: re-render it); routes of both families are"
                    " sent unchecked",
                    peer,
                )
            self.peer_carries = None
            self._capabilities = None
            self.metrics.families(None)
            self.core.negotiated(now, BOTH_FAMILIES)
        self._reported, self._malformed = False, None
        self.core.session_up(now)

    def poll_control(self) -> None:
        now = self.clock()
        for flag in ("drain", "disable"):
            on = (self._state_dir / flag).exists()
            if on == self._flags[flag]:
                continue
            self._flags[flag] = on
            log.info("operator %s %s", "set" if on else "cleared", flag)
            self._changed(f"operator {'set' if on else 'cleared'} {flag}")
            if flag == "drain":
                (self.core.drain if on else self.core.undrain)(now)
            else:
                (self.core.disable if on else self.core.enable)(now)

    # -- outputs --------------------------------------------------------------------------

    def pump(self) -> None:
        """Handle the core's events, then send the route operations still needed."""
        while (event := self.core.next_event()) is not None:
            if isinstance(event, RunCheck):
                self._spawn(self._run_check(event))
            elif isinstance(event, AskFloor):
                self._spawn(self._ask_floor())
            elif isinstance(event, JoinFloor):
                self._in_floor = True
                self._spawn(self._floor_call("join"))
            elif isinstance(event, LeaveFloor):
                self._in_floor = False
                self._spawn(self._floor_call("leave"))
            elif isinstance(event, Resync):
                self.sync.reset()
            elif isinstance(event, StateChanged):
                log.info("state %s -> %s: %s", event.old, event.new, event.reason)
                self.changes.add(
                    self._wall(event.at), f"state {event.old} -> {event.new}: {event.reason}"
                )
            elif isinstance(event, CheckChanged):
                log.info("check %s %s -> %s %s", event.name, event.old, event.new, event.detail)
                detail = f": {event.detail}" if event.detail else ""
                self.changes.add(
                    self._wall(event.at), f"check {event.name} {event.old} -> {event.new}{detail}"
                )
        now = self.clock()
        if now >= self._hold_until or self.core.state is NodeState.SHUTDOWN:
            for op in self.sync.plan(self.core.desired()):
                self._write(self.codec.send(op))
                self.watch.sent(now)
        self._speaker_events()
        self._full_due = True
        self._wake.set()

    def _speaker_events(self) -> None:
        """Probe ExaBGP when asked; take BFD down while it is hung, up when it answers."""
        while (event := self.watch.next_event()) is not None:
            if isinstance(event, Probe):
                if self.core.state is not NodeState.SHUTDOWN:
                    self._write(self.codec.send(event))
                    self.watch.sent(self.clock())
            elif isinstance(event, SpeakerHung):
                bfd = self.cfg.bfd
                log.error(
                    "ExaBGP has not answered for %.2f s: hung; %s",
                    event.silent,
                    "no bfd configured, the ToR's hold timer will notice"
                    if bfd is None
                    else f"shutting down BFD with {bfd.peer} so that the ToR drops the session",
                )
                self._changed(f"ExaBGP has not answered for {event.silent:.2f} s: hung")
                self._set_bfd(shutdown=True)
            elif isinstance(event, SpeakerAlive):
                if self._bfd_want:
                    log.warning("ExaBGP answers again; bringing BFD back up")
                    self._changed("ExaBGP answers again")
                self._set_bfd(shutdown=False)

    def _set_bfd(self, *, shutdown: bool) -> None:
        if self.cfg.bfd is None:
            return
        self._bfd_want = shutdown
        if self._bfd_task is None or self._bfd_task.done():
            self._bfd_task = asyncio.get_running_loop().create_task(self._apply_bfd())

    async def _apply_bfd(self) -> None:
        """Bring bfdd to the wanted state; the last wish wins, failures are retried."""
        assert self.cfg.bfd is not None
        backoff = REFUSED_BACKOFF
        while self._bfd_want is not None and self.bfd_shutdown != self._bfd_want:
            want = self._bfd_want
            try:
                await set_shutdown(self.cfg.bfd, shutdown=want)
            except BfdError as e:
                what = "shutdown" if want else "no shutdown"
                log.error("BFD %s: %s; retrying in %g s", what, e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BFD_MAX_BACKOFF)
                continue
            self.bfd_shutdown = want
            log.info("BFD with %s %s", self.cfg.bfd.peer, "shut down" if want else "enabled")
            self._changed(f"BFD with {self.cfg.bfd.peer} {'shut down' if want else 'enabled'}")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_check(self, event: RunCheck) -> None:
        outcome = await run_check(self._checks[event.name])
        self.core.check_result(event.run_id, outcome.ok, self.clock(), outcome.detail)
        self.pump()

    async def _ask_floor(self) -> None:
        assert self.floor is not None
        async with self._floor_lock:
            answer = await self.floor.ask_to_leave()
        if not answer.granted:
            log.warning("floor holds the VIPs: %s", answer.reason)
        self.core.floor_answer(answer.granted, self.clock(), answer.reason)
        if self.core.floor_held != self._floor_noted:  # once per hold, not per retry
            self._floor_noted = self.core.floor_held
            if self._floor_noted:
                self._changed(f"the floor keeps the VIPs announced: {answer.reason}")
        self.pump()

    async def _floor_call(self, what: str) -> None:
        if self.floor is None:
            return
        async with self._floor_lock:
            try:
                await getattr(self.floor, what)()
            except FloorUnavailable as e:
                log.warning("floor %s: %s", what, e)

    async def _heartbeat(self) -> None:
        assert self.floor is not None
        while not self._stopping.is_set():
            await asyncio.sleep(self.cfg.floor.ttl / 3)
            if self._in_floor:
                await self._floor_call("heartbeat")

    # -- main loop ------------------------------------------------------------------------

    async def _timers(self) -> None:
        """The core's timers, the control files and the metrics at least every CONTROL_POLL
        and after every input (``pump`` wakes this); the speaker watch's probes in between,
        which cost nothing like a full look at up to 1,024 routes."""
        last_full = -math.inf
        while not self._stopping.is_set():
            now = self.clock()
            next_full = min(self.core.next_timer() or math.inf, last_full + CONTROL_POLL)
            due = min(next_full, self.watch.next_timer() or math.inf)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(max(due - now, 0), CONTROL_POLL))
            now = self.clock()
            self.watch.handle_timer(now)
            self._speaker_events()
            if not self._full_due and now < next_full:
                continue
            last_full = now
            self.core.handle_timer(now)
            self.poll_control()
            self.pump()
            self._full_due = False  # this pump was the look; only later inputs need another
            self._forget_withdrawn()
            self.metrics.update(self.core, self.sync)
            self.metrics.speaker(self.watch.state, self.bfd_shutdown)
            self.write_status()

    async def run(self, reader: asyncio.StreamReader) -> int:
        """Serve ExaBGP until it stops or we are told to; everything is withdrawn on the way
        out, whatever ended the loop (also a failure at start or in the timer task)."""
        timers: asyncio.Task[None] | None = None
        heartbeat: asyncio.Task[None] | None = None
        stop = asyncio.create_task(self._stopping.wait())
        code = 0
        try:
            if self.cfg.manage_loopback:
                await loopback.ensure(self.cfg.loopback, self.cfg.vips)
            if self.cfg.metrics:
                self.metrics.serve(self.cfg.metrics)
            self._write_ledger()  # before the first command: a crash must not lose a route
            self.poll_control()
            self.pump()
            timers = asyncio.create_task(self._timers())
            heartbeat = asyncio.create_task(self._heartbeat()) if self.floor else None
            if self.cfg.vip_states is not None:
                self._spawn(self._follow_vip_states())
            while not self._stopping.is_set():
                read = asyncio.create_task(read_line(reader))
                done, _ = await asyncio.wait(
                    {read, stop, timers}, return_when=asyncio.FIRST_COMPLETED
                )
                if read not in done:
                    read.cancel()
                    await asyncio.gather(read, return_exceptions=True)
                    if timers in done and not self._stopping.is_set():
                        log.error("timer task ended: %r; withdrawing", timers.exception())
                        code = 1
                    break
                try:
                    line = read.result()
                except ExaBGPProtocolError as e:
                    log.error("%s", e)
                    continue
                if not line:
                    log.warning("ExaBGP closed the pipe")
                    break
                self.receive_line(line.decode("utf-8", "replace"))
        except (loopback.LoopbackError, MetricsServerError, OSError) as e:
            log.error("%s; withdrawing everything", e)
            code = 1
        finally:
            self._stopping.set()
            for task in (timers, heartbeat, self._bfd_task, *self._tasks):
                if task is not None:
                    task.cancel()
            await asyncio.gather(  # the BFD task too: it kills and reaps a vtysh in flight
                *(t for t in (timers, heartbeat, self._bfd_task) if t is not None),
                return_exceptions=True,
            )
            if self.vip_reader is not None:
                await self.vip_reader.stop()
            try:
                await self._shutdown(reader)
            finally:
                stop.cancel()
                await asyncio.gather(stop, return_exceptions=True)
                if self.floor is not None:
                    await self.floor.close()
                self.metrics.stop()
        return code

    async def _shutdown(self, reader: asyncio.StreamReader) -> None:
        """Withdraw everything, wait (bounded) for ExaBGP's acks, then clean up."""
        self.core.shutdown(self.clock())
        with contextlib.suppress(OSError):
            self.pump()
        deadline = self.clock() + EXIT_WITHDRAW_WAIT
        try:
            while self.sync.pending_count and self.clock() < deadline and not reader.at_eof():
                try:
                    line = await asyncio.wait_for(read_line(reader), deadline - self.clock())
                except TimeoutError:
                    break
                except ExaBGPProtocolError as e:
                    log.error("%s", e)
                    continue
                if not line:
                    break
                try:
                    msg = self.codec.receive_line(line.decode("utf-8", "replace"))
                except ExaBGPProtocolError as e:
                    log.error("%s", e)
                    continue
                if isinstance(msg, Acked) and not isinstance(msg.op, Probe):
                    (self.sync.acked if msg.ok else self.sync.failed)(msg.op)
        finally:
            self._forget_withdrawn()
            self.write_status(force=True)
            if self.floor is not None:
                await self._floor_call("leave")
            if self.cfg.manage_loopback:
                try:
                    await loopback.remove(self.cfg.loopback, list(self.cfg.vips))
                except loopback.LoopbackError as e:
                    log.error("%s", e)


async def _main(cfg: AnnouncerConfig) -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer

    def write(data: bytes) -> None:
        out.write(data)
        out.flush()

    daemon = AnnouncerDaemon(cfg, write=write)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon._stopping.set)
    return await daemon.run(reader)


def main(cfg: AnnouncerConfig) -> int:
    # ExaBGP starts its API process with its own daemon umask (0137), under which state_dir
    # would be created rw-r----- and be unusable without CAP_DAC_OVERRIDE.
    os.umask(0o022)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"announcer {cfg.node} %(levelname)s %(message)s",
    )
    try:
        return asyncio.run(_main(cfg))
    except loopback.LoopbackError as e:
        log.error("%s", e)
        return 1
