"""Bulk writes for ingestion: identities, usage and activity upserts, window replacement.

Hot path: one multi-row ``INSERT ... ON CONFLICT DO UPDATE`` per table per batch, never per-row
ORM adds. Works the same on SQLite and PostgreSQL (both dialects implement ``on_conflict``).

One concern, kept in one module though it is long: what ingestion writes, and the rules it
writes them by (which rows a batch replaces, tombstones, identities), so every writer shares them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from itertools import islice
from typing import TypedDict, Unpack

from sqlalchemy import Connection, bindparam, delete, or_, select, update
from sqlalchemy.orm import aliased

from bot.db import rollups
from bot.db.models import (
    ActivityDaily,
    ForgottenActor,
    Identity,
    Person,
    PullRequest,
    UsageDaily,
    VendorTotalRow,
)

# insert_ignore and upsert are also called as store.insert_ignore / store.upsert by services.
from bot.db.upsert import insert_ignore, upsert, upsert_sql
from bot.domain.clock import utcnow
from bot.domain.records import (
    ACTIVITY_FIELDS,
    NAME_GUESS,
    USAGE_COUNTS,
    ActivityRecord,
    Batch,
    IdentityHint,
    PullRequestRecord,
    UsageRecord,
)

USAGE_KEY = ("workspace_id", "source", "day", "actor", "model", "cost_basis", "kind")
USAGE_VALUES = (
    "vendor",
    "person_id",
    *USAGE_COUNTS,
    "cost_micros",
    "raw_amount",
    "raw_unit",
    "in_org_total",
    "sync_run_id",
)
ACTIVITY_KEY = ("workspace_id", "source", "day", "actor")
ACTIVITY_VALUES = ("vendor", "person_id", *ACTIVITY_FIELDS, "merge_minutes_median", "sync_run_id")
PULL_REQUEST_KEY = ("workspace_id", "repo", "number")
PULL_REQUEST_VALUES = (
    "source",
    "actor",
    "person_id",
    "opened_at",
    "merged_at",
    "first_commit_at",
    "additions",
    "deletions",
    "ai_confidence",
    "ai_rule",
    "title",
    "merge_sha",
    "ready_at",
    "review_rounds",
    "is_fix",
    "reverts",
    "reverted_by",
    "files",
    "session_ids",
    "sync_run_id",
)


USAGE_COLUMNS = (*USAGE_KEY, *USAGE_VALUES)
ACTIVITY_COLUMNS = (*ACTIVITY_KEY, *ACTIVITY_VALUES)
#: Rows per executemany in bulk_upsert: large enough to amortise the call, small enough that a
#: year's backfill never holds more than this many converted rows at once.
BULK_CHUNK = 5000


def bulk_upsert(
    conn: Connection,
    table_name: str,
    rows: Iterable[tuple],
    columns: Sequence[str],
    key: Sequence[str],
    values: Sequence[str],
    *,
    chunk: int = BULK_CHUNK,
) -> int:
    """The ingest hot path: driver-level executemany of plain tuples, ``chunk`` rows at a time.

    Same statement as :func:`upsert` (one ``INSERT ... ON CONFLICT DO UPDATE``, identical on
    SQLite and PostgreSQL), but without SQLAlchemy's per-row parameter processing (a sixth of
    the engine's time in the B1 profile) and without materialising every row of a batch as a
    dict (~1 KB each). Tuples must follow ``columns`` and hold driver-ready values (see
    :func:`usage_tuples`). Returns the number of rows written.
    """
    if conn.dialect.name == "postgresql":
        return _copy_upsert(conn, table_name, rows, columns, key, values)
    sql = upsert_sql(conn, table_name, columns, key, values)
    written = 0
    iterator = iter(rows)
    while part := list(islice(iterator, chunk)):
        conn.exec_driver_sql(sql, part)
        written += len(part)
    return written


def _copy_upsert(conn: Connection, table_name: str, rows: Iterable[tuple], columns, key, values) -> int:
    """:func:`bulk_upsert` on PostgreSQL: the rows streamed by ``COPY`` into a temporary table
    (dropped at commit), then one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` into the table.
    No statement per row and no row held in memory (docs/benchmarks.md, B1). A key given twice:
    the last row wins, as in the executemany."""
    staged = f"_staged_{table_name}"
    listed = ", ".join(columns)
    keys = ", ".join(key)
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {staged} ON COMMIT DROP AS SELECT {listed} FROM {table_name} WITH NO DATA"
    )
    conn.exec_driver_sql(f"ALTER TABLE {staged} ADD COLUMN _at bigint GENERATED ALWAYS AS IDENTITY")
    written = 0
    with (
        conn.connection.dbapi_connection.cursor() as cursor,
        cursor.copy(f"COPY {staged} ({listed}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
            written += 1
    if written:
        updates = ", ".join(f"{name} = excluded.{name}" for name in values)
        conn.exec_driver_sql(
            f"INSERT INTO {table_name} ({listed}) SELECT DISTINCT ON ({keys}) {listed} FROM {staged} "
            f"ORDER BY {keys}, _at DESC ON CONFLICT ({keys}) DO UPDATE SET {updates}"
        )
    conn.exec_driver_sql(f"DROP TABLE {staged}")
    return written


def _day_param(conn: Connection):
    # SQLAlchemy stores Date on SQLite as ISO text; psycopg adapts date objects itself.
    return date.isoformat if conn.dialect.name == "sqlite" else (lambda day: day)


class RowsOf(TypedDict):
    """Whose rows a batch's tuples are: the columns every row of the batch shares."""

    workspace_id: str
    source: str
    vendor: str
    run_id: int
    people: dict[str, int]


def usage_tuples(conn: Connection, records: Iterable[UsageRecord], **of: Unpack[RowsOf]) -> Iterator[tuple]:
    """Usage records as lazily built tuples in ``USAGE_COLUMNS`` order, for bulk_upsert."""
    workspace_id, source, vendor = of["workspace_id"], of["source"], of["vendor"]
    run_id, people = of["run_id"], of["people"]
    day = _day_param(conn)
    for r in records:
        cost = r.cost
        yield (
            workspace_id,
            source,
            day(r.day),
            r.actor,
            r.model,
            r.cost_basis,
            r.kind,
            vendor,
            people.get(r.actor),
            r.input_tokens,
            r.output_tokens,
            r.cache_read_tokens,
            r.cache_write_tokens,
            r.cache_write_1h_tokens,
            r.requests,
            cost.micros,
            cost.raw_amount,
            cost.raw_unit,
            r.in_org_total,
            run_id,
        )


def activity_tuples(
    conn: Connection, records: Iterable[ActivityRecord], **of: Unpack[RowsOf]
) -> Iterator[tuple]:
    """Activity records as lazily built tuples in ``ACTIVITY_COLUMNS`` order, for bulk_upsert."""
    workspace_id, source, vendor = of["workspace_id"], of["source"], of["vendor"]
    run_id, people = of["run_id"], of["people"]
    day = _day_param(conn)
    for r in records:
        yield (
            workspace_id,
            source,
            day(r.day),
            r.actor,
            vendor,
            people.get(r.actor),
            *(getattr(r, name) for name in ACTIVITY_FIELDS),
            r.merge_minutes_median,
            run_id,
        )


def load_identity_map(conn: Connection, workspace_id: str) -> dict[str, int]:
    rows = conn.execute(
        select(Identity.actor, Identity.person_id).where(Identity.workspace_id == workspace_id)
    ).all()
    return {actor: person_id for actor, person_id in rows}


def ensure_people(conn: Connection, workspace_id: str, people: dict[str, str]) -> dict[str, int]:
    """Create people for unseen emails (email -> display name); return email -> person id."""
    if not people:
        return {}
    emails = list(people)
    insert_ignore(
        conn,
        Person.__table__,
        [
            {"workspace_id": workspace_id, "email": email, "display_name": people[email] or ""}
            for email in emails
        ],
        ("workspace_id", "email"),
    )
    found: dict[str, int] = {}
    for start in range(0, len(emails), 500):
        part = emails[start : start + 500]
        found.update(
            conn.execute(
                select(Person.email, Person.id).where(
                    Person.workspace_id == workspace_id, Person.email.in_(part)
                )
            ).all()
        )
    return found


def _replace_guesses(
    conn: Connection,
    workspace_id: str,
    stated: dict[str, str],
    by_email: dict[str, int],
    identity_map: dict[str, int],
) -> None:
    """Re-link actors whose link was guessed from a key's name to the person the vendor now
    states (a key's creator or owner), history included."""
    if not stated:
        return
    guessed = conn.execute(
        select(Identity.actor).where(Identity.workspace_id == workspace_id, Identity.origin == NAME_GUESS)
    ).scalars()
    for actor in [actor for actor in guessed if actor in stated and stated[actor] in by_email]:
        person_id = by_email[stated[actor]]
        conn.execute(
            update(Identity)
            .where(Identity.workspace_id == workspace_id, Identity.actor == actor)
            .values(person_id=person_id, origin="auto")
        )
        if identity_map.get(actor) != person_id:
            reattribute(conn, workspace_id=workspace_id, actor=actor, person_id=person_id)
        identity_map[actor] = person_id


def resolve_actors(
    conn: Connection,
    workspace_id: str,
    actors: Iterable[str],
    hints: Sequence[IdentityHint],
    identity_map: dict[str, int],
) -> dict[str, int]:
    """Extend ``identity_map`` so every resolvable actor maps to a person.

    ``email:`` actors and hints with an email create the person if needed. Existing links win
    (an admin's manual link is never overwritten by an automatic hint), except a link guessed from
    a key's name (origin ``name_guess``), which gives way to what the vendor states.
    """
    wanted: dict[str, str] = {}  # email -> name
    actor_email: dict[str, str] = {}
    origins = {hint.actor: hint.origin for hint in hints if hint.origin != "auto"}
    for actor in actors:
        if actor not in identity_map and actor.startswith("email:"):
            email = actor[len("email:") :]
            wanted.setdefault(email, "")
            actor_email[actor] = email
    for hint in hints:
        if hint.email:
            email = hint.email.strip().lower()
            if not wanted.get(email):
                wanted[email] = hint.name
            if hint.actor not in identity_map:
                actor_email[hint.actor] = email
            email_actor = f"email:{email}"
            if email_actor not in identity_map:
                actor_email[email_actor] = email
    stated = {
        hint.actor: hint.email.strip().lower()
        for hint in hints
        if hint.email and hint.origin == "auto" and hint.actor in identity_map
    }
    if not actor_email and not stated:
        return identity_map
    by_email = ensure_people(conn, workspace_id, wanted)
    _replace_guesses(conn, workspace_id, stated, by_email, identity_map)
    new_links = [
        {
            "workspace_id": workspace_id,
            "actor": actor,
            "person_id": by_email[email],
            "origin": origins.get(actor, "auto"),
        }
        for actor, email in actor_email.items()
        if email in by_email
    ]
    insert_ignore(conn, Identity.__table__, new_links, ("workspace_id", "actor"))
    identity_map.update(
        conn.execute(
            select(Identity.actor, Identity.person_id).where(
                Identity.workspace_id == workspace_id, Identity.actor.in_([row["actor"] for row in new_links])
            )
        ).all()
        if len(new_links) <= 900
        else load_identity_map(conn, workspace_id).items()
    )
    return identity_map


def _stale_rows(table, *, of_actors: bool, kinds: bool):
    stale = [
        table.workspace_id == bindparam("workspace_id"),
        table.source == bindparam("source"),
        table.day >= bindparam("start"),
        table.day < bindparam("end"),
        table.sync_run_id != bindparam("run_id"),
    ]
    if of_actors:
        stale.append(table.actor.in_(bindparam("actors", expanding=True)))
    if table is UsageDaily and kinds:
        written = aliased(UsageDaily)
        same_slice = (
            select(written.id)
            .where(
                written.workspace_id == bindparam("workspace_id"),
                written.source == bindparam("source"),
                written.day == UsageDaily.day,
                written.actor == UsageDaily.actor,
                written.kind == UsageDaily.kind,
                written.sync_run_id == bindparam("run_id"),
            )
            .exists()
        )
        stale.append(or_(UsageDaily.kind.in_(bindparam("kinds", expanding=True)), same_slice))
    return delete(table).where(*stale)


# Built once and run with bound parameters (the OTLP intake runs them for every request, B7).
_DELETE_STALE = {
    (table, of_actors, kinds): _stale_rows(table, of_actors=of_actors, kinds=kinds)
    for table in (UsageDaily, ActivityDaily)
    for of_actors in (False, True)
    for kinds in (False, True)
}


def delete_stale(
    conn: Connection,
    *,
    workspace_id: str,
    source: str,
    start: date,
    end: date,
    run_id: int,
    complete_kinds: frozenset[str] | None = None,
    actors: Sequence[str] | None = None,
) -> None:
    """Rows of this source in the window that the current run did not write are gone upstream.

    With ``complete_kinds`` (``Batch.complete_kinds``), usage rows of the other kinds go only
    where the run wrote a row of the same day, actor and kind; the rest of them are kept. With
    ``actors``, the run covered only those actors: other actors' rows are kept.
    """
    params: dict = dict(workspace_id=workspace_id, source=source, start=start, end=end, run_id=run_id)
    if actors is not None:
        params["actors"] = sorted(actors)
    if complete_kinds is not None:
        params["kinds"] = sorted(complete_kinds)
    for table in (UsageDaily, ActivityDaily):
        kinds = table is UsageDaily and complete_kinds is not None
        conn.execute(_DELETE_STALE[(table, actors is not None, kinds)], params)


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite keeps the wall clock and drops the offset: store UTC so comparisons hold everywhere.
    return None if moment is None else moment.astimezone(UTC)


def replace_pull_requests(
    conn: Connection,
    records: Sequence[PullRequestRecord],
    *,
    workspace_id: str,
    source: str,
    run_id: int,
    people: dict[str, int],
    start: date,
    end: date,
) -> None:
    """Upsert the batch's merged PRs; this source's PRs merged in ``[start, end)`` that the run
    did not rewrite are gone upstream (or now filtered out) and are deleted, as in delete_stale."""
    rows = {
        (r.repo, r.number): {
            "workspace_id": workspace_id,
            "source": source,
            "repo": r.repo,
            "number": r.number,
            "actor": r.actor,
            "person_id": people.get(r.actor),
            "opened_at": _utc(r.opened_at),
            "merged_at": _utc(r.merged_at),
            "first_commit_at": _utc(r.first_commit_at),
            "additions": r.additions,
            "deletions": r.deletions,
            "ai_confidence": r.ai_confidence,
            "ai_rule": r.ai_rule,
            "title": r.title,
            "merge_sha": r.merge_sha,
            "ready_at": _utc(r.ready_at),
            "review_rounds": r.review_rounds,
            "is_fix": r.is_fix,
            "reverts": r.reverts,
            "reverted_by": r.reverted_by,
            "files": "\n".join(r.files),
            "session_ids": " ".join(r.session_ids),
            "sync_run_id": run_id,
        }
        for r in records
    }
    upsert(conn, PullRequest.__table__, list(rows.values()), PULL_REQUEST_KEY, PULL_REQUEST_VALUES)
    conn.execute(
        delete(PullRequest).where(
            PullRequest.workspace_id == workspace_id,
            PullRequest.source == source,
            PullRequest.merged_at >= datetime(start.year, start.month, start.day, tzinfo=UTC),
            PullRequest.merged_at < datetime(end.year, end.month, end.day, tzinfo=UTC),
            PullRequest.sync_run_id != run_id,
        )
    )


def reattribute(conn: Connection, *, workspace_id: str, actor: str, person_id: int | None) -> int:
    """Point every stored row of ``actor`` at ``person_id`` (linking re-attributes history)."""
    changed = rollups.repoint_usage(
        conn, workspace_id=workspace_id, where=(UsageDaily.actor == actor,), values={"person_id": person_id}
    )
    for table in (ActivityDaily, PullRequest):
        result = conn.execute(
            update(table)
            .where(table.workspace_id == workspace_id, table.actor == actor)
            .values(person_id=person_id)
        )
        changed += result.rowcount or 0
    return changed


def actor_hash(workspace_id: str, actor: str) -> str:
    """What a tombstone keeps of a forgotten actor: a hash, never the email or id itself."""
    return hashlib.sha256(f"{workspace_id}\x00{actor}".encode()).hexdigest()


def add_tombstones(conn: Connection, workspace_id: str, aliases: dict[str, str]) -> None:
    """Remember forgotten actors (actor -> anonymous alias) so later syncs keep them anonymous."""
    rows = [
        {"workspace_id": workspace_id, "actor_hash": actor_hash(workspace_id, actor), "alias": alias}
        for actor, alias in aliases.items()
    ]
    insert_ignore(conn, ForgottenActor.__table__, rows, ("workspace_id", "actor_hash"))
    conn.info.pop((_TOMBSTONES, workspace_id), None)


_TOMBSTONES = "forgotten_actor"
_TOMBSTONE_QUERY = select(ForgottenActor.actor_hash, ForgottenActor.alias).where(
    ForgottenActor.workspace_id == bindparam("workspace_id")
)


def _tombstones(conn: Connection, workspace_id: str) -> dict[str, str]:
    """The workspace's tombstones (actor hash -> alias), read once per transaction: the OTLP
    intake anonymises a request's points and then the rows folded from them (B7)."""
    transaction, key = conn.get_transaction(), (_TOMBSTONES, workspace_id)
    cached = conn.info.get(key)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]
    found = dict(conn.execute(_TOMBSTONE_QUERY, {"workspace_id": workspace_id}).all())
    conn.info[key] = (transaction, found)
    return found


def anonymise_forgotten(
    conn: Connection, workspace_id: str, records: Sequence, hints: Sequence[IdentityHint]
):
    """Give records of forgotten actors their alias and drop hints that would re-identify them."""
    tombstones = _tombstones(conn, workspace_id)
    if not tombstones:
        return hints
    for record in records:
        alias = tombstones.get(actor_hash(workspace_id, record.actor))
        if alias:
            record.actor = alias
    kept = []
    for hint in hints:
        if actor_hash(workspace_id, hint.actor) in tombstones:
            continue
        if hint.email and actor_hash(workspace_id, f"email:{hint.email.strip().lower()}") in tombstones:
            continue
        kept.append(hint)
    return kept


VENDOR_TOTAL_KEY = ("workspace_id", "source", "start", "end", "what")


def upsert_vendor_totals(
    conn: Connection, totals: Sequence, *, workspace_id: str, source: str, vendor: str
) -> None:
    """Store a batch's ``VendorTotal`` records: one row per (workspace, source, start, end, what),
    so re-syncing the same span replaces its figure instead of adding a second one."""
    now = utcnow()
    latest = {(t.start, t.end, t.what): t for t in totals}  # a repeat within the batch: the last wins
    rows = [
        {
            "workspace_id": workspace_id,
            "source": source,
            "vendor": vendor,
            "start": total.start,
            "end": total.end,
            "what": total.what,
            "amount_micros": total.amount.micros,
            "raw_amount": total.amount.raw_amount,
            "raw_unit": total.amount.raw_unit,
            "observed_at": now,
        }
        for total in latest.values()
    ]
    upsert(
        conn,
        VendorTotalRow.__table__,
        rows,
        VENDOR_TOTAL_KEY,
        ("vendor", "amount_micros", "raw_amount", "raw_unit", "observed_at"),
    )


def write_batch(
    conn: Connection,
    batch: Batch,
    *,
    usage: Sequence[UsageRecord],
    activity: Sequence[ActivityRecord],
    workspace_id: str,
    source: str,
    vendor: str,
    run_id: int,
    identity_map: dict[str, int],
    actors: Sequence[str] | None = None,
) -> dict[str, int]:
    """Store one batch's (folded) records in the caller's transaction: people and links, the
    daily rows, the window's stale rows removed, the rollups of the window recomputed, pull
    requests and vendor totals. The one write path of every source, the vendors' sync engine and
    the OTLP intake alike (``bot.services.sync``, ``bot.services.otel``). ``actors``: the batch
    holds only these actors' rows of the window (the source's other rows stay). Returns the
    people map.
    """
    pull_requests = batch.pull_requests
    hints = anonymise_forgotten(
        conn, workspace_id, [*usage, *activity, *(pull_requests or [])], batch.identities
    )
    named = {r.actor for r in usage} | {r.actor for r in activity}
    named |= {r.actor for r in pull_requests or []}
    people = resolve_actors(conn, workspace_id, named, hints, identity_map)
    window = dict(workspace_id=workspace_id, source=source, start=batch.window_start, end=batch.window_end)
    # Named actors: their rows' rollup share is taken now and the change added after the write.
    before = None if actors is None else rollups.actor_sums(conn, **window, actors=actors)
    common = {"workspace_id": workspace_id, "source": source, "vendor": vendor, "run_id": run_id}
    # Tuples built lazily and written in chunks: the ingest hot path (docs/benchmarks.md, B1/B6).
    bulk_upsert(
        conn,
        UsageDaily.__tablename__,
        usage_tuples(conn, usage, people=people, **common),
        USAGE_COLUMNS,
        USAGE_KEY,
        USAGE_VALUES,
    )
    bulk_upsert(
        conn,
        ActivityDaily.__tablename__,
        activity_tuples(conn, activity, people=people, **common),
        ACTIVITY_COLUMNS,
        ACTIVITY_KEY,
        ACTIVITY_VALUES,
    )
    delete_stale(
        conn,
        workspace_id=workspace_id,
        source=source,
        start=batch.window_start,
        end=batch.window_end,
        run_id=run_id,
        complete_kinds=batch.complete_kinds,
        actors=actors,
    )
    # The views read the rollups: bring this slice of them up to date in the same transaction.
    if before is None:
        rollups.refresh_window(conn, **window)
    else:
        # A batch complete for every kind leaves exactly its records as the actors' rows.
        after = None
        if batch.complete_kinds is None:
            after = rollups.batch_sums(
                usage,
                activity,
                people=people,
                source=source,
                vendor=vendor,
                start=batch.window_start,
                end=batch.window_end,
            )
        rollups.apply_actor_change(conn, before, **window, actors=actors, after=after)
    if pull_requests is not None:  # only delivery sources deal in pull requests
        replace_pull_requests(
            conn,
            pull_requests,
            workspace_id=workspace_id,
            source=source,
            run_id=run_id,
            people=people,
            start=batch.window_start,
            end=batch.window_end,
        )
    upsert_vendor_totals(conn, batch.vendor_totals, workspace_id=workspace_id, source=source, vendor=vendor)
    return people
