"""Health-check adapters against real servers on loopback (HTTP, TCP, redis-server, commands)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sixpod.lab.redisproc import RedisServer, async_wait_until, free_port, redis_server, wait_until
from sixpod.routing.checks import Outcome, judge_replication, parse_status_line, run_check
from sixpod.routing.config import CommandCheck, HttpCheck, RedisCheck, TcpCheck

# --- a small real HTTP server ----------------------------------------------------------------

_RESPONSES = {
    b"/ok": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    b"/empty": b"HTTP/1.0 204 No Content\r\n\r\n",
    b"/fail": b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
    b"/garbage": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    b"/headless": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n",  # closes inside the headers
    b"/close": b"",  # closes without answering
    # Headers, then a body that never ends: the check must not wait for it.
    b"/endless": b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\nxxxx",
}


@dataclass
class HttpServer:
    port: int
    requests: list[bytes] = field(default_factory=list)


@contextlib.asynccontextmanager
async def http_server(*hosts: str) -> AsyncIterator[HttpServer]:
    """A real HTTP/1.1 server on loopback, answering by path (``/slow`` never answers)."""
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            state.requests.append(head)
            path = head.split(b" ", 2)[1].partition(b"?")[0]
            if path == b"/slow":
                await reader.read()  # until the client gives up and closes
                return
            writer.write(_RESPONSES[path])
            await writer.drain()
            if path == b"/endless":
                await reader.read()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            handlers.discard(task)

    first, *others = hosts or ("127.0.0.1",)
    servers = [await asyncio.start_server(handle, first, 0)]
    state = HttpServer(servers[0].sockets[0].getsockname()[1])
    try:
        for host in others:  # the same port on every address, as a DNS name needs
            servers.append(await asyncio.start_server(handle, host, state.port))
        yield state
    finally:
        for server in servers:
            server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        for server in servers:
            await server.wait_closed()


def http(url: str, *, host: str | None = None, timeout: float = 5.0) -> HttpCheck:
    return HttpCheck(name="web", kind="http", url=url, host=host, timeout=timeout)


async def _check_http(path: str, *, timeout: float = 5.0) -> tuple[Outcome, list[bytes]]:
    async with http_server() as srv:
        outcome = await run_check(http(f"http://127.0.0.1:{srv.port}{path}", timeout=timeout))
        return outcome, srv.requests


def test_http_200_passes_and_sends_a_proper_request() -> None:
    outcome, requests = asyncio.run(_check_http("/ok?probe=1#frag"))
    assert outcome == Outcome(True, "HTTP 200")
    (head,) = requests
    lines = head.decode().split("\r\n")
    assert lines[0] == "GET /ok?probe=1 HTTP/1.1"
    assert "Connection: close" in lines
    assert any(line.startswith("Host: 127.0.0.1:") for line in lines)


def test_http_any_2xx_passes() -> None:
    outcome, _ = asyncio.run(_check_http("/empty"))
    assert outcome == Outcome(True, "HTTP 204")


def test_http_503_fails() -> None:
    outcome, _ = asyncio.run(_check_http("/fail"))
    assert outcome == Outcome(False, "HTTP 503")


def test_http_garbage_fails_with_the_status_line() -> None:
    outcome, _ = asyncio.run(_check_http("/garbage"))
    assert not outcome.ok
    assert outcome.detail == "bad status line 'SSH-2.0-OpenSSH_9.2\\r\\n'"


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/close", "connection closed without a response"),
        ("/headless", "connection closed in the headers"),
    ],
)
def test_http_early_close_fails(path: str, detail: str) -> None:
    outcome, _ = asyncio.run(_check_http(path))
    assert outcome == Outcome(False, detail)


def test_http_endless_body_is_not_waited_for() -> None:
    outcome, _ = asyncio.run(_check_http("/endless"))
    assert outcome == Outcome(True, "HTTP 200")


def test_http_slow_server_times_out() -> None:
    outcome, requests = asyncio.run(_check_http("/slow", timeout=0.3))
    assert outcome == Outcome(False, "timeout after 0.3 s")
    assert len(requests) == 1  # it did connect and ask


def test_http_ipv6_literal_and_host_header() -> None:
    async def main() -> tuple[Outcome, Outcome, HttpServer]:
        async with http_server("::1") as srv:
            plain = await run_check(http(f"http://[::1]:{srv.port}/ok"))
            named = await run_check(http(f"http://[::1]:{srv.port}/ok", host="app.example"))
            return plain, named, srv

    plain, named, srv = asyncio.run(main())
    assert plain == named == Outcome(True, "HTTP 200")
    hosts = [line for r in srv.requests for line in r.decode().split("\r\n") if line[:5] == "Host:"]
    assert hosts == [f"Host: [::1]:{srv.port}", "Host: app.example"]


def test_http_dns_name() -> None:
    async def main() -> Outcome:
        async with http_server("127.0.0.1", "::1") as srv:
            return await run_check(http(f"http://localhost:{srv.port}/ok"))

    assert asyncio.run(main()) == Outcome(True, "HTTP 200")


def test_http_refused() -> None:
    port = free_port()  # free a moment ago, nobody listens
    outcome = asyncio.run(run_check(http(f"http://127.0.0.1:{port}/ok")))
    assert outcome == Outcome(False, "connect refused")


@pytest.mark.parametrize(
    ("url", "start"),
    [
        ("https://127.0.0.1/", "unsupported URL scheme 'https'"),
        ("http://[::1/healthz", "bad URL: "),
        ("http://::1:80/", "bad URL: "),
        ("http://127.0.0.1:1/caf\u00e9", "bad URL: non-ASCII"),
    ],
)
def test_http_bad_url_is_a_failure_not_an_exception(url: str, start: str) -> None:
    outcome = asyncio.run(run_check(http(url)))
    assert not outcome.ok
    assert outcome.detail.startswith(start)


def test_http_bad_host_header() -> None:
    outcome = asyncio.run(run_check(http("http://127.0.0.1:1/", host="a\r\nX: y")))
    assert not outcome.ok
    assert outcome.detail.startswith("bad Host header")


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"HTTP/1.1 200 OK\r\n", 200),
        (b"HTTP/1.0 503\r\n", 503),
        (b"HTTP/1.1 204 \n", 204),
    ],
)
def test_parse_status_line(line: bytes, status: int) -> None:
    assert parse_status_line(line) == status


@given(st.binary(max_size=64))
def test_parse_status_line_garbage_in_value_error_out(line: bytes) -> None:
    try:
        status = parse_status_line(line)
    except ValueError:
        return
    assert 0 <= status <= 999


# --- tcp -------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_tcp_accept(host: str) -> None:
    async def main() -> Outcome:
        async with http_server(host) as srv:
            target = f"[{host}]:{srv.port}" if ":" in host else f"{host}:{srv.port}"
            return await run_check(TcpCheck(name="tcp", kind="tcp", target=target))

    assert asyncio.run(main()) == Outcome(True, "connected")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_tcp_refused(host: str) -> None:
    port = free_port(host)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    outcome = asyncio.run(run_check(TcpCheck(name="tcp", kind="tcp", target=target)))
    assert outcome == Outcome(False, "connect refused")


# --- redis -----------------------------------------------------------------------------------


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[RedisServer]:
    # A long ping period: an idle primary sends the replica nothing, so its lag grows.
    with redis_server(tmp_path, config={"repl-ping-replica-period": "60"}) as server:
        yield server


@pytest.fixture
def replica(tmp_path: Path, primary: RedisServer) -> Iterator[RedisServer]:
    with redis_server(tmp_path, host="::1", replica_of=primary) as server:
        yield server


def redis_check(
    server: RedisServer, *, password_file: str | None = None, max_lag: float = 10.0
) -> RedisCheck:
    return RedisCheck(
        name="redis",
        kind="redis",
        target=server.address,
        password_file=str(server.password_file) if password_file is None else password_file,
        max_lag=max_lag,
        timeout=5.0,
    )


def test_redis_primary_passes(primary: RedisServer) -> None:
    assert asyncio.run(run_check(redis_check(primary))) == Outcome(True, "primary")


def test_redis_replica_passes_then_fails_when_the_primary_stops(
    primary: RedisServer, replica: RedisServer
) -> None:
    check = redis_check(replica)

    async def main() -> None:
        ok = await async_wait_until(lambda: _passes(check), what="the replica's link to come up")
        assert ok.detail.startswith("replica lag ")
        primary.stop()  # by PID
        down = await async_wait_until(
            lambda: _fails(check), what="the replica to notice the primary is gone"
        )
        assert down == Outcome(False, "replica link down")

    asyncio.run(main())


def test_redis_replica_lag_above_max_fails(primary: RedisServer, replica: RedisServer) -> None:
    check = redis_check(replica, max_lag=0.001)  # any whole second of silence is too much

    async def main() -> Outcome:
        await async_wait_until(lambda: _linked(replica), what="the replica's link to come up")
        return await async_wait_until(lambda: _fails(check), what="the lag to exceed max_lag")

    outcome = asyncio.run(main())
    assert outcome.detail.startswith("lag ")
    assert outcome.detail.endswith(" s > 0.001 s")


async def _passes(check: RedisCheck) -> Outcome | None:
    outcome = await run_check(check)
    return outcome if outcome.ok else None


async def _fails(check: RedisCheck) -> Outcome | None:
    outcome = await run_check(check)
    return None if outcome.ok else outcome


async def _linked(server: RedisServer) -> bool:
    return bool(server.info("replication").get("master_link_status") == "up")


@pytest.mark.parametrize("password", ["wrong-password", None])
def test_redis_wrong_or_missing_password_fails(
    tmp_path: Path, primary: RedisServer, password: str | None
) -> None:
    if password is None:
        check = redis_check(primary).model_copy(update={"password_file": None})
    else:
        (tmp_path / "wrong").write_text(password + "\n")
        check = redis_check(primary, password_file=str(tmp_path / "wrong"))
    outcome = asyncio.run(run_check(check))
    assert not outcome.ok
    assert outcome.detail.startswith("redis: auth failed: ")


def test_redis_missing_password_file(tmp_path: Path, primary: RedisServer) -> None:
    check = redis_check(primary, password_file=str(tmp_path / "absent"))
    outcome = asyncio.run(run_check(check))
    assert not outcome.ok
    assert outcome.detail.startswith("password file ")


def test_redis_refused() -> None:
    target = f"127.0.0.1:{free_port()}"
    check = RedisCheck(name="redis", kind="redis", target=target)
    assert asyncio.run(run_check(check)) == Outcome(False, "redis: connect refused")


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({"role": "master"}, Outcome(True, "primary")),
        (
            {"role": "slave", "master_link_status": "up", "master_last_io_seconds_ago": 3},
            Outcome(True, "replica lag 3 s"),
        ),
        (
            {"role": "slave", "master_link_status": "up", "master_last_io_seconds_ago": 10},
            Outcome(True, "replica lag 10 s"),
        ),
        (
            {"role": "slave", "master_link_status": "up", "master_last_io_seconds_ago": 12.3},
            Outcome(False, "lag 12.3 s > 10 s"),
        ),
        (
            {"role": "slave", "master_link_status": "down", "master_last_io_seconds_ago": -1},
            Outcome(False, "replica link down"),
        ),
        (
            {"role": "slave", "master_link_status": "up", "master_last_io_seconds_ago": -1},
            Outcome(False, "replica lag unknown (-1)"),
        ),
        ({"role": "sentinel"}, Outcome(False, "unexpected role 'sentinel'")),
        ({}, Outcome(False, "unexpected role None")),
    ],
)
def test_judge_replication(info: dict[str, object], expected: Outcome) -> None:
    assert judge_replication(info, 10.0) == expected


# --- command ---------------------------------------------------------------------------------


def command(*argv: str, timeout: float = 5.0) -> CommandCheck:
    return CommandCheck(name="cmd", kind="command", argv=argv, timeout=timeout)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("true",), Outcome(True, "exit 0")),
        (("false",), Outcome(False, "exit 1")),
        (("sh", "-c", "exit 7"), Outcome(False, "exit 7")),
        (("sh", "-c", "kill -TERM $$"), Outcome(False, "killed by SIGTERM")),
    ],
)
def test_command_exit_status(argv: tuple[str, ...], expected: Outcome) -> None:
    assert asyncio.run(run_check(command(*argv))) == expected


def test_command_that_cannot_run() -> None:
    outcome = asyncio.run(run_check(command("/nonexistent/sixpod-check")))
    assert not outcome.ok
    assert outcome.detail.startswith("cannot run '/nonexistent/sixpod-check': ")


def _gone(pid: int) -> bool:
    """No such process, or a zombie waiting for its (non-us) parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def test_command_timeout_kills_the_process_and_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f'sleep 300 & echo "$$ $!" > {pids}.tmp && mv {pids}.tmp {pids}; wait'
    outcome = asyncio.run(run_check(command("sh", "-c", script, timeout=2.0)))
    assert outcome == Outcome(False, "timeout after 2 s")
    shell, sleeper = (int(p) for p in pids.read_text().split())
    try:
        # The shell was our child: killed and reaped, so it no longer exists at all.
        with pytest.raises(ProcessLookupError):
            os.kill(shell, 0)
        # Its child was in the same process group and was killed with it.
        wait_until(lambda: _gone(sleeper), what=f"pid {sleeper} to die")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(sleeper, signal.SIGKILL)  # never leave it behind, whatever failed
