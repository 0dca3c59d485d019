"""active time as an activity measure (Claude Code's active_time.total, folded from OTel)

Revision ID: 0018_otel_retention
Revises: 0017_value_money
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_otel_retention"
down_revision: str | None = "0017_value_money"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The daily activity table and its org rollup carry the same sums.
TABLES = ("activity_daily", "activity_org_daily")
COLUMN = "active_seconds"


def upgrade() -> None:
    # A plain ADD COLUMN (no table copy): existing rows read 0, which is what they held.
    for table in TABLES:
        op.add_column(table, sa.Column(COLUMN, sa.BigInteger(), nullable=False, server_default="0"))
    # The rollup counts what the daily rows hold; the new column starts at 0 on both, so the rollup
    # stays consistent without a refill. Raw OTel points keep their active time: the next fold of
    # their days (a new export, or a vendor batch) writes it into the daily rows.


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, COLUMN)
