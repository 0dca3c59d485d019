"""``/tokens team`` carries the team's merged PRs' survival and review load (docs/value.md),
through the real Bolt app over the demo org (SQLite and PostgreSQL). A share whose PRs come from
fewer than the minimum group of authors is withheld, and a member reading their own team does not
count towards that group: with four colleagues and themself as the only authors, the member would
otherwise learn how their colleagues' PRs fared as a group of four."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.slack.blocks.common import validate
from tests.support.slack_app import PLATFORM, TODAY, all_text, person_id, send
from tests.support.value import add_merged_pr

pytestmark = pytest.mark.usefixtures("slack_team")

AUTHORS = ("ana", "ben", "chen", "dana", "emil")  # five of @platform's eight members
SURVIVED = (
    "PRs surviving 14 days (no revert, no follow-up fix): AI-assisted none decided yet · others 100% of 5"
)
WITHHELD = "others withheld (fewer than 5 people)"


def _merged_prs(engine, authors) -> None:
    merged = TODAY - timedelta(days=20)  # past the 14-day window: decided
    with engine.begin() as conn:
        for number, name in enumerate(authors, start=1):
            add_merged_pr(
                conn, person_id(conn, f"{name}@example.com"), number, merged - timedelta(days=1), merged
            )


def test_the_team_view_shows_survival_and_a_member_is_not_counted_in_their_own_group(client, seeded):
    assert "Refreshed" in all_text(send(client, f"team refresh {PLATFORM}", user_id="UADMIN"))
    _merged_prs(seeded, AUTHORS)

    admin = send(client, f"team {PLATFORM} 30d", user_id="UADMIN")
    assert validate(admin["blocks"]) == []
    assert SURVIVED in all_text(admin)
    assert "Ready for review to merge (median): AI-assisted none · others" in all_text(admin)

    # Hana wrote none of the PRs: five authors besides her, the share is shown.
    hana = all_text(send(client, f"team {PLATFORM} 30d", user_id="UHANA"))
    assert "Team AI spend" in hana and SURVIVED in hana
    # Ana is one of the five: four besides her, withheld for her alone.
    ana = all_text(send(client, f"team {PLATFORM} 30d", user_id="UANA"))
    assert "Team AI spend" in ana and WITHHELD in ana and "100% of 5" not in ana


def test_no_pr_lines_without_merged_prs(client):
    assert "Refreshed" in all_text(send(client, f"team refresh {PLATFORM}", user_id="UADMIN"))
    text = all_text(send(client, f"team {PLATFORM} 30d", user_id="UADMIN"))
    assert "Team AI spend" in text and "PRs surviving" not in text and "Ready for review" not in text
