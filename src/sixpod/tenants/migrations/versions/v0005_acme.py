"""Schema 5: ACME HTTP-01 challenges and the issuer's record per domain."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "acme_challenges",
        sa.Column("token", sa.String(128), primary_key=True),
        sa.Column("key_authorization", sa.String(300), nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "acme",
        sa.Column("domain", sa.String(253), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.String(500), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("next_attempt", sa.Float, nullable=False),
        sa.Column("not_after", sa.Float, nullable=True),
        sa.Column("last_success", sa.Float, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
