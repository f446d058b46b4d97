"""Schema 1: the tables of sixpod 0.1 (what an empty database is upgraded from)."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    revision_t = op.create_table(
        "revision",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "apps",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("shard_seed", sa.Integer, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "vips",
        sa.Column("address", sa.String(39), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("revision", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("op", sa.Text, nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("committed_at", sa.Float, nullable=False),
    )
    publisher_t = op.create_table(
        "publisher",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("fence", sa.BigInteger, nullable=False),
        sa.Column("lease_until", sa.Float, nullable=False),
        sa.Column("forced_through", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "domains",
        sa.Column("name", sa.String(253), primary_key=True),
        sa.Column("app", sa.String(63), sa.ForeignKey("apps.name"), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_domains_app", "domains", ["app"])
    op.create_table(
        "endpoints",
        sa.Column("app", sa.String(63), sa.ForeignKey("apps.name"), primary_key=True),
        sa.Column("address", sa.String(39), primary_key=True),
        sa.Column("port", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("node", sa.String(63), nullable=False),
        sa.Column("weight", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("address", "port", name="uq_endpoints_address_port"),
    )
    op.bulk_insert(revision_t, [{"id": 1, "value": 0}])
    op.bulk_insert(
        publisher_t,
        [{"id": 1, "holder": "", "fence": 0, "lease_until": 0.0, "forced_through": 0}],
    )
