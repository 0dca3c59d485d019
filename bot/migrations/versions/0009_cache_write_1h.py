"""1-hour prompt-cache writes counted apart from cache_write_tokens (which keeps every write)

Revision ID: 0009_cache_write_1h
Revises: 0008_rollups
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_cache_write_1h"
down_revision: str | None = "0008_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The daily usage table and its two rollups carry the same token sums.
TABLES = ("usage_daily", "usage_person_daily", "usage_org_daily")
COLUMN = "cache_write_1h_tokens"


def upgrade() -> None:
    # A plain ADD COLUMN (no table copy): existing rows read 0, which is what they knew, since
    # until now every cache write was stored in cache_write_tokens without its lifetime.
    for table in TABLES:
        op.add_column(table, sa.Column(COLUMN, sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, COLUMN)
