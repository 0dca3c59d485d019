"""Migration 0015 moves `/tokens link anthropic` links onto the namespace the usage carries, on
SQLite and PostgreSQL, and leaves a link alone where the person already has the new identity."""

from __future__ import annotations

from sqlalchemy import select, text

from bot.db.migrate import downgrade, upgrade
from bot.db.models import Identity


def test_anthropic_account_links_move_to_anthropic_user(engine):
    downgrade(engine, "0014_anomalies")
    with engine.begin() as conn:
        for person_id, email in ((1, "ada@example.com"), (2, "bo@example.com")):
            conn.execute(
                text(
                    "INSERT INTO person (id, workspace_id, email, display_name, show_name_in_channels, "
                    "created_at) "
                    "VALUES (:id, 'T1', :email, '', false, CURRENT_TIMESTAMP)"
                ),
                {"id": person_id, "email": email},
            )
        rows = [
            ("anthropic_account:user_ada", 1),  # moves
            ("anthropic_account:user_bo", 2),  # stays: bo already has the anthropic_user identity
            ("anthropic_user:user_bo", 2),
            ("openai_user:user_ada", 1),  # another namespace: untouched
        ]
        for actor, person_id in rows:
            conn.execute(
                text(
                    "INSERT INTO identity (workspace_id, actor, person_id, origin, label, created_at) "
                    "VALUES ('T1', :actor, :person, 'admin', '', CURRENT_TIMESTAMP)"
                ),
                {"actor": actor, "person": person_id},
            )
    upgrade(engine)
    with engine.connect() as conn:
        actors = dict(conn.execute(select(Identity.actor, Identity.person_id)).all())
    assert actors == {
        "anthropic_user:user_ada": 1,
        "anthropic_account:user_bo": 2,
        "anthropic_user:user_bo": 2,
        "openai_user:user_ada": 1,
    }
