"""vendor totals: each vendor's own figure for a span, kept for reconciliation

Revision ID: 0011_vendor_totals
Revises: 0009_cache_write_1h
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_vendor_totals"
down_revision: str | None = "0009_cache_write_1h"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vendor_total",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("vendor", sa.String(length=32), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("what", sa.String(length=32), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("raw_amount", sa.String(length=64), nullable=False),
        sa.Column("raw_unit", sa.String(length=48), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "source", "start", "end", "what", name="uq_vendor_total_key"),
    )


def downgrade() -> None:
    op.drop_table("vendor_total")
