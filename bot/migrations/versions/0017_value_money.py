"""seat reclaim ledger: one DM to a seat holder per seat, claimed before it is sent

Revision ID: 0017_value_money
Revises: 0016_saved_time
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_value_money"
down_revision: str | None = "0016_saved_time"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seat_reclaim",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("vendor", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=400), nullable=False),
        sa.Column("seat_since", sa.Date(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("message_ts", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "vendor", "actor", "seat_since", name="uq_seat_reclaim"),
    )


def downgrade() -> None:
    op.drop_table("seat_reclaim")
