"""Fixtures for the tenants tests: a store on SQLite (and PostgreSQL), Redis primary + replica."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgproc import Postgres, postgres_server
from sixpod.inventory.lock import Lock, parse_lock
from sixpod.lab.redisproc import RedisServer, redis_server, wait_until
from sixpod.tenants.guard import GuardLimits
from sixpod.tenants.publisher import Publisher, PublisherSettings
from sixpod.tenants.store import Store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="session")
def small_lock() -> Lock:
    text = (EXAMPLES / "small.lock").read_text()
    return parse_lock(text, "small.lock")[0]


def open_store(url: str, lock: Lock, **kwargs: object) -> Store:
    store = Store(url, lock=lock, **kwargs)  # type: ignore[arg-type]
    store.migrate()
    store.sync_pool()
    return store


@pytest.fixture
def store(tmp_path: Path, small_lock: Lock) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'tenants.db'}", small_lock)
    yield s
    s.close()


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture
def replica(tmp_path: Path, primary: RedisServer) -> Iterator[RedisServer]:
    with redis_server(tmp_path, replica_of=primary) as server:
        wait_until(
            lambda: server.info("replication")["master_link_status"] == "up",
            what="replica link up",
        )
        yield server


class RunningPublisher:
    def __init__(self, store: Store, server: RedisServer, **settings: object) -> None:
        self.client = server.client()
        self.publisher = Publisher(store, self.client, PublisherSettings(**settings))  # type: ignore[arg-type]
        store.on_commit = self.publisher.notify
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.publisher.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Publisher:
        self.thread.start()
        return self.publisher

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.publisher.wake.set()
        self.thread.join(timeout=10)
        self.client.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One throwaway PostgreSQL per session; tests create a database each."""
    with postgres_server() as pg:
        yield pg


@pytest.fixture
def guard() -> GuardLimits:
    return GuardLimits()


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]
