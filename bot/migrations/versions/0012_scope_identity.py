"""manager scope rows (who a manager grant reaches) and pending identity claims

Revision ID: 0012_scope_identity
Revises: 0011_vendor_totals

Existing manager grants keep the members their team has now: those were visible to the
manager before this revision, so they are recorded as members at grant time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_scope_identity"
down_revision: str | None = "0011_vendor_totals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "manager_scope",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("role_grant_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("added_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["role_grant_id"], ["role_grant.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("role_grant_id", "person_id", name="uq_manager_scope"),
    )
    op.create_index("ix_manager_scope_person", "manager_scope", ["workspace_id", "person_id"])
    op.execute(
        "INSERT INTO manager_scope (workspace_id, role_grant_id, person_id, reason, added_by, created_at) "
        "SELECT DISTINCT g.workspace_id, g.id, m.person_id, 'grant', 'migration', CURRENT_TIMESTAMP "
        "FROM role_grant g JOIN team_membership m ON m.team_id = g.team_id AND m.left_on IS NULL"
    )
    op.create_table(
        "identity_claim",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=400), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("claimer_user_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("why_pending", sa.String(length=200), nullable=False),
        sa.Column("decided_by", sa.String(length=32), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_identity_claim_status", "identity_claim", ["workspace_id", "status", "actor"])


def downgrade() -> None:
    op.drop_index("ix_identity_claim_status", table_name="identity_claim")
    op.drop_table("identity_claim")
    op.drop_index("ix_manager_scope_person", table_name="manager_scope")
    op.drop_table("manager_scope")
