"""The recap's findings fed by other features: the week's anomaly incidents (case against, as
counts) and what people say AI saved (case for and against), posted only over the minimum
group and never naming anyone. Pure rules, then through ``load_recap`` on real rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from bot.db import rollups
from bot.db.models import AnomalyIncident, Person, SavedTimeAsk, UsageDaily
from bot.services import recap
from bot.services.recap.incident_rules import IncidentWeek, incidents_cited
from bot.services.recap.rules import RecapFacts, WeekTotal, postable
from bot.services.recap.saved_rules import saved_little, saved_time
from bot.services.recap.scope import Scope
from bot.services.saved_time import BUCKETS, SavedWeek

W = "default"
USD = 1_000_000
END = date(2026, 11, 30)  # a Monday: the recap week is Nov 23..29
START = END - timedelta(days=7)


def _facts(spenders: set[int], ai_prs: int = 0) -> RecapFacts:
    week = WeekTotal(START, spend_micros=10 * USD, has_data=True, spenders=frozenset(spenders))
    week.delivery.ai_prs_merged = ai_prs
    return RecapFacts(weeks=[week, WeekTotal(START - timedelta(days=7))])


def _saved(**counts: int) -> SavedWeek:
    return SavedWeek(
        {key: counts.get(key, 0) for key in BUCKETS}, frozenset(range(1, 1 + sum(counts.values())))
    )


# -- the rules, pure -------------------------------------------------------------------------


def test_incident_counts_fire_on_any_incident_and_are_posted_only_over_the_minimum_group():
    week = IncidentWeek({"runaway": 2, "idle": 1}, still_open=1, expected=1, closed=1)
    found = incidents_cited(_facts({1, 2, 3, 4, 5}), week)
    assert found is not None and found.side == "against" and found.people == ()
    assert found.text == (
        "3 same-day anomalies this week (1 spend with nothing to show, 2 runaway spend): "
        "1 back to normal, 1 said to be expected, 1 still open."
    )
    assert postable(found, 5) and not postable(found, 6)
    assert incidents_cited(_facts({1, 2, 3}), IncidentWeek()) is None
    # No one with usage this week: no group to hide in, never posted.
    assert not postable(incidents_cited(_facts(set()), week), 1)


def test_saved_time_for_when_most_answers_say_time_was_saved():
    found = saved_time(_facts({1}, ai_prs=9), _saved(nothing=1, under_30m=2, **{"30m_2h": 2}, more=1))
    assert found is not None and found.side == "for" and found.people == ()
    assert "saved them time on 5 of the 6 merged PRs" in found.text
    assert "1 nothing, 2 under 30 min, 2 30 min–2 h, 1 more than 2 h" in found.text
    assert found.text.endswith("beside 9 AI-assisted merged PRs measured this week.")
    assert postable(found, 6) and not postable(found, 7)  # six people answered
    assert saved_time(_facts({1}), _saved(nothing=2, more=2)) is None  # half is not most
    assert saved_time(_facts({1}), _saved()) is None


def test_saved_little_against_when_a_third_say_nothing():
    found = saved_little(_facts({1}, ai_prs=1), _saved(nothing=2, more=4))
    assert found is not None and found.side == "against"
    assert found.text.startswith(
        "On 2 of the 6 merged PRs people answered about, they say the AI saved nothing"
    )
    assert saved_little(_facts({1}), _saved(nothing=1, more=3)) is None  # a quarter
    assert saved_little(_facts({1}), _saved(more=3)) is None


# -- through load_recap ------------------------------------------------------------------------


def _seed(conn, n: int) -> list[int]:
    ids = []
    for i in range(n):
        conn.execute(
            Person.__table__.insert().values(
                workspace_id=W, email=f"p{i}@example.com", slack_user_id=f"UP{i}", display_name=f"Secret{i}"
            )
        )
        pid = conn.execute(select(Person.id).where(Person.email == f"p{i}@example.com")).scalar_one()
        ids.append(pid)
        conn.execute(
            UsageDaily.__table__.insert().values(
                workspace_id=W, source="openai", vendor="openai", day=START + timedelta(days=1),
                actor=f"openai_user:{pid}", person_id=pid, model="gpt-5", cost_basis="billed", kind="usage",
                cost_micros=10 * USD, raw_amount="10", raw_unit="usd", in_org_total=True,
            )
        )  # fmt: skip
        merged = datetime.combine(START + timedelta(days=2), time(12), tzinfo=UTC)
        conn.execute(
            SavedTimeAsk.__table__.insert().values(
                workspace_id=W, person_id=pid, repo="acme/api", number=100 + i, merged_at=merged,
                ask_day=merged.date(), recipient=f"UP{i}", status="sent", channel="D", message_ts="1",
                claimed_at=merged, bucket="under_30m" if i else "nothing", answered_at=merged,
            )
        )  # fmt: skip
    seen = datetime.combine(START + timedelta(days=3), time(9), tzinfo=UTC)
    for rule, status, pid in (("runaway", "open", ids[0]), ("idle", "closed", ids[1])):
        conn.execute(
            AnomalyIncident.__table__.insert().values(
                workspace_id=W, subject_kind="person", subject_key=str(pid), person_id=pid, rule=rule,
                open_key=f"person:{rule}:{pid}" if status == "open" else None, status=status,
                day=seen.date(), spend_micros=80 * USD, peak_micros=80 * USD, figures="{}",
                first_seen_at=seen, last_seen_at=seen, detect_seconds=0, answered_by="",
            )
        )  # fmt: skip
    rollups.rebuild(conn)
    return ids


def _load(engine, ids: list[int], min_group_size: int) -> recap.Recap:
    with engine.connect() as conn:
        return recap.load_recap(
            conn,
            workspace_id=W,
            scope=Scope("@t", "@t", person_ids=tuple(ids)),
            end=END,
            min_group_size=min_group_size,
            today=END - timedelta(days=1),
        )


def test_the_recap_cites_incidents_and_answers_over_the_minimum_group_and_withholds_below(engine):
    with engine.begin() as conn:
        ids = _seed(conn, 3)
    posted = _load(engine, ids, 3)
    against = {f.rule: f for f in posted.case_against}
    # The two incidents are two people's own: not for a channel with a minimum of three.
    assert "anomaly_incidents" not in against
    assert "anomaly_incidents" in {f.rule for f in posted.withheld}
    incidents = next(f for f in _load(engine, ids, 2).case_against if f.rule == "anomaly_incidents")
    assert incidents.text.startswith("2 same-day anomalies this week") and "1 still open" in incidents.text
    assert [f.rule for f in posted.case_for if f.rule == "saved_time"] == ["saved_time"]
    assert "saved them time on 2 of the 3 merged PRs" in next(
        f.text for f in posted.case_for if f.rule == "saved_time"
    )
    assert "saved_little" in against  # one "nothing" in three answers
    assert not any("Secret" in f.text for f in [*posted.case_for, *posted.case_against])

    withheld = _load(engine, ids, 4)
    rules = {f.rule for f in [*withheld.case_for, *withheld.case_against]}
    assert not rules & {"anomaly_incidents", "saved_time", "saved_little"}
    assert {"anomaly_incidents", "saved_time", "saved_little"} <= {f.rule for f in withheld.withheld}
