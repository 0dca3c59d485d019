"""same-day anomalies: incidents, their notification ledger and "expected" mutes

Revision ID: 0014_anomalies
Revises: 0012_scope_identity
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_anomalies"
down_revision: str | None = "0013_otel"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=False)


def upgrade() -> None:
    op.create_table(
        "anomaly_incident",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("workspace_id", 64),
        _text("subject_kind", 16),
        _text("subject_key", 400),
        sa.Column("person_id", sa.Integer(), nullable=True),
        _text("rule", 16),
        sa.Column("open_key", sa.String(length=440), nullable=True),
        _text("status", 16),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("spend_micros", sa.BigInteger(), nullable=False),
        sa.Column("peak_micros", sa.BigInteger(), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
        _ts("first_seen_at"),
        _ts("last_seen_at"),
        _ts("closed_at", nullable=True),
        sa.Column("detect_seconds", sa.Integer(), nullable=False),
        sa.Column("close_seconds", sa.Integer(), nullable=True),
        _text("answered_by", 32),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "open_key", name="uq_anomaly_open"),
    )
    op.create_index("ix_anomaly_person", "anomaly_incident", ["workspace_id", "person_id", "last_seen_at"])
    op.create_index("ix_anomaly_status", "anomaly_incident", ["workspace_id", "status", "last_seen_at"])
    op.create_table(
        "anomaly_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("workspace_id", 64),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        _text("audience", 16),
        _text("recipient", 32),
        _text("status", 16),
        _text("channel", 32),
        _text("message_ts", 32),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("claimed_at"),
        _ts("sent_at", nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["anomaly_incident.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "audience", "recipient", name="uq_anomaly_notice"),
    )
    op.create_table(
        "anomaly_mute",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("workspace_id", 64),
        _text("subject_kind", 16),
        _text("subject_key", 400),
        _text("rule", 16),
        _ts("until"),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        _text("created_by", 32),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_anomaly_mute_subject", "anomaly_mute", ["workspace_id", "subject_kind", "subject_key", "rule"]
    )


def downgrade() -> None:
    op.drop_table("anomaly_mute")
    op.drop_table("anomaly_notice")
    op.drop_index("ix_anomaly_status", table_name="anomaly_incident")
    op.drop_index("ix_anomaly_person", table_name="anomaly_incident")
    op.drop_table("anomaly_incident")
