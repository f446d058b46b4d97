"""The store's schema under Alembic, on SQLite and on a real PostgreSQL: the migration scripts
build exactly the tables ``schema.py`` declares, and databases the numbered runner left (the
captured schema 1 and schema 5) are taken over with their data."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from sixpod.inventory.lock import Lock
from sixpod.tenants import schema
from sixpod.tenants.store import Store

DATA = Path(__file__).parent / "data"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tenants.db'}"
    pg = request.getfixturevalue("postgres")
    return str(pg.create_database(f"s_{secrets.token_hex(4)}"))


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    e = sa.create_engine(url)
    yield e
    e.dispose()


def differences(engine: sa.Engine) -> list[Any]:
    """What Alembic's autogenerate would change to make the database what ``schema.meta`` says."""
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), schema.meta))


def tables(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def load_captured(engine: sa.Engine, name: str) -> None:
    """Run a captured SQL script (its DDL is plain enough for SQLite and PostgreSQL alike)."""
    text = (DATA / name).read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    with engine.begin() as conn:
        for statement in body.split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)


def test_the_scripts_head_is_the_schema_version() -> None:
    scripts = ScriptDirectory.from_config(schema.alembic_config())
    assert scripts.get_heads() == [schema.revision_id(schema.SCHEMA_VERSION)]
    assert [s.revision for s in scripts.walk_revisions("base", "heads")] == [
        schema.revision_id(v) for v in range(schema.SCHEMA_VERSION, 0, -1)
    ]


def test_the_scripts_from_an_empty_database_build_the_declared_tables(engine: sa.Engine) -> None:
    """A change to the tables in schema.py without its migration script fails here."""
    with engine.begin() as conn:
        command.upgrade(schema.alembic_config(conn), "head")
    assert differences(engine) == []
    with engine.connect() as conn:
        assert schema.version(conn) == schema.SCHEMA_VERSION


def test_a_fresh_store_is_the_declared_tables_at_the_head_revision(url: str) -> None:
    store = Store(url)
    assert store.schema_version() == 0
    assert store.migrate() == schema.SCHEMA_VERSION
    assert store.schema_version() == schema.SCHEMA_VERSION
    assert differences(store.engine) == []
    assert "schema_version" not in tables(store.engine)
    assert store.head() == 0
    assert store.publisher_row().fence == 0
    store.close()


def test_the_captured_schema_1_is_upgraded_to_the_declared_tables(
    engine: sa.Engine, url: str, small_lock: Lock
) -> None:
    load_captured(engine, "schema_v1.sql")
    store = Store(url, lock=small_lock)
    assert store.schema_version() == 1
    assert store.migrate() == schema.SCHEMA_VERSION
    assert differences(engine) == []
    assert "schema_version" not in tables(engine)
    assert store.publisher_row().epoch == ""
    store.close()


def test_the_runners_last_schema_is_taken_over_without_changing_a_table(tmp_path: Path) -> None:
    """A database the numbered runner brought to version 5 is only stamped: every table and
    index stays as it was, byte for byte, and the runner's version table gives way to Alembic's."""
    db = tmp_path / "v5.db"
    with sqlite3.connect(db) as conn:
        conn.executescript((DATA / "schema_v5.sql").read_text())
        conn.execute(
            "INSERT INTO apps (name, owner, shard_seed, settings, revision) "
            "VALUES ('kept', 'me', 7, '{}', 1)"
        )
        before = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    conn.close()
    store = Store(f"sqlite:///{db}")
    assert store.schema_version() == 5
    assert store.migrate() == schema.SCHEMA_VERSION
    assert store.get_app("kept").app.owner == "me"
    store.close()
    with sqlite3.connect(db) as conn:
        after = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        (stamped,) = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    conn.close()
    assert [t for t in after if t[1] != "alembic_version" and "alembic" not in t[1]] == [
        t for t in before if t[1] != "schema_version"
    ]
    assert stamped == (schema.revision_id(schema.SCHEMA_VERSION),)
