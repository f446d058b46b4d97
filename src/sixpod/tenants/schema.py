"""The store's SQL schema and its migrations (SQLAlchemy Core; SQLite and PostgreSQL).

``SCHEMA_VERSION`` is what :func:`create` stamps a fresh database with; ``MIGRATIONS`` take
an older one forward one version each (:meth:`sixpod.tenants.store.Store.migrate` runs them,
one per transaction).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
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
schema_t = sa.Table("schema_version", meta, sa.Column("version", sa.Integer, nullable=False))


def create(conn: Connection) -> None:
    """A fresh database: today's schema, stamped with today's version."""
    meta.create_all(conn)
    conn.execute(revision_t.insert().values(id=1, value=0))
    conn.execute(
        publisher_t.insert().values(id=1, holder="", fence=0, lease_until=0.0, forced_through=0)
    )
    conn.execute(schema_t.insert().values(version=SCHEMA_VERSION))


def version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(sa.select(schema_t.c.version)).scalar_one())


def _v1_to_v2(conn: Connection) -> None:
    conn.exec_driver_sql("CREATE INDEX ix_endpoints_node ON endpoints (node)")


def _v2_to_v3(conn: Connection) -> None:
    conn.exec_driver_sql("ALTER TABLE publisher ADD COLUMN epoch VARCHAR(32) DEFAULT '' NOT NULL")


def _v3_to_v4(conn: Connection) -> None:
    certs_t.create(conn)


def _v4_to_v5(conn: Connection) -> None:
    challenges_t.create(conn)
    acme_t.create(conn)


MIGRATIONS: tuple[Callable[[Connection], None], ...] = (
    _v1_to_v2,
    _v2_to_v3,
    _v3_to_v4,
    _v4_to_v5,
)
"""Schema migrations: entry ``i`` takes an existing database from version ``i + 1`` to
``i + 2``. Never edit one that has shipped; add the next."""
SCHEMA_VERSION = len(MIGRATIONS) + 1
