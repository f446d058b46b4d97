"""Schema 3: the publisher row records the epoch of the Redis state it published."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("publisher", sa.Column("epoch", sa.String(32), nullable=False, server_default=""))
