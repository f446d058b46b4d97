"""Health-check adapters: run one configured check against the real world, once.

:func:`run_check` is the only entry point. It is asyncio-native (no threads), bounded as a
whole by ``check.timeout``, and never raises: every failure, including the timeout, comes
back as an :class:`Outcome` with ``ok=False`` and a short human ``detail`` ("HTTP 503",
"connect refused", "timeout after 0.5 s", "replica link down", "exit 1"). Foreign exceptions
(``OSError``, ``redis.*``, ``UnicodeError``, address errors, stream errors) are translated
here, at the I/O edge; an unexpected exception from a check is reported as a failed check
("check crashed: ...") rather than taking the announcer down. Only cancellation by the
caller propagates.

The verdict logic that needs no I/O (the Redis replication rule, the HTTP status line) is
in small pure functions next to the adapters, so it is testable without a server.

Kinds:

- ``http``: one HTTP/1.1 ``GET`` with ``Connection: close`` over asyncio streams; passes on a
  2xx status. ``http://`` only. The URL goes through :func:`sixpod.addr.parse_url`: IPv6
  literals (``http://[::1]:8081/healthz``), IPv4 and DNS names (resolved by the event loop's
  ``getaddrinfo``); a link-local zone (``[fe80::1%25eth0]``) is used to connect but never
  written into the ``Host`` header (RFC 9844). ``Host`` is ``check.host`` or the URL
  authority. Only the status line and the headers are read (at most 8 KiB a line and 100
  lines); the body is never waited for, so a slow or endless body cannot fail a service
  that has already answered.
- ``tcp``: connect to ``check.target``, then close.
- ``redis``: ``INFO replication`` through redis-py's asyncio client, one short-lived
  connection per run (closed every time, no retries), the password read from
  ``check.password_file`` at each run (rotation needs no restart). A replica passes when
  its link is up and ``master_last_io_seconds_ago <= max_lag``; a primary passes too: a
  standalone or primary Redis is trivially fresh (this covers a one-node lab and a node that
  hosts the pod's primary). The primary pings its replicas every
  ``repl-ping-replica-period`` seconds (10 by default), so an idle but healthy replica's
  lag reaches that period: keep ``max_lag`` above it (30 s by default; at 10 s an idle
  replica failed whenever a ping came a second late).
- ``command``: ``argv`` executed directly (no shell) in its own session, stdin and stdout on
  ``/dev/null`` (the announcer's stdout is the ExaBGP API channel), stderr inherited for the
  log; passes on exit status 0. On timeout the process group whose id is the child's PID is
  killed with SIGKILL (so a script's own children die with it) and the child is reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from sixpod import addr
from sixpod.routing.config import CommandCheck, HttpCheck, RedisCheck, TcpCheck

__all__ = [
    "AnyCheck",
    "Outcome",
    "describe_redis_error",
    "judge_replication",
    "parse_status_line",
    "run_check",
]

AnyCheck: TypeAlias = HttpCheck | TcpCheck | RedisCheck | CommandCheck

_MAX_DETAIL: Final = 160
_MAX_LINE: Final = 8192
_MAX_HEADER_LINES: Final = 100
_STATUS_LINE: Final = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?\r?\n")
_HOST_HEADER: Final = re.compile(r"[!-~]+")  # visible ASCII, no spaces or controls


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one check run: ``ok``, and a short human ``detail`` for logs and status."""

    ok: bool
    detail: str

    def __post_init__(self) -> None:
        if not isinstance(self.ok, bool):
            raise ValueError(f"ok must be a bool, got {self.ok!r}")
        if not isinstance(self.detail, str):
            raise ValueError(f"detail must be a string, got {self.detail!r}")


class _Failed(Exception):
    """Internal: the check failed; ``str()`` is the detail. Never leaves this module."""


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


async def run_check(check: AnyCheck) -> Outcome:
    """Run ``check`` once, bounded by ``check.timeout``; never raises (except cancellation)."""
    deadline = asyncio.timeout(check.timeout)
    try:
        async with deadline:
            outcome = await _dispatch(check)
    except TimeoutError as e:
        if deadline.expired():
            return Outcome(False, f"timeout after {check.timeout:g} s")
        return Outcome(False, _short(f"check crashed: {type(e).__name__}: {e}"))  # not ours
    except _Failed as e:
        return Outcome(False, _short(str(e)))
    except Exception as e:  # a bug in a check must fail the check, not the announcer
        return Outcome(False, _short(f"check crashed: {type(e).__name__}: {e}"))
    return dataclasses.replace(outcome, detail=_short(outcome.detail))


async def _dispatch(check: AnyCheck) -> Outcome:
    if isinstance(check, HttpCheck):
        return await _http(check)
    if isinstance(check, TcpCheck):
        return await _tcp(check)
    if isinstance(check, RedisCheck):
        return await _redis(check)
    return await _command(check)


# --- shared network helpers -----------------------------------------------------------------


def _describe_os_error(e: OSError) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connect refused"
    if isinstance(e, ConnectionResetError):
        return "connection reset"
    if isinstance(e, TimeoutError):
        return "timed out (OS)"
    if isinstance(e, socket.gaierror):
        return f"name resolution failed: {e.strerror or e}"
    return e.strerror or str(e) or type(e).__name__


def _connect_host(ip: addr.IPAddress, zone: str | None) -> str:
    """Text for getaddrinfo: a bare address, with ``%zone`` for a link-local IPv6 one."""
    text = addr.format_ip(ip)
    return f"{text}%{zone}" if zone is not None else text


@contextlib.asynccontextmanager
async def _connection(
    host: str, port: int
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """An asyncio stream connection that is always closed (aborted: no lingering flush)."""
    try:
        reader, writer = await asyncio.open_connection(host, port, limit=_MAX_LINE)
    except OSError as e:
        raise _Failed(_describe_os_error(e)) from None
    try:
        yield reader, writer
    finally:
        writer.transport.abort()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


# --- tcp ------------------------------------------------------------------------------------


async def _tcp(check: TcpCheck) -> Outcome:
    target = check.target
    async with _connection(_connect_host(target.ip, target.zone), target.port):
        return Outcome(True, "connected")


# --- http -----------------------------------------------------------------------------------


def parse_status_line(line: bytes) -> int:
    """The status code of an HTTP/1.x status line (with its line ending), or ValueError."""
    m = _STATUS_LINE.fullmatch(line)
    if m is None:
        raise ValueError(f"bad status line {line[:40].decode('latin-1')!r}")
    return int(m.group(1))


def _request(check: HttpCheck) -> tuple[str, int, bytes]:
    """Where to connect and what to send, from the check's URL; raises _Failed."""
    try:
        url = addr.parse_url(check.url, allow_zone=True)
    except addr.AddressError as e:
        raise _Failed(f"bad URL: {e}") from None
    if url.scheme != "http":
        raise _Failed(f"unsupported URL scheme {url.scheme!r} (http only)")
    header_host: addr.Address | str
    if isinstance(url.host, str):
        connect, header_host = url.host, url.host
    else:
        connect = _connect_host(url.host.ip, url.host.zone)
        header_host = addr.Address(url.host.ip)  # never a zone in Host (RFC 9844)
    authority = addr.format_url(dataclasses.replace(url, host=header_host, path=""))
    host = check.host if check.host is not None else authority[len("http://") :]
    if not _HOST_HEADER.fullmatch(host):
        raise _Failed(f"bad Host header {host!r}")
    target = url.path.partition("#")[0]
    target = "/" + target if not target.startswith("/") else target
    try:
        request = (
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sixpod-check\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
    except UnicodeEncodeError:
        raise _Failed("bad URL: non-ASCII characters in the path") from None
    return connect, url.port or 80, request


async def _read_line(reader: asyncio.StreamReader, what: str) -> bytes:
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial and what == "status line":
            raise _Failed("connection closed without a response") from None
        raise _Failed(f"connection closed in the {what}") from None
    except asyncio.LimitOverrunError:
        raise _Failed(f"{what} longer than {_MAX_LINE} bytes") from None


async def _http(check: HttpCheck) -> Outcome:
    host, port, request = _request(check)
    async with _connection(host, port) as (reader, writer):
        try:
            writer.write(request)
            await writer.drain()
            line = await _read_line(reader, "status line")
            try:
                status = parse_status_line(line)
            except ValueError as e:
                raise _Failed(str(e)) from None
            for _ in range(_MAX_HEADER_LINES):
                if (await _read_line(reader, "headers")).rstrip(b"\r\n") == b"":
                    break
            else:
                raise _Failed(f"more than {_MAX_HEADER_LINES} header lines")
        except OSError as e:
            raise _Failed(_describe_os_error(e)) from None
    return Outcome(200 <= status < 300, f"HTTP {status}")


# --- redis ----------------------------------------------------------------------------------


def judge_replication(info: Mapping[str, object], max_lag: float) -> Outcome:
    """The redis check's verdict from a parsed ``INFO replication`` (pure).

    A primary passes (a standalone or primary Redis is trivially fresh); a replica passes
    when ``master_link_status`` is ``up`` and ``master_last_io_seconds_ago <= max_lag``.
    """
    role = info.get("role")
    if role == "master":
        return Outcome(True, "primary")
    if role != "slave":
        return Outcome(False, f"unexpected role {role!r}")
    if info.get("master_link_status") != "up":
        return Outcome(False, "replica link down")
    lag = info.get("master_last_io_seconds_ago")
    if isinstance(lag, bool) or not isinstance(lag, int | float) or lag < 0:
        return Outcome(False, f"replica lag unknown ({lag!r})")
    if lag > max_lag:
        return Outcome(False, f"lag {lag:g} s > {max_lag:g} s")
    return Outcome(True, f"replica lag {lag:g} s")


def _read_password(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            password = f.read().strip()
    except OSError as e:
        raise _Failed(f"password file {path}: {e.strerror or e}") from None
    except UnicodeError:
        raise _Failed(f"password file {path}: not UTF-8") from None
    if not password:
        raise _Failed(f"password file {path} is empty")
    return password


def describe_redis_error(e: redis.exceptions.RedisError | OSError) -> str:
    """Short text for a redis-py (or socket) error: "connect refused", "redis auth failed: ..."."""
    if isinstance(e, OSError):
        return _describe_os_error(e)
    if isinstance(e, redis.exceptions.AuthenticationError) or str(e).startswith(
        ("NOAUTH", "WRONGPASS")
    ):
        return f"auth failed: {e}"
    if isinstance(e, redis.exceptions.ConnectionError) and isinstance(e.__context__, OSError):
        return _describe_os_error(e.__context__)
    if isinstance(e, redis.exceptions.TimeoutError):
        return "timed out (client)"
    return f"redis error: {e}"


def _redis_client(check: RedisCheck, password: str | None) -> redis.asyncio.Redis:
    # No retries: the run is bounded and a failure is an answer (redis-py's default of 10
    # retries with backoff would turn "connect refused" into "timeout").
    return redis.asyncio.Redis(
        host=_connect_host(check.target.ip, check.target.zone),
        port=check.target.port,
        password=password,
        socket_timeout=check.timeout,
        socket_connect_timeout=check.timeout,
        retry=Retry(NoBackoff(), 0),
    )


async def _redis(check: RedisCheck) -> Outcome:
    password = _read_password(check.password_file) if check.password_file else None
    client = _redis_client(check, password)
    try:
        info = await client.info("replication")
    except (redis.exceptions.RedisError, OSError) as e:
        raise _Failed(f"redis: {describe_redis_error(e)}") from None
    finally:
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            await client.aclose()
    return judge_replication(info, check.max_lag)


# --- command --------------------------------------------------------------------------------


def _describe_status(code: int) -> str:
    if code >= 0:
        return f"exit {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


async def _command(check: CommandCheck) -> Outcome:
    try:
        process = await asyncio.create_subprocess_exec(
            *check.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as e:
        raise _Failed(f"cannot run {check.argv[0]!r}: {e.strerror or e}") from None
    try:
        code = await process.wait()
    finally:
        if process.returncode is None:  # timed out or cancelled: not reaped, so the PID is ours
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    return Outcome(code == 0, _describe_status(code))
