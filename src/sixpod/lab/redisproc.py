"""Run a real ``redis-server`` on loopback for tests and benchmarks: a free port, a password.

Use it as a context manager, directly or behind a pytest fixture::

    from sixpod.lab.redisproc import redis_server

    @pytest.fixture
    def primary(tmp_path: Path) -> Iterator[RedisServer]:
        with redis_server(tmp_path) as server:
            yield server

    def test_replica(tmp_path: Path, primary: RedisServer) -> None:
        with redis_server(tmp_path, replica_of=primary) as replica:
            wait_until(lambda: replica.info("replication")["master_link_status"] == "up")
            primary.stop()  # by PID; the context manager would do it at exit anyway

Each server gets a fresh sub-directory of ``base`` (a temporary directory, removed at exit,
when ``base`` is None) holding ``redis.conf``, ``redis.log`` and ``password`` (the password,
for the ``password_file`` settings of sixpod configs). Persistence is off; replication is
tuned for tests (diskless sync without delay). The server is ready (it answers an
authenticated PING) when the context manager yields. Teardown stops it by PID: SIGTERM,
then SIGKILL after ``stop_timeout``, and always reaps it; :meth:`RedisServer.stop` may be
called earlier and is idempotent.

Ports: a free port is found by binding port 0 and closing the socket; if another process
takes it before Redis binds, Redis exits with "Address already in use" and the start is
retried on a new port.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import redis

from sixpod import addr, redisclient

__all__ = [
    "REDIS_SERVER",
    "RedisServer",
    "RedisStartError",
    "async_wait_until",
    "free_port",
    "redis_server",
    "wait_until",
]

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
"""The redis-server binary (Debian's ``redis-server`` package)."""

T = TypeVar("T")


class RedisStartError(RuntimeError):
    """redis-server did not come up; the message ends with the tail of its log."""


def wait_until(
    condition: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that.

    Raises AssertionError after ``timeout`` seconds (a bound, not an expected duration).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or condition}")
        time.sleep(interval)


async def async_wait_until(
    condition: Callable[[], Awaitable[T]],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "",
) -> T:
    """:func:`wait_until` for coroutines: poll ``await condition()`` inside a running loop."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        result = await condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or condition}")
        await asyncio.sleep(interval)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (bind port 0, read it, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RedisServer:
    """A running redis-server started by :func:`redis_server`."""

    host: str
    """Loopback address it listens on: ``127.0.0.1`` or ``::1``."""
    port: int
    password: str
    directory: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    stop_timeout: float = 10.0

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def endpoint(self) -> addr.Endpoint:
        return addr.Endpoint(addr.parse_ip(self.host), self.port)

    @property
    def address(self) -> str:
        """``127.0.0.1:6379`` / ``[::1]:6379``, as sixpod configs spell an endpoint."""
        return addr.for_redis(self.endpoint)

    @property
    def password_file(self) -> Path:
        return self.directory / "password"

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def client(self, **kwargs: Any) -> redis.Redis:
        """A synchronous redis-py client for test setup and assertions; close it after use."""
        options = {"socket_timeout": 5.0, "decode_responses": True, **kwargs}
        return redisclient.RedisTarget(
            self.endpoint,
            password=self.password,
            timeout=options.pop("socket_timeout"),
            connect_timeout=options.pop("socket_connect_timeout", 5.0),
            retry=False,
            decode=options.pop("decode_responses"),
        ).client(**options)

    def info(self, section: str = "default") -> dict[str, Any]:
        """``INFO section`` through a short-lived client."""
        with contextlib.closing(self.client()) as c:
            result: dict[str, Any] = c.info(section)
            return result

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the server by PID (``sig``, then SIGKILL after ``stop_timeout``) and reap it.

        Idempotent. SIGKILL simulates a crash; SIGTERM is a clean shutdown (either way clients
        see their connections close).
        """
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _config(
    *, host: str, port: int, password: str, directory: Path, replica_of: RedisServer | None
) -> str:
    lines = [
        f"bind {host}",
        f"port {port}",
        "daemonize no",
        f'dir "{directory}"',
        f'logfile "{directory / "redis.log"}"',
        "loglevel notice",
        'save ""',
        "appendonly no",
        f"requirepass {password}",
        "shutdown-timeout 0",
        "repl-diskless-sync yes",
        "repl-diskless-sync-delay 0",
        "repl-diskless-load on-empty-db",
    ]
    if replica_of is not None:
        lines += [
            f"replicaof {replica_of.host} {replica_of.port}",
            f"masterauth {replica_of.password}",
        ]
    return "\n".join(lines) + "\n"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


def _answers(server: RedisServer) -> bool:
    try:
        with contextlib.closing(server.client(socket_timeout=1.0)) as c:
            return bool(c.ping())
    except redis.ConnectionError:  # not listening yet (a LOADING reply is a ResponseError)
        return False
    except redis.ResponseError:
        return False


def _start(
    directory: Path,
    *,
    host: str,
    password: str,
    replica_of: RedisServer | None,
    extra: Mapping[str, str],
    start_timeout: float,
    stop_timeout: float,
    port: int | None = None,
) -> RedisServer:
    port = port or free_port(host)
    conf = directory / "redis.conf"
    text = _config(
        host=host, port=port, password=password, directory=directory, replica_of=replica_of
    )
    text += "".join(f"{key} {value}\n" for key, value in extra.items())
    conf.write_text(text)
    log = directory / "redis.log"
    log.unlink(missing_ok=True)
    process = subprocess.Popen(
        [REDIS_SERVER, str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=directory,
    )
    server = RedisServer(host, port, password, directory, process, stop_timeout)
    try:
        deadline = time.monotonic() + start_timeout
        while not _answers(server):
            if process.poll() is not None:
                raise RedisStartError(
                    f"redis-server exited with status {process.returncode}:\n{_tail(log)}"
                )
            if time.monotonic() >= deadline:
                raise RedisStartError(
                    f"redis-server not ready after {start_timeout:g} s:\n{_tail(log)}"
                )
            time.sleep(0.01)
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def redis_server(
    base: Path | None = None,
    *,
    host: str = "127.0.0.1",
    password: str | None = None,
    replica_of: RedisServer | None = None,
    config: Mapping[str, str] | None = None,
    start_timeout: float = 10.0,
    stop_timeout: float = 10.0,
    attempts: int = 5,
    port: int | None = None,
) -> Iterator[RedisServer]:
    """Start redis-server on ``host`` (loopback only), yield it ready, stop it by PID at exit.

    ``password`` defaults to a random token; ``replica_of`` makes it a replica (``replicaof``
    plus ``masterauth``) of another server from this module; ``config`` adds directives
    (``{"repl-ping-replica-period": "1"}``); ``port`` pins the port (to restart a server in
    place). The replica is yielded as soon as it answers,
    not when its link is up: poll ``info("replication")`` for that.
    """
    if host not in ("127.0.0.1", "::1"):
        raise ValueError(f"tests only use loopback, got {host!r}")
    password = password if password is not None else secrets.token_hex(16)
    with contextlib.ExitStack() as stack:
        if base is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="redis-")))
        else:
            root = Path(tempfile.mkdtemp(prefix="redis-", dir=base))
        (root / "password").write_text(password + "\n")
        for attempt in range(attempts):
            try:
                server = _start(
                    root,
                    host=host,
                    password=password,
                    replica_of=replica_of,
                    extra=config or {},
                    start_timeout=start_timeout,
                    stop_timeout=stop_timeout,
                    port=port,
                )
            except RedisStartError as e:
                # Lost the race for the port to another process: try another one.
                if "Address already in use" in str(e) and attempt + 1 < attempts and not port:
                    continue
                raise
            break
        else:  # pragma: no cover - the loop breaks or raises
            raise AssertionError("unreachable")
        try:
            yield server
        finally:
            server.stop()
