"""pull_request: survival and review-load facts (title, merge sha, ready time, review rounds,
fix mark, revert refs, changed files)

Revision ID: 0019_value_git
Revises: 0018_otel_retention
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_value_git"
down_revision: str | None = "0018_otel_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("title", sa.String(length=300), ""),
    ("merge_sha", sa.String(length=64), ""),
    ("ready_at", sa.DateTime(timezone=True), None),
    ("review_rounds", sa.Integer(), "0"),
    ("is_fix", sa.Boolean(), sa.false()),
    ("reverts", sa.String(length=400), ""),
    ("reverted_by", sa.String(length=64), ""),
    ("files", sa.Text(), ""),
)


def upgrade() -> None:
    # Rows synced before this revision get empty facts: the next sync's trailing days refill them.
    with op.batch_alter_table("pull_request", schema=None) as batch_op:
        for name, kind, default in COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=default is None, server_default=default))
    with op.batch_alter_table("pull_request", schema=None) as batch_op:
        for name, _, default in COLUMNS:
            if default is not None:
                batch_op.alter_column(name, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("pull_request", schema=None) as batch_op:
        for name, _, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
