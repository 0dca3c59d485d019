"""budget requests and per-period budget overrides (budget and alert_sent exist since 0001)

Revision ID: 0005_budgets
Revises: 0004_oauth
Create Date: 2026-11-28 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005_budgets"
down_revision: str | None = "0004_oauth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("requester_user_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("budget_id", sa.Integer(), nullable=True),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("granted_micros", sa.BigInteger(), nullable=True),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("notified", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("budget_request", schema=None) as batch_op:
        batch_op.create_index(
            "ix_budget_request_person", ["workspace_id", "person_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_budget_request_status", ["workspace_id", "status"], unique=False)

    op.create_table(
        "budget_override",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("budget_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("extra_micros", sa.BigInteger(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["budget_id"], ["budget.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "request_id", name="uq_budget_override_request"),
    )
    with op.batch_alter_table("budget_override", schema=None) as batch_op:
        batch_op.create_index(
            "ix_budget_override_budget", ["workspace_id", "budget_id", "period_start"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("budget_override", schema=None) as batch_op:
        batch_op.drop_index("ix_budget_override_budget")
    op.drop_table("budget_override")
    with op.batch_alter_table("budget_request", schema=None) as batch_op:
        batch_op.drop_index("ix_budget_request_status")
        batch_op.drop_index("ix_budget_request_person")
    op.drop_table("budget_request")
