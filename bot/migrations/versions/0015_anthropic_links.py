"""`/tokens link anthropic` wrote `anthropic_account:<id>`, a namespace no connector attributes
usage by (the Anthropic connector uses `anthropic_user:<id>`): move those links to the namespace
that carries the usage, unless the person already has that identity.

Revision ID: 0015_anthropic_links
Revises: 0014_anomalies
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015_anthropic_links"
down_revision: str | None = "0014_anomalies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD, _NEW = "anthropic_account:", "anthropic_user:"


def upgrade() -> None:
    start = len(_OLD) + 1
    op.execute(
        f"""
        UPDATE identity SET actor = '{_NEW}' || substr(actor, {start})
        WHERE actor LIKE '{_OLD}%'
          AND NOT EXISTS (
            SELECT 1 FROM identity AS taken
            WHERE taken.workspace_id = identity.workspace_id
              AND taken.actor = '{_NEW}' || substr(identity.actor, {start})
          )
        """
    )


def downgrade() -> None:
    # The old namespace matched no usage row; there is nothing to go back to.
    pass
