"""The audit log in words: no internal ids (``person=14``, ``budget=3``), no detail cut mid-word."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.services.privacy import AuditEntry, AuditPage
from bot.slack.blocks.common import validate
from bot.slack.blocks.privacy import MAX_DETAIL, build_audit, detail_text

LABELS = {14: ("UANA", "Ana"), 9: (None, "Ben Old")}
AT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def test_person_and_budget_ids_become_names_or_disappear():
    assert detail_text("person=14 from=person:9", LABELS) == "<@UANA> from Ben Old"
    assert detail_text("request=5 +$10.00 budget=3: monthly ceiling $100.00", LABELS) == (
        "request #5 +$10.00: monthly ceiling $100.00"
    )
    assert detail_text("claim=2 person=14", LABELS) == "claim #2 <@UANA>"
    assert detail_text("group=- weekly Monday 09:00", LABELS) == "weekly Monday 09:00"
    assert (
        detail_text("period=2026-11-01..2026-11-30 as=admin", LABELS) == "Nov 1, 2026 – Nov 30, 2026 as admin"
    )
    assert "person=" not in detail_text("person=99", LABELS)  # someone not on the page: "someone"


def test_a_long_detail_is_cut_at_a_word_boundary():
    detail = "budget=3: " + " ".join(f"word{i}" for i in range(60))
    text = detail_text(detail, LABELS)
    assert len(text) <= MAX_DETAIL + 2
    assert text.endswith(" …")
    kept = text[: -len(" …")].split(" ")
    assert all(w.startswith("word") and w[4:].isdigit() for w in kept[1:])  # whole words only


def test_the_audit_page_shows_no_internal_ids():
    entries = [
        AuditEntry(AT, "UBEN", "view.person", "person:14", "period=2026-11-01..2026-11-30 as=manager"),
        AuditEntry(AT, "UADMIN", "link.admin", "person:14", "person=14 from=person:9"),
        AuditEntry(AT, "UADMIN", "budget.set", "budget:3", "none -> monthly ceiling $100.00"),
        AuditEntry(AT, "UANA", "role.add", "team:77", "manager <@UBEN>"),
    ]
    message = build_audit(
        AuditPage(entries, total=4, page=1, pages=1),
        title="Audit log",
        labels=LABELS,
        tz=ZoneInfo("UTC"),
        empty="",
        command="audit",
        teams={},
    )
    text = str(message.blocks)
    for internal in ("person=", "person:", "budget=", "budget:", "team:77", "person 14"):
        assert internal not in text, internal
    assert "<@UBEN> viewed the numbers of <@UANA> _(Nov 1, 2026 – Nov 30, 2026 as manager)_" in text
    assert "a team since removed" in text
    assert validate(message.blocks) == []


def test_the_page_collects_people_named_in_details():
    page = AuditPage([AuditEntry(AT, "U1", "link.move", "person:3", "person=14 from=person:9")], 1, 1, 1)
    assert page.person_ids() == [3, 9, 14]
