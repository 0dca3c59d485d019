"""Unpriced models (tokens with no price, never $0) read from the daily rollups: the org's
total with unattributed rows, one person's, and the team's line only from enough people."""

from __future__ import annotations

from datetime import date

from bot.domain.periods import Period
from bot.domain.records import UNPRICED
from bot.services.reports import UnpricedModel, team_unpriced_models, unpriced_models
from tests.factories import add_person, add_team, add_usage

W = "W"
MARCH = Period(date(2026, 3, 1), date(2026, 4, 1), "March 2026")


def _unpriced(conn, person_id, day, tokens, model="gpt-9-preview", **columns):
    add_usage(
        conn,
        person_id,
        day,
        0,
        workspace_id=W,
        model=model,
        cost_basis=UNPRICED,
        input_tokens=tokens,
        **columns,
    )


def _seed(conn) -> dict[str, int]:
    ids = {name: add_person(conn, name, f"U{name.upper()}", workspace_id=W) for name in ("ana", "ben", "cy")}
    _unpriced(conn, ids["ana"], date(2026, 3, 3), 1_000)
    _unpriced(conn, ids["ana"], date(2026, 3, 4), 200, output_tokens=5)
    _unpriced(conn, ids["ben"], date(2026, 3, 5), 300)
    _unpriced(conn, None, date(2026, 3, 6), 7, actor="key:unowned")  # a service key: the org's only
    _unpriced(conn, ids["cy"], date(2026, 4, 2), 50_000)  # next month: outside the period
    _unpriced(conn, ids["cy"], date(2026, 3, 9), 40, model="rare-model")
    add_usage(conn, ids["cy"], date(2026, 3, 9), 1_500, workspace_id=W, model="gpt-4o", input_tokens=9_999)
    return ids


def test_the_org_sums_every_unpriced_row_of_the_period_attributed_or_not(engine):
    with engine.begin() as conn:
        _seed(conn)
        found = unpriced_models(conn, workspace_id=W, start=MARCH.start, end=MARCH.end)
    assert found == [
        UnpricedModel("openai", "gpt-9-preview", 1_000 + 205 + 300 + 7),
        UnpricedModel("openai", "rare-model", 40),
    ]


def test_a_person_sees_only_their_own_unpriced_tokens(engine):
    with engine.begin() as conn:
        ids = _seed(conn)
        mine = unpriced_models(
            conn, workspace_id=W, start=MARCH.start, end=MARCH.end, person_ids=[ids["ana"]]
        )
        none = unpriced_models(
            conn, workspace_id=W, start=MARCH.start, end=MARCH.end, person_ids=[ids["cy"] + 100]
        )
    assert mine == [UnpricedModel("openai", "gpt-9-preview", 1_205)] and none == []


def test_a_team_line_needs_enough_people_behind_it(engine):
    with engine.begin() as conn:
        ids = _seed(conn)
        team = add_team(
            conn, "S1", {f"U{n.upper()}": i for n, i in ids.items()}, workspace_id=W, today=MARCH.start
        )
        shown = team_unpriced_models(conn, workspace_id=W, team_id=team.id, period=MARCH, min_people=2)
        strict = team_unpriced_models(conn, workspace_id=W, team_id=team.id, period=MARCH, min_people=3)
    # gpt-9-preview from Ana and Ben (the service key is nobody's); rare-model from Cy alone.
    assert shown == [UnpricedModel("openai", "gpt-9-preview", 1_505)] and strict == []
