"""The weekly recap: spend beside value for a team, the case for and against, and a vote.

No Slack here. One module per concern, each importing its siblings directly (never this
package), in this order of dependence:

- ``rules``: the case for and the case against, pure rules over ``RecapFacts``.
- ``incident_rules``, ``saved_rules``: findings fed by other features' records (the week's
  anomaly incidents; what people say AI saved), each with its own query.
- ``model``: the recap's typed values (lines, ``Tally``, ``Recap``).
- ``scope``: whose numbers a recap covers.
- ``lines``: the grouped rows into lines, week totals and per-person figures.
- ``load``: ``load_recap``, its SQL and privacy cuts, and the audit of the managers' detail.
- ``subscriptions``: ``/tokens recap`` arguments, the subscription rows and their schedule.
- ``ledger``: exactly one post per subscription and week (claimed before posting).
- ``votes``: one vote per person per posted recap, and the tally.

The chart is presentation: ``bot.slack.blocks.recap_chart``. This package re-exports the names
its callers use, so ``from bot.services import recap`` then ``recap.load_recap(...)`` works.
"""

from bot.services.recap.ledger import (
    CLAIMED,
    FAILED,
    MAX_ATTEMPTS,
    POSTED,
    RETRY_PAUSE,
    SKIPPED,
    STALE_CLAIM,
    Claim,
    DeliveryProblem,
    claim,
    delivery_by_id,
    delivery_problems,
    latest_deliveries,
    mark_failed,
    mark_posted,
    mark_skipped,
)
from bot.services.recap.load import load_configured, load_recap, record_detail_views, week_starts
from bot.services.recap.model import (
    CHOICES,
    SHOWN_WEEKS,
    WEEKS,
    EfficiencyLine,
    Recap,
    SpendLine,
    Tally,
    ValueLine,
    channel_label,
)
from bot.services.recap.scope import Scope, people_scope, scope_people, team_scope
from bot.services.recap.subscriptions import (
    DAY_NAMES,
    SKIP_EMPTY,
    RecapRequest,
    can_manage,
    due_week,
    get_subscription,
    list_subscriptions,
    next_run,
    parse_request,
    parse_time,
    recap_end,
    schedule_text,
    scheduled_at,
    subscribe,
    unsubscribe,
)
from bot.services.recap.votes import previous_tally, record_vote, tally

__all__ = [
    "CHOICES",
    "CLAIMED",
    "DAY_NAMES",
    "FAILED",
    "MAX_ATTEMPTS",
    "POSTED",
    "RETRY_PAUSE",
    "SHOWN_WEEKS",
    "SKIPPED",
    "SKIP_EMPTY",
    "STALE_CLAIM",
    "WEEKS",
    "Claim",
    "DeliveryProblem",
    "EfficiencyLine",
    "Recap",
    "RecapRequest",
    "Scope",
    "SpendLine",
    "Tally",
    "ValueLine",
    "can_manage",
    "channel_label",
    "claim",
    "delivery_by_id",
    "delivery_problems",
    "due_week",
    "get_subscription",
    "latest_deliveries",
    "list_subscriptions",
    "load_configured",
    "load_recap",
    "mark_failed",
    "mark_posted",
    "mark_skipped",
    "next_run",
    "parse_request",
    "parse_time",
    "people_scope",
    "previous_tally",
    "recap_end",
    "record_detail_views",
    "record_vote",
    "schedule_text",
    "scheduled_at",
    "scope_people",
    "subscribe",
    "tally",
    "team_scope",
    "unsubscribe",
    "week_starts",
]
