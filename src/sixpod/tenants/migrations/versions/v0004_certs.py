"""Schema 4: TLS certificates, their keys sealed for the edge nodes."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "certs",
        sa.Column("domain", sa.String(253), primary_key=True),
        sa.Column("chain", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("info", sa.Text, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("not_after", sa.Float, nullable=False),
        sa.Column("stored_at", sa.Float, nullable=False),
    )
