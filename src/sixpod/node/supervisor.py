"""Run the node's services, restart what dies, stop them all when stopped.

The restart policy is a pure core (:class:`Restarts`: time is an argument);
:class:`Supervisor` is its adapter. Each service runs in its own session (so a stop reaches
everything it started: ExaBGP's announcer, which ExaBGP puts in a process group of its own,
the edge agent's nginx), with ``PR_SET_PDEATHSIG`` (SIGTERM when the supervisor dies). A
*guardian*, forked first into its own session, learns every session the supervisor starts
over a pipe; when the pipe closes, whatever the supervisor's end (SIGTERM, SIGKILL, a
crash), it stops the sessions still alive: SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT`.
No service outlives the supervisor.

``RUN/supervisor.json`` shows each service's pid, restarts and last exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sixpod.node.errors import ApplyFailed
from sixpod.node.services import Plan, Runtime, Service

log = logging.getLogger("sixpod.node.supervisor")

STOP_TIMEOUT = 10.0
"""Seconds a service has to stop on SIGTERM before SIGKILL."""
READY_TIMEOUT = 15.0
PR_SET_PDEATHSIG = 1
STATUS_FILE = "supervisor.json"


# -- the policy (pure) ---------------------------------------------------------------------


@dataclass
class Restarts:
    """When to start a service again after it died: at once the first time, then with a
    delay doubling from ``min_delay`` to ``max_delay``; a service that ran ``stable`` seconds
    starts from the beginning again (systemd's ``Restart=always`` with a growing backoff)."""

    min_delay: float = 0.5
    max_delay: float = 10.0
    stable: float = 30.0
    started: dict[str, float] = field(default_factory=dict)
    streak: dict[str, int] = field(default_factory=dict)
    due: dict[str, float] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)

    def handle_start(self, name: str, now: float) -> None:
        self.started[name] = now
        self.due.pop(name, None)

    def handle_exit(self, name: str, now: float) -> float:
        """Record a death; returns when to start it again."""
        ran = now - self.started.get(name, now)
        streak = 0 if ran >= self.stable else self.streak.get(name, 0) + 1
        self.streak[name] = streak
        self.count[name] = self.count.get(name, 0) + 1
        delay = 0.0 if streak <= 1 else min(self.max_delay, self.min_delay * 2 ** (streak - 2))
        self.due[name] = now + delay
        return self.due[name]

    def next_timer(self) -> float | None:
        return min(self.due.values()) if self.due else None

    def handle_timer(self, now: float) -> list[str]:
        """The services due to start now."""
        return sorted(n for n, t in self.due.items() if t <= now)


# -- the guardian ----------------------------------------------------------------------------


def _pdeathsig(sig: int) -> Callable[[], None]:
    libc = ctypes.CDLL(None, use_errno=True)

    def set_it() -> None:
        libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return set_it


def session_members(sids: set[int]) -> list[int]:
    """Live processes (not zombies) whose session is one of ``sids`` (from ``/proc``)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) in sids:
            found.append(int(entry.name))
    return found


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
            if sig != signal.SIGKILL:
                os.kill(pid, signal.SIGCONT)  # a stopped process cannot act on sig


def _stop_sessions(sids: list[int], timeout: float = STOP_TIMEOUT) -> None:
    """Stop every process of the sessions (a service and whatever it started, in any
    process group: ExaBGP puts its API process in a group of its own): SIGTERM to the
    session leaders first, their children next, SIGKILL to what is left after ``timeout``."""
    wanted = set(sids)
    leaders = [s for s in sids if s in session_members(wanted)]
    _signal(leaders, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    term_rest = time.monotonic() + min(1.0, timeout / 2)
    others_signalled = False
    while (left := session_members(wanted)) and time.monotonic() < deadline:
        if not others_signalled and (time.monotonic() > term_rest or not set(left) & set(leaders)):
            _signal([p for p in left if p not in leaders], signal.SIGTERM)
            others_signalled = True
        time.sleep(0.05)
    _signal(session_members(wanted), signal.SIGKILL)


def _guardian(read_fd: int) -> None:
    """In a child of its own session: collect ``+SID`` / ``-SID`` lines; at EOF stop the
    sessions still listed. Never returns."""
    try:
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        groups: set[int] = set()
        with os.fdopen(read_fd, "r") as pipe:
            for line in pipe:
                with contextlib.suppress(ValueError):
                    pg = int(line[1:])
                    if line.startswith("+"):
                        groups.add(pg)
                    elif line.startswith("-"):
                        groups.discard(pg)
        _stop_sessions(sorted(groups))
    finally:
        os._exit(0)


class Guardian:
    def __init__(self) -> None:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(w)
            for fd in (0, 1, 2):
                with contextlib.suppress(OSError):
                    os.dup2(os.open(os.devnull, os.O_RDWR), fd)
            _guardian(r)
        os.close(r)
        os.set_inheritable(w, False)
        self.pid = pid
        self.pipe = os.fdopen(w, "w", buffering=1)

    def watch(self, pgid: int) -> None:
        self.pipe.write(f"+{pgid}\n")

    def forget(self, pgid: int) -> None:
        self.pipe.write(f"-{pgid}\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.pipe.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


# -- the adapter -----------------------------------------------------------------------------


@dataclass
class Running:
    service: Service
    popen: subprocess.Popen[bytes]
    started: float


def prepare(plan: Plan, rt: Runtime) -> None:
    """Make the directories, write the effective configs and the Redis password include,
    make ExaBGP's CLI pipes."""
    import shutil

    try:
        for d in (rt.run_dir, rt.state_dir, rt.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        rt.run_dir.chmod(0o755)  # bfdd and zebra (user frr) reach their sockets through it
        for d in (rt.frr_dir, rt.exabgp_pipes, rt.redis_auth.parent, rt.state_dir / "redis"):
            d.mkdir(parents=True, exist_ok=True)
        shutil.chown(rt.frr_dir, "frr", "frr")
        rt.frr_dir.chmod(0o775)
        for path, text in plan.files.items():
            path.write_text(text, encoding="utf-8")
            if path.parent == rt.frr_dir:
                shutil.chown(path, "frr", "frr")
        for end in ("in", "out"):
            fifo = rt.exabgp_pipes / f"exabgp.{end}"
            if not fifo.is_fifo():
                fifo.unlink(missing_ok=True)
                os.mkfifo(fifo, 0o600)
        if plan.password_file is not None:
            password = plan.password_file.read_text(encoding="utf-8").strip()
            if not password or any(c.isspace() or c == '"' for c in password):
                raise ApplyFailed(f"{plan.password_file}: empty, or holds spaces or quotes")
            fd = os.open(rt.redis_auth, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(f"requirepass {password}\nmasterauth {password}\n")
    except LookupError:
        raise ApplyFailed("no user frr: install FRR (Debian package frr)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ApplyFailed(f"preparing {rt.run_dir}: {e}") from None


class Supervisor:
    def __init__(self, plan: Plan, rt: Runtime) -> None:
        self.plan = plan
        self.rt = rt
        self.restarts = Restarts()
        self.running: dict[str, Running] = {}
        self.exits: dict[str, str] = {}
        self.stopping = False
        self.guardian: Guardian | None = None

    def _start(self, svc: Service) -> None:
        out = self.rt.log_dir / f"{svc.name}.log"
        if svc.ready_file is not None:  # left by a run that was killed: not ready yet
            with contextlib.suppress(OSError):
                svc.ready_file.unlink(missing_ok=True)
        env = {**os.environ, **dict(svc.env)}
        try:
            with out.open("ab") as f:
                popen = subprocess.Popen(
                    list(svc.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    preexec_fn=_pdeathsig(signal.SIGTERM),  # noqa: PLW1509 (no threads)
                )
        except OSError as e:
            raise ApplyFailed(f"{svc.name}: cannot start {svc.argv[0]}: {e.strerror}") from None
        assert self.guardian is not None
        self.guardian.watch(popen.pid)
        now = time.monotonic()
        self.running[svc.name] = Running(svc, popen, now)
        self.restarts.handle_start(svc.name, now)
        log.info("%s started (pid %d)", svc.name, popen.pid)
        self._status()

    def _wait_ready(self, svc: Service) -> None:
        if svc.ready_file is None:
            return
        deadline = time.monotonic() + READY_TIMEOUT
        while not svc.ready_file.exists():
            if self.running[svc.name].popen.poll() is not None or self.stopping:
                return  # the loop restarts it
            if time.monotonic() > deadline:
                log.warning("%s: no %s after %g s", svc.name, svc.ready_file, READY_TIMEOUT)
                return
            time.sleep(0.02)

    def _status(self) -> None:
        doc = {
            "pid": os.getpid(),
            "guardian": self.guardian.pid if self.guardian else None,
            "services": {
                s.name: {
                    "pid": self.running[s.name].popen.pid if s.name in self.running else None,
                    "restarts": self.restarts.count.get(s.name, 0),
                    "last_exit": self.exits.get(s.name),
                }
                for s in self.plan.services
            },
        }
        path = self.rt.run_dir / STATUS_FILE
        tmp = path.with_suffix(".tmp")
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(doc, indent=2) + "\n")
            tmp.replace(path)

    def _reap(self) -> None:
        now = time.monotonic()
        for name, r in list(self.running.items()):
            code = r.popen.poll()
            if code is None:
                continue
            del self.running[name]
            _stop_sessions([r.popen.pid], timeout=2.0)  # what it left in its session
            assert self.guardian is not None
            self.guardian.forget(r.popen.pid)
            how = f"signal {-code}" if code < 0 else f"status {code}"
            self.exits[name] = how
            due = self.restarts.handle_exit(name, now)
            log.warning("%s exited (%s); restarting in %.1f s", name, how, due - now)
            self._status()

    def stop(self, *_: object) -> None:
        self.stopping = True

    def run(self) -> int:
        self.guardian = Guardian()
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        try:
            for svc in self.plan.services:
                if self.stopping:
                    break
                self._start(svc)
                self._wait_ready(svc)
            by_name = {s.name: s for s in self.plan.services}
            while not self.stopping:
                self._reap()
                for name in self.restarts.handle_timer(time.monotonic()):
                    self._start(by_name[name])
                time.sleep(0.05)
        finally:
            log.info("stopping %s", ", ".join(reversed(list(self.running))) or "nothing")
            for name in reversed([s.name for s in self.plan.services]):
                r = self.running.pop(name, None)
                if r is not None:
                    t0 = time.monotonic()
                    _stop_sessions([r.popen.pid])
                    log.info("%s stopped in %.2f s", name, time.monotonic() - t0)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        r.popen.wait(1)
                    self.guardian.forget(r.popen.pid)
            self.guardian.close()
            self._status()
        return 0


def supervise(plan: Plan, rt: Runtime) -> int:
    """Prepare, start every service in order, keep them running until SIGTERM or SIGINT;
    then stop them (in reverse order) and return 0."""
    prepare(plan, rt)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    return Supervisor(plan, rt).run()
