"""What people say AI saved them (pure): the one-tap DM after an AI-assisted PR merges, the
answer to a tap and ``/tokens saved``. Every one is a DM or an ephemeral answer."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.services.saved_time import BUCKETS, BUTTON_SNOOZE_DAYS, MAX_SNOOZE_DAYS, Answer, DueAsk, Pref
from bot.slack.blocks.common import Message, button, context, escape, message, section

ANSWER_ACTION = "saved_time"  # + "_<bucket>": one action id per button, the ask id as value
ANSWER_BLOCK = "saved_time"
SNOOZE_ACTION = "saved_time_snooze"  # the ask id as value


def pr_label(repo: str, number: int) -> str:
    return f"{escape(repo[:150])}#{number}"


def build_ask(ask: DueAsk, *, ask_id: int, min_group_size: int, tz: ZoneInfo) -> Message:
    pr = pr_label(ask.repo, ask.number)
    question = f"Your AI-assisted pull request {pr} merged {ask.merged_at.astimezone(tz):%a %b %d}."
    return message(
        f"{question} What did the AI save you?",
        [
            section(f":stopwatch: {question} *What did the AI save you?*"),
            {
                "type": "actions",
                "block_id": ANSWER_BLOCK,
                "elements": [
                    *(button(label, f"{ANSWER_ACTION}_{key}", str(ask_id)) for key, label in BUCKETS.items()),
                    button(f"Snooze {BUTTON_SNOOZE_DAYS} days", SNOOZE_ACTION, str(ask_id)),
                ],
            },
            context(
                "One tap, and you can change it. Only counts per answer reach a channel, and only over "
                f"at least {min_group_size} people who answered. At most one question a day; "
                "`/tokens saved off` stops them."
            ),
        ],
    )


def build_answer(answer: Answer, *, tz: ZoneInfo) -> Message:
    label = BUCKETS.get(answer.bucket, "")
    if answer.outcome == "snoozed" and answer.snoozed_until is not None:
        text = (
            f":zzz: No questions until {answer.snoozed_until.astimezone(tz):%a %b %d %H:%M %Z}. "
            "`/tokens saved on` ends the snooze, `/tokens saved off` stops them."
        )
    elif answer.outcome in ("recorded", "changed"):
        verb = "Changed to" if answer.outcome == "changed" else "Noted"
        text = f":white_check_mark: {verb} *{label}* for {pr_label(answer.repo, answer.number)}. Thanks."
    elif answer.outcome == "refused":
        text = "Only the person this question was asked of can answer it."
    else:
        text = "I cannot find that question any more."
    return message(text, [section(text)])


def build_status(pref: Pref, *, now: datetime, tz: ZoneInfo, min_group_size: int) -> Message:
    if not pref.opted_in:
        state = (
            "Off. `/tokens saved on` and I ask, at most once a day, after an AI-assisted pull request of "
            "yours merges: what did it save you? One tap."
        )
    elif pref.snoozed(now) and pref.snoozed_until is not None:
        state = (
            f"On, snoozed until {pref.snoozed_until.astimezone(tz):%a %b %d %H:%M %Z}. "
            "`/tokens saved on` ends the snooze, `/tokens saved off` stops the questions."
        )
    else:
        state = (
            "On: at most one question a day, after an AI-assisted pull request of yours merges. "
            f"`/tokens saved snooze <1-{MAX_SNOOZE_DAYS} days>` pauses them, `/tokens saved off` stops them."
        )
    text = f"What AI saved you: {state}"
    return message(
        text,
        [
            section(f"*What AI saved you*: {state}"),
            context(
                f"Your answers are yours: channels see only counts over at least {min_group_size} people "
                "who answered."
            ),
        ],
    )
