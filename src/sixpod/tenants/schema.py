"""The store's SQL schema (SQLAlchemy Core; SQLite and PostgreSQL) and how a database gets it.

Migrations are Alembic's: the scripts ship in :mod:`sixpod.tenants.migrations` and the
controller runs them at start (:meth:`sixpod.tenants.store.Store.migrate` calls
:func:`upgrade`). A fresh database gets today's tables from :data:`meta` and is stamped at
the head revision (Alembic's recipe for a new database); an older one is upgraded by the
scripts. Revision ids are the schema version numbers (``0001`` ... ``0005``). A database
the numbered runner that came before Alembic left behind (a ``schema_version`` table) is
stamped at its number, loses that table, and is upgraded from there.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

meta = sa.MetaData()
revision_t = sa.Table(
    "revision",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.BigInteger, nullable=False),
)
apps_t = sa.Table(
    "apps",
    meta,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("shard_seed", sa.Integer, nullable=False),
    sa.Column("settings", sa.Text, nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
)
domains_t = sa.Table(
    "domains",
    meta,
    sa.Column("name", sa.String(253), primary_key=True),
    sa.Column("app", sa.String(63), sa.ForeignKey("apps.name"), nullable=False, index=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
)
endpoints_t = sa.Table(
    "endpoints",
    meta,
    sa.Column("app", sa.String(63), sa.ForeignKey("apps.name"), primary_key=True),
    sa.Column("address", sa.String(39), primary_key=True),
    sa.Column("port", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("node", sa.String(63), nullable=False),
    sa.Column("weight", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("address", "port", name="uq_endpoints_address_port"),
)
vips_t = sa.Table(
    "vips",
    meta,
    sa.Column("address", sa.String(39), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
)
nodes_t = sa.Table(
    "nodes",
    meta,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
)
outbox_t = sa.Table(
    "outbox",
    meta,
    sa.Column("revision", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("op", sa.Text, nullable=False),
    sa.Column("forced", sa.Boolean, nullable=False),
    sa.Column("committed_at", sa.Float, nullable=False),
)
publisher_t = sa.Table(
    "publisher",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("fence", sa.BigInteger, nullable=False),
    sa.Column("lease_until", sa.Float, nullable=False),
    sa.Column("forced_through", sa.BigInteger, nullable=False),
    sa.Column("epoch", sa.String(32), nullable=False, server_default=""),
)
certs_t = sa.Table(
    "certs",
    meta,
    sa.Column("domain", sa.String(253), primary_key=True),
    sa.Column("chain", sa.Text, nullable=False),
    sa.Column("key", sa.Text, nullable=False),  # sealed for the edge nodes (sixpod.tenants.sealed)
    sa.Column("info", sa.Text, nullable=False),  # the public facts, JSON
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("not_after", sa.Float, nullable=False),
    sa.Column("stored_at", sa.Float, nullable=False),
)
challenges_t = sa.Table(
    "acme_challenges",
    meta,
    sa.Column("token", sa.String(128), primary_key=True),
    sa.Column("key_authorization", sa.String(300), nullable=False),
    sa.Column("domain", sa.String(253), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
acme_t = sa.Table(
    "acme",
    meta,
    sa.Column("domain", sa.String(253), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.String(500), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("next_attempt", sa.Float, nullable=False),
    sa.Column("not_after", sa.Float, nullable=True),
    sa.Column("last_success", sa.Float, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)
sa.Index("ix_endpoints_node", endpoints_t.c.node)

SCHEMA_VERSION = 5
"""The head revision's number: the schema :func:`upgrade` brings a database to. A new
migration script takes the next number as its revision id (``test_schema`` checks)."""

SCRIPTS = Path(__file__).with_name("migrations")

_legacy_t = sa.Table(
    "schema_version", sa.MetaData(), sa.Column("version", sa.Integer, nullable=False)
)
"""The numbered runner's version table (before Alembic); never created any more."""


def revision_id(version: int) -> str:
    """The Alembic revision id of a schema version."""
    return f"{version:04d}"


def alembic_config(conn: Connection | None = None) -> Config:
    """Alembic's configuration for the shipped scripts; with ``conn``, its ``env.py`` runs
    them on that connection, inside the transaction the caller holds."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    if conn is not None:
        config.attributes["connection"] = conn
    return config


def create(conn: Connection) -> None:
    """A fresh database: today's tables and rows, stamped with the head revision."""
    meta.create_all(conn)
    conn.execute(revision_t.insert().values(id=1, value=0))
    conn.execute(
        publisher_t.insert().values(id=1, holder="", fence=0, lease_until=0.0, forced_through=0)
    )
    command.stamp(alembic_config(conn), "head")


def version(conn: Connection) -> int:
    """The database's schema version; 0 for an empty one."""
    tables = sa.inspect(conn)
    if tables.has_table("alembic_version"):
        current = MigrationContext.configure(conn).get_current_revision()
        return 0 if current is None else int(current)
    if tables.has_table(_legacy_t.name):
        return int(conn.execute(sa.select(_legacy_t.c.version)).scalar_one())
    return 0


def upgrade(conn: Connection) -> None:
    """Bring the database to :data:`SCHEMA_VERSION`, data kept, in the caller's transaction.

    The caller refuses a database newer than this sixpod first (:func:`version`).
    """
    current = version(conn)
    if current == 0:
        create(conn)
        return
    config = alembic_config(conn)
    if sa.inspect(conn).has_table(_legacy_t.name):
        command.stamp(config, revision_id(current))
        _legacy_t.drop(conn)
    if current < SCHEMA_VERSION:
        command.upgrade(config, "head")
