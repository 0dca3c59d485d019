"""what people say AI saved: the opt-in and the ledger of questions and answers

Revision ID: 0016_saved_time
Revises: 0015_anthropic_links
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_saved_time"
down_revision: str | None = "0015_anthropic_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, length: int, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "saved_time_pref",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("workspace_id", 64),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("opted_in", sa.Boolean(), nullable=False),
        _ts("opted_in_at", nullable=True),
        _ts("snoozed_until", nullable=True),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "person_id", name="uq_saved_time_pref"),
    )
    op.create_table(
        "saved_time_ask",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("workspace_id", 64),
        sa.Column("person_id", sa.Integer(), nullable=False),
        _text("repo", 200),
        sa.Column("number", sa.BigInteger(), nullable=False),
        _ts("merged_at"),
        sa.Column("ask_day", sa.Date(), nullable=False),
        _text("recipient", 32),
        _text("status", 16),
        _text("channel", 32),
        _text("message_ts", 32),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("claimed_at"),
        _text("bucket", 16, nullable=True),
        _ts("answered_at", nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "repo", "number", name="uq_saved_time_pr"),
        sa.UniqueConstraint("workspace_id", "person_id", "ask_day", name="uq_saved_time_day"),
    )
    op.create_index("ix_saved_time_merged", "saved_time_ask", ["workspace_id", "merged_at"])


def downgrade() -> None:
    op.drop_index("ix_saved_time_merged", table_name="saved_time_ask")
    op.drop_table("saved_time_ask")
    op.drop_table("saved_time_pref")
