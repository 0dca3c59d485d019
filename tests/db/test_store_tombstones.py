"""store.anonymise_forgotten reads the tombstones once per transaction (the OTLP intake asks
twice per request), and a tombstone added in the same transaction applies at once."""

from __future__ import annotations

from types import SimpleNamespace

from bot.db import store
from bot.domain.records import IdentityHint


def test_tombstones_are_read_once_per_transaction_and_a_new_one_applies_at_once(engine):
    actor = "email:ana@example.com"
    with engine.begin() as conn:
        record = SimpleNamespace(actor=actor)
        hints = store.anonymise_forgotten(conn, "W", [record], [IdentityHint(actor, "ana@example.com")])
        assert record.actor == actor and len(hints) == 1  # nobody forgotten yet
        store.add_tombstones(conn, "W", {actor: "forgotten:1"})
        again = SimpleNamespace(actor=actor)
        hints = store.anonymise_forgotten(conn, "W", [again], [IdentityHint(actor, "ana@example.com")])
        assert again.actor == "forgotten:1" and hints == []
    with engine.begin() as conn:  # a later transaction reads them again
        later = SimpleNamespace(actor=actor)
        store.anonymise_forgotten(conn, "W", [later], [])
        assert later.actor == "forgotten:1"
        other = SimpleNamespace(actor=actor)
        store.anonymise_forgotten(conn, "OTHER", [other], [])
        assert other.actor == actor  # another workspace's tombstones are its own
