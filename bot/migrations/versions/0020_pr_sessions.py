"""agent sessions: the session id on OTel points, each session's daily spend, and the sessions a
pull request's trailers name (measured cost per PR)

Revision ID: 0020_pr_sessions
Revises: 0019_value_git
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_pr_sessions"
down_revision: str | None = "0019_value_git"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows stored before this revision name no session: their PRs stay apportioned.
    for table, name, length in (("otel_point", "session", 128), ("pull_request", "session_ids", 1000)):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=False, server_default=""))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(name, server_default=None)
    op.create_table(
        "otel_session_daily",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("actor", sa.String(length=400), nullable=False),
        sa.Column("session", sa.String(length=128), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "workspace_id", "source", "day", "actor", "session", name="uq_otel_session_daily"
        ),
    )
    op.create_index("ix_otel_session_daily_session", "otel_session_daily", ["workspace_id", "session"])


def downgrade() -> None:
    op.drop_index("ix_otel_session_daily_session", table_name="otel_session_daily")
    op.drop_table("otel_session_daily")
    for table, name in (("pull_request", "session_ids"), ("otel_point", "session")):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(name)
