"""daily rollups of usage and activity for the org, team and recap views

Revision ID: 0008_rollups
Revises: 0007_forget
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_rollups"
down_revision: str | None = "0007_forget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USAGE_KEY = ("source", "vendor", "model", "cost_basis", "kind", "in_org_total", "tokens_only")
USAGE_SUMS = (
    "cost_micros",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "requests",
)
ACTIVITY_SUMS = (
    "lines_suggested",
    "lines_accepted",
    "lines_added",
    "lines_removed",
    "suggestions_shown",
    "acceptances",
    "rejections",
    "commits",
    "pull_requests",
    "prs_opened",
    "prs_merged",
    "ai_prs_merged",
    "reviews",
    "sessions",
    "requests",
)
LENGTHS = {"workspace_id": 64, "source": 64, "vendor": 32, "model": 200, "cost_basis": 16, "kind": 16}


def _key_columns(names):
    columns = []
    for name in names:
        if name == "person_id":
            kind = sa.Integer()
        elif name == "day":
            kind = sa.Date()
        elif name in ("in_org_total", "tokens_only"):
            kind = sa.Boolean()
        else:
            kind = sa.String(length=LENGTHS[name])
        columns.append(sa.Column(name, kind, nullable=False))
    return columns


def _sum_columns(names):
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in names]


def _create(name, key, sums):
    op.create_table(
        name, *_key_columns(key), *_sum_columns(sums), sa.PrimaryKeyConstraint(*key), sqlite_with_rowid=False
    )


def upgrade() -> None:
    person_key = ("workspace_id", "person_id", "day", *USAGE_KEY)
    org_key = ("workspace_id", "day", *USAGE_KEY)
    activity_key = ("workspace_id", "day", "source", "vendor")
    _create("usage_person_daily", person_key, USAGE_SUMS)
    op.create_index(
        "ix_usage_person_daily_day", "usage_person_daily", ["workspace_id", "day", "source", "person_id"]
    )
    _create("usage_org_daily", org_key, (*USAGE_SUMS, "unattributed_micros"))
    _create("activity_org_daily", activity_key, ACTIVITY_SUMS)

    # Fill them from the daily tables already stored (the same sums bot.db.rollups keeps).
    tokens_only = "CASE WHEN raw_unit = 'tokens_only' THEN TRUE ELSE FALSE END"
    group = ", ".join(USAGE_KEY[:-1])
    sums = ", ".join(f"SUM({name})" for name in USAGE_SUMS)
    op.execute(
        f"INSERT INTO usage_person_daily ({', '.join(person_key)}, {', '.join(USAGE_SUMS)}) "
        f"SELECT workspace_id, person_id, day, {group}, {tokens_only}, {sums} FROM usage_daily "
        f"WHERE person_id IS NOT NULL GROUP BY workspace_id, person_id, day, {group}, {tokens_only}"
    )
    op.execute(
        f"INSERT INTO usage_org_daily ({', '.join(org_key)}, {', '.join(USAGE_SUMS)}, unattributed_micros) "
        f"SELECT workspace_id, day, {group}, {tokens_only}, {sums}, "
        "SUM(CASE WHEN person_id IS NULL THEN cost_micros ELSE 0 END) FROM usage_daily "
        f"GROUP BY workspace_id, day, {group}, {tokens_only}"
    )
    op.execute(
        f"INSERT INTO activity_org_daily ({', '.join(activity_key)}, {', '.join(ACTIVITY_SUMS)}) "
        f"SELECT {', '.join(activity_key)}, {', '.join(f'SUM({name})' for name in ACTIVITY_SUMS)} "
        f"FROM activity_daily GROUP BY {', '.join(activity_key)}"
    )


def downgrade() -> None:
    op.drop_table("activity_org_daily")
    op.drop_table("usage_org_daily")
    op.drop_index("ix_usage_person_daily_day", table_name="usage_person_daily")
    op.drop_table("usage_person_daily")
