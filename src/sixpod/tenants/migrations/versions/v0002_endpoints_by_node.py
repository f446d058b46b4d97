"""Schema 2: the endpoints indexed by node."""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_index("ix_endpoints_node", "endpoints", ["node"])
