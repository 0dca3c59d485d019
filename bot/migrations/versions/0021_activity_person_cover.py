"""activity_daily: a covering (person, day) index for the team and recap reads

A team's value signals (``reports.team_report``, the weekly recap, idle seats) read a few
thousand ``activity_daily`` rows of its members; through ``ix_activity_person_day`` each one was
a table lookup in rowid order, scattered over the year's file. This index holds the columns those
queries read, in (person, day) order, so they never touch the table; it replaces the narrower one
it starts with (docs/benchmarks.md, "Reads").

Revision ID: 0021_activity_person_cover
Revises: 0020_pr_sessions
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021_activity_person_cover"
down_revision: str | None = "0020_pr_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# bot.domain.records.ACTIVITY_FIELDS at this revision, space-separated.
VALUE_COLUMNS = (
    "lines_suggested lines_accepted lines_added lines_removed suggestions_shown acceptances rejections "
    "commits pull_requests prs_opened prs_merged ai_prs_merged reviews sessions requests active_seconds"
)


def upgrade() -> None:
    op.create_index(
        "ix_activity_person_cover",
        "activity_daily",
        ["workspace_id", "person_id", "day", "vendor", *VALUE_COLUMNS.split()],
    )
    op.drop_index("ix_activity_person_day", table_name="activity_daily")


def downgrade() -> None:
    op.create_index("ix_activity_person_day", "activity_daily", ["workspace_id", "person_id", "day"])
    op.drop_index("ix_activity_person_cover", table_name="activity_daily")
