"""The pod-wide safety floor against a real redis-server (password required) on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sixpod.lab.redisproc import RedisServer, async_wait_until, free_port, redis_server
from sixpod.routing.config import FloorConfig
from sixpod.routing.floor import FloorAnswer, FloorClient, FloorUnavailable

POD = "lab"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as s:
        yield s


@pytest.fixture
def server6(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path, host="::1") as s:
        yield s


def floor(
    server: RedisServer | str,
    *,
    min_nodes: int = 1,
    ttl: float = 30.0,
    password_file: str | Path | None = None,
) -> FloorConfig:
    if isinstance(server, RedisServer):
        where, password_file = server.address, password_file or server.password_file
    else:
        where = server
    return FloorConfig(
        min_nodes=min_nodes,
        redis=where,
        password_file=str(password_file) if password_file is not None else None,
        key="sixpod:floor",
        ttl=ttl,
    )


@contextlib.asynccontextmanager
async def clients(
    config: FloorConfig, *nodes: str, timeout: float = 5.0
) -> AsyncIterator[list[FloorClient]]:
    made = [FloorClient(config=config, pod=POD, node=n, timeout=timeout) for n in nodes]
    try:
        yield made
    finally:
        await asyncio.gather(*(c.close() for c in made))


def test_join_count_and_leave(server: RedisServer) -> None:
    async def main() -> list[int]:
        async with clients(floor(server), "edge1", "edge2", "edge3") as (a, b, c):
            counts = [await a.healthy_count()]
            for client in (a, b, c):
                await client.join()
                counts.append(await a.healthy_count())
            await b.heartbeat()  # a heartbeat is a join: no duplicate
            await a.join()
            counts.append(await c.healthy_count())
            await b.leave()
            counts.append(await a.healthy_count())
            await b.leave()  # idempotent
            counts.append(await a.healthy_count())
            return counts

    assert asyncio.run(main()) == [0, 1, 2, 3, 3, 2, 2]
    with contextlib.closing(server.client()) as r:
        assert set(r.zrange(f"sixpod:floor:{POD}", 0, -1)) == {"edge1", "edge3"}


def test_scores_are_server_time_plus_ttl_and_the_key_expires(server: RedisServer) -> None:
    async def main() -> None:
        async with clients(floor(server, ttl=30.0), "edge1") as (a,):
            await a.join()

    asyncio.run(main())
    with contextlib.closing(server.client()) as r:
        seconds, micros = r.time()
        now = seconds + micros / 1e6
        score = r.zscore(f"sixpod:floor:{POD}", "edge1")
        assert score is not None
        assert now + 25 < score <= now + 30
        assert 25_000 < r.pttl(f"sixpod:floor:{POD}") <= 32_000


def test_ipv6_redis(server6: RedisServer) -> None:
    async def main() -> int:
        async with clients(floor(server6), "edge1") as (a,):
            await a.join()
            return await a.healthy_count()

    assert server6.address.startswith("[::1]:")
    assert asyncio.run(main()) == 1


def test_members_expire_after_ttl(server: RedisServer) -> None:
    async def main() -> FloorAnswer:
        async with (
            clients(floor(server, ttl=0.5), "edge1", "edge2") as (a, b),
            clients(floor(server, ttl=60.0, min_nodes=1), "edge3") as (c,),
        ):
            await a.join()
            await b.join()
            await c.join()
            assert await c.healthy_count() == 3
            await async_wait_until(
                lambda: _count_is(c, 1), what="edge1 and edge2 to expire after 0.5 s"
            )
            # The expired members no longer count for the floor either.
            return await c.ask_to_leave()

    answer = asyncio.run(main())
    assert answer == FloorAnswer(False, 0, "denied: only 0 other nodes remain (min 1)")


async def _count_is(client: FloorClient, n: int) -> bool:
    return await client.healthy_count() == n


def test_heartbeat_pushes_the_expiry(server: RedisServer) -> None:
    key = f"sixpod:floor:{POD}"

    async def main() -> None:
        async with clients(floor(server, ttl=30.0), "edge1") as (a,):
            await a.join()
            with contextlib.closing(server.client()) as r:
                first = r.zscore(key, "edge1")
                assert first is not None
                await async_wait_until(lambda: _time_after(server, first - 30.0))
                await a.heartbeat()
                second = r.zscore(key, "edge1")
                assert second is not None
                assert second > first

    asyncio.run(main())


async def _time_after(server: RedisServer, t: float) -> bool:
    with contextlib.closing(server.client()) as r:
        seconds, micros = r.time()
    return seconds + micros / 1e6 > t


def test_ask_granted_while_enough_remain_then_denied(server: RedisServer) -> None:
    async def main() -> list[FloorAnswer | int]:
        async with clients(floor(server, min_nodes=2), "edge1", "edge2", "edge3") as (a, b, c):
            for client in (a, b, c):
                await client.join()
            first = await a.ask_to_leave()
            count = await b.healthy_count()
            second = await b.ask_to_leave()
            return [first, count, second, await c.healthy_count()]

    first, count, second, after = asyncio.run(main())
    assert first == FloorAnswer(True, 2, "granted: 2 other nodes remain (min 2)")
    assert count == 2  # the grant removed edge1
    assert second == FloorAnswer(False, 1, "denied: only 1 other nodes remain (min 2)")
    assert after == 2  # the denial removed nobody


def test_ask_by_a_node_that_is_not_a_member(server: RedisServer) -> None:
    # A non-member (never joined, or expired) is not counted among those that remain.
    async def main() -> tuple[FloorAnswer, FloorAnswer]:
        async with (
            clients(floor(server, min_nodes=1), "edge1", "edge2") as (a, b),
            clients(floor(server, min_nodes=2), "edge2") as (b2,),
        ):
            await a.join()
            return await b.ask_to_leave(), await b2.ask_to_leave()

    granted, denied = asyncio.run(main())
    assert granted == FloorAnswer(True, 1, "granted: 1 other nodes remain (min 1)")
    assert denied == FloorAnswer(False, 1, "denied: only 1 other nodes remain (min 2)")


def test_min_nodes_zero_always_grants(server: RedisServer) -> None:
    async def main() -> FloorAnswer:
        async with clients(floor(server, min_nodes=0), "edge1") as (a,):
            await a.join()
            return await a.ask_to_leave()

    assert asyncio.run(main()) == FloorAnswer(True, 0, "granted: 0 other nodes remain (min 0)")


@pytest.mark.parametrize("min_nodes", [0, 1, 4, 10, 12])
def test_concurrent_asks_grant_exactly_members_minus_min(
    server: RedisServer, min_nodes: int
) -> None:
    nodes = [f"edge{i}" for i in range(10)]

    async def main() -> tuple[list[FloorAnswer], int]:
        async with clients(floor(server, min_nodes=min_nodes), *nodes) as all_clients:
            await asyncio.gather(*(c.join() for c in all_clients))
            answers = await asyncio.gather(*(c.ask_to_leave() for c in all_clients))
            return answers, await all_clients[0].healthy_count()

    answers, remaining = asyncio.run(main())
    granted = [a for a in answers if a.granted]
    expected = max(0, len(nodes) - min_nodes)
    assert len(granted) == expected
    assert remaining == len(nodes) - expected
    # Serialized: each grant saw one fewer node than the previous one.
    assert sorted(a.remaining for a in granted) == list(range(len(nodes) - expected, len(nodes)))
    # A denied node counts the others: everyone left but itself.
    assert all(a.remaining == remaining - 1 for a in answers if not a.granted)


def _assert_unavailable(config: FloorConfig, expected: str, *, timeout: float = 5.0) -> None:
    async def main() -> None:
        async with clients(config, "edge1", timeout=timeout) as (a,):
            answer = await a.ask_to_leave()
            assert not answer.granted
            assert answer.remaining is None
            assert answer.reason.startswith("redis unavailable: ask to leave at ")
            assert expected in answer.reason
            for call in (a.join, a.heartbeat, a.leave, a.healthy_count):
                with pytest.raises(FloorUnavailable, match=r"^redis unavailable: .*") as info:
                    await call()
                assert expected in str(info.value)

    asyncio.run(main())


def test_redis_stopped(server: RedisServer) -> None:
    config = floor(server)

    async def main() -> None:
        async with clients(config, "edge1") as (a,):
            await a.join()  # a pooled connection exists when the server goes away

    asyncio.run(main())
    server.stop()
    _assert_unavailable(config, "connect refused")


def test_redis_stopped_under_an_open_client(server: RedisServer) -> None:
    async def main() -> tuple[FloorAnswer, str]:
        async with clients(floor(server), "edge1") as (a,):
            await a.join()
            server.stop()  # by PID, while the client holds a pooled connection
            answer = await a.ask_to_leave()
            with pytest.raises(FloorUnavailable) as info:
                await a.join()
            return answer, str(info.value)

    answer, error = asyncio.run(main())
    assert not answer.granted
    assert answer.reason.startswith("redis unavailable: ")
    assert error.startswith("redis unavailable: join at ")


def test_nobody_listening() -> None:
    _assert_unavailable(floor(f"127.0.0.1:{free_port()}"), "connect refused")


@pytest.mark.parametrize("password", ["wrong-password", None])
def test_wrong_or_missing_password(
    tmp_path: Path, server: RedisServer, password: str | None
) -> None:
    config = floor(server)
    if password is None:
        config = config.model_copy(update={"password_file": None})
    else:
        (tmp_path / "wrong").write_text(password)
        config = floor(server, password_file=tmp_path / "wrong")
    _assert_unavailable(config, "auth failed")


def test_missing_password_file(tmp_path: Path, server: RedisServer) -> None:
    _assert_unavailable(floor(server, password_file=tmp_path / "absent"), "password file")


def test_a_silent_server_times_out() -> None:
    async def main() -> None:
        # Accepts connections and never answers.
        readers: list[asyncio.StreamWriter] = []

        async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            readers.append(writer)

        silent = await asyncio.start_server(hold, "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        try:
            async with clients(floor(f"127.0.0.1:{port}"), "edge1", timeout=0.2) as (a,):
                answer = await a.ask_to_leave()
                assert not answer.granted
                assert answer.reason.endswith(": timeout after 0.2 s")
                with pytest.raises(FloorUnavailable, match=r"timeout after 0\.2 s$"):
                    await a.join()
        finally:
            silent.close()
            for writer in readers:
                writer.close()
            await silent.wait_closed()

    asyncio.run(main())


def test_a_floor_without_redis_is_refused() -> None:
    with pytest.raises(ValueError, match=r"floor\.redis is not set"):
        FloorClient(config=FloorConfig(), pod=POD, node="edge1")


@pytest.mark.parametrize(
    ("granted", "remaining"),
    [(True, None), (False, -1), (True, True), (1, 2)],
)
def test_floor_answer_is_validated(granted: bool, remaining: int | None) -> None:
    with pytest.raises(ValueError, match=r"."):
        FloorAnswer(granted, remaining, "x")
