"""pull_request: merged pull requests from the code host, with their AI-assisted mark

Revision ID: 0003_delivery
Revises: 0002_teams
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003_delivery"
down_revision: str | None = "0002_teams"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pull_request",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("repo", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_commit_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("additions", sa.BigInteger(), nullable=False),
        sa.Column("deletions", sa.BigInteger(), nullable=False),
        sa.Column("ai_confidence", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("ai_rule", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sync_run_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "repo", "number", name="uq_pull_request_key"),
    )
    with op.batch_alter_table("pull_request", schema=None) as batch_op:
        batch_op.create_index("ix_pull_request_actor", ["workspace_id", "actor"], unique=False)
        batch_op.create_index(
            "ix_pull_request_person_merged", ["workspace_id", "person_id", "merged_at"], unique=False
        )
        batch_op.create_index(
            "ix_pull_request_source_merged", ["workspace_id", "source", "merged_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("pull_request", schema=None) as batch_op:
        batch_op.drop_index("ix_pull_request_source_merged")
        batch_op.drop_index("ix_pull_request_person_merged")
        batch_op.drop_index("ix_pull_request_actor")
    op.drop_table("pull_request")
