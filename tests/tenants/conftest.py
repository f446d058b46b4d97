"""Fixtures for the tenants tests: a store on SQLite (and PostgreSQL), Redis primary + replica."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pgproc import Postgres, postgres_server
from sixpod.inventory.lock import Lock, parse_lock
from sixpod.lab.redisproc import RedisServer, redis_server, wait_until
from sixpod.tenants.store import Store
from tenantkit import open_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="session")
def small_lock() -> Lock:
    text = (EXAMPLES / "small.lock").read_text()
    return parse_lock(text, "small.lock")[0]


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


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One throwaway PostgreSQL per session; tests create a database each."""
    with postgres_server() as pg:
        yield pg
