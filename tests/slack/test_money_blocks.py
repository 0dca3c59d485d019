"""The pure builders: the private cost-per-PR line of `/tokens me`, and the seat ledger within
Slack's limits however many seats it lists."""

from __future__ import annotations

from datetime import date, timedelta

from bot.services.seats_ledger import Seat, SeatLedger, VendorSeats
from bot.services.value.cost_per_pr import APPORTIONED, MEASURED, PrCost
from bot.slack.blocks.common import validate
from bot.slack.blocks.pr_costs import MAX_PRS_NAMED, pr_cost_line
from bot.slack.blocks.seats import RECLAIM_ACTION, build_ledger, parse_reclaim_value, reclaim_value

D = date(2026, 11, 2)


def cost(n: int, micros: int, basis: str = APPORTIONED) -> PrCost:
    return PrCost(n, 1, "acme/<api>", n, D + timedelta(days=n), micros, basis)


def test_the_me_line_names_the_persons_own_prs_with_the_basis():
    line = pr_cost_line([cost(1, 1_100_000), cost(2, 9_800_000), cost(3, 4_200_000, MEASURED)])
    assert line.startswith("*Cost per merged PR* (apportioned, some measured): median $4.20 over 3 PRs")
    assert "Measured where a PR names its agent session; the rest is your AI spend" in line
    assert "(middle half $1.10–$9.80)" in line
    assert "acme/&lt;api&gt;#3 $4.20 measured · acme/&lt;api&gt;#2 $9.80" in line  # newest first, escaped
    many = pr_cost_line([cost(n, 1_000_000) for n in range(1, MAX_PRS_NAMED + 3)])
    assert "· 2 more." in many
    assert "(measured)" in pr_cost_line([cost(1, 5, MEASURED)])
    only_apportioned = pr_cost_line([cost(1, 5), cost(2, 7)])
    assert "(apportioned):" in only_apportioned and "measured" not in only_apportioned
    assert pr_cost_line([]) is None


def test_a_long_seat_ledger_stays_within_slacks_limits():
    today = D + timedelta(days=100)
    seats = tuple(Seat("github_copilot", f"github:user{i}", None, D, None) for i in range(120))
    vendor = VendorSeats(
        "github_copilot", today, seats, 0, seats, 120, date(2027, 3, 1), 7, 30, 60, stale=False
    )
    reply = build_ledger(SeatLedger([vendor], {}), today)
    assert validate(reply.blocks) == []
    buttons = [b for b in reply.blocks if b.get("accessory", {}).get("action_id") == RECLAIM_ACTION]
    assert 0 < len(buttons) < 50 and "more reassignable seats not listed" in str(reply.blocks)
    assert parse_reclaim_value(reclaim_value(seats[0])) == ("github_copilot", "github:user0")
    assert parse_reclaim_value("no-separator") is None and parse_reclaim_value("|x") is None
