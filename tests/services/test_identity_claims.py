"""Identity that cannot be taken over (issue 14, items 9 and 10), attacked through the real HTTP
app with GitHub's "Get a user" endpoint on a loopback fake: an unverified self-claim moves
nothing, a pending claim is decided once by an admin, and relinking someone's identity names
its owner and moves only on request, from Slack and from `tokenwise people import`. The rules
are in docs/privacy.md, "Identity claims"."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli import app as cli_app
from bot.db import rollups
from bot.db.models import AuditLog, Identity, IdentityClaim, Person, UsageDaily
from tests.support.files import fixture_path
from tests.support.slack_app import TODAY, all_text, person_id, send, slack_client

pytestmark = pytest.mark.usefixtures("slack_team")

TOKEN = "ghp_claimcheck0123456789abcdefABCDEF"
TARGET = "github:octo-target"  # an unlinked login with history: the prize
ANA_LOGIN = "github:ana-gh"


@pytest.fixture
def github():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    for login, fixture in (
        ("octo-target", "user-no-public-email.json"),
        ("ana-gh", "user-public-email.json"),
    ):
        server.expect_request(f"/users/{login}").respond_with_data(
            fixture_path("github", fixture).read_bytes(), content_type="application/json"
        )
    server.expect_request("/users/nobody-here").respond_with_json({"message": "Not Found"}, status=404)
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def seeded(seeded):
    """The demo org, plus Copilot seats of a GitHub login nobody has claimed and of Ana's login."""
    with seeded.begin() as conn:
        for actor, micros in ((TARGET, 41_000_000), (ANA_LOGIN, 7_000_000)):
            conn.execute(
                UsageDaily.__table__.insert().values(
                    workspace_id="default",
                    source="github_copilot",
                    vendor="github_copilot",
                    day=TODAY,
                    actor=actor,
                    person_id=None,
                    model="copilot-seat",
                    cost_basis="estimated",
                    kind="seat",
                    cost_micros=micros,
                    raw_amount="0",
                    raw_unit="estimate:copilot-seat-list-price",
                    in_org_total=True,
                )
            )
        rollups.rebuild(conn)  # written directly: bring the rollups in step
    return seeded


@pytest.fixture
def client(seeded, fake_slack, github):
    settings = {"GITHUB_API_BASE_URL": github.url_for("/"), "GITHUB_COPILOT_TOKEN": TOKEN}
    with slack_client(seeded, fake_slack, **settings) as test_client:
        yield test_client


def _owners(engine, actor: str) -> tuple[int | None, set[int | None]]:
    """(the identity's person, the persons of its stored rows)."""
    with engine.connect() as conn:
        linked = conn.execute(select(Identity.person_id).where(Identity.actor == actor)).scalar()
        rows = set(conn.execute(select(UsageDaily.person_id).where(UsageDaily.actor == actor)).scalars())
    return linked, rows


def _claims(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            select(
                IdentityClaim.id, IdentityClaim.actor, IdentityClaim.claimer_user_id, IdentityClaim.status
            ).order_by(IdentityClaim.id)
        ).all()


# -- item 9: self-claims ---------------------------------------------------------------------


def test_an_unverified_self_claim_moves_nothing_and_waits_for_an_admin(client, seeded, github):
    reply = all_text(send(client, "link github octo-target", user_id="UIVAN"))
    assert "could not verify that `github:octo-target` is yours" in reply
    assert "GitHub shows no public email for it" in reply and "nothing is re-attributed" in reply
    assert _owners(seeded, TARGET) == (None, {None})
    (claim,) = _claims(seeded)
    assert claim[1:] == (TARGET, "UIVAN", "pending")
    # GitHub was asked with the token; the token is in no answer.
    (request, _), *_ = github.log
    assert request.headers["Authorization"] == f"Bearer {TOKEN}" and TOKEN not in reply
    again = all_text(send(client, "link github @Octo-Target", user_id="UIVAN"))
    assert f"Your claim #{claim[0]} of `{TARGET}` already waits" in again and len(_claims(seeded)) == 1


def test_a_public_email_that_is_someone_elses_does_not_verify(client, seeded):
    """Ana's login shows ana@example.com: Ivan claiming it gets a pending claim, not her history."""
    reply = all_text(send(client, "link github ana-gh", user_id="UIVAN"))
    assert "its public email on GitHub is not yours" in reply
    assert _owners(seeded, ANA_LOGIN) == (None, {None})


def test_unknown_logins_unreachable_github_and_bad_logins_move_nothing(client, seeded, fake_slack):
    assert "GitHub has no such login" in all_text(send(client, "link github nobody-here", user_id="UIVAN"))
    bad = all_text(send(client, "link github not/a/login", user_id="UIVAN"))
    assert "is not a GitHub login" in bad
    with slack_client(
        seeded, fake_slack, GITHUB_API_BASE_URL="http://127.0.0.1:9/", TOKENWISE_HTTP_MAX_RETRIES="0"
    ) as offline:
        down = all_text(send(offline, "link github octo-target", user_id="UKOFI"))
    assert "GitHub could not be asked" in down
    assert _owners(seeded, TARGET) == (None, {None})
    assert [c[3] for c in _claims(seeded)] == ["pending", "pending"]


def test_a_verified_self_claim_links_at_once(client, seeded):
    reply = all_text(send(client, "link github Ana-GH", user_id="UANA"))
    assert "shows your email, so `github:ana-gh` is now linked to you; 1 stored rows re-attributed" in reply
    with seeded.connect() as conn:
        ana = person_id(conn, "ana@example.com")
        origin = conn.execute(select(Identity.origin).where(Identity.actor == ANA_LOGIN)).scalar_one()
        actions = conn.execute(select(AuditLog.action, AuditLog.target)).all()
    assert _owners(seeded, ANA_LOGIN) == (ana, {ana}) and origin == "verified"
    assert ("link.self", ANA_LOGIN) in actions and _claims(seeded) == []
    assert "already linked to you" in all_text(send(client, "link github ana-gh", user_id="UANA"))


def test_a_verified_claim_of_someone_elses_identity_still_waits(client, seeded):
    """Ana's own login, held by Ben: even Ana's verified claim waits for an admin to move it."""
    send(client, "link github ana-gh <@UBEN|ben>", user_id="UADMIN")
    with seeded.connect() as conn:
        ben = person_id(conn, "ben@example.com")
    reply = all_text(send(client, "link github ana-gh", user_id="UANA"))
    assert "could not verify" in reply and "it is linked to someone else" in reply
    assert _owners(seeded, ANA_LOGIN) == (ben, {ben})
    assert [c[1:] for c in _claims(seeded)] == [(ANA_LOGIN, "UANA", "pending")]


def test_admins_see_pending_claims_and_decide_each_exactly_once(client, seeded):
    send(client, "link github octo-target", user_id="UIVAN")
    send(client, "link github ana-gh", user_id="UKOFI")
    (ivan_claim, kofi_claim) = [c[0] for c in _claims(seeded)]
    for verb in ("pending", f"approve {ivan_claim}", f"deny {ivan_claim}"):
        refused = all_text(send(client, f"link {verb}", user_id="UIVAN"))
        assert "Only admins decide identity claims" in refused
    assert [c[3] for c in _claims(seeded)] == ["pending", "pending"]
    listed = all_text(send(client, "link pending", user_id="UADMIN"))
    assert f"#{ivan_claim}: <@UIVAN> claims `{TARGET}`" in listed and "1 stored usage rows" in listed
    assert f"#{kofi_claim}: <@UKOFI> claims `{ANA_LOGIN}`" in listed and "waiting: 2" in listed

    approved = all_text(send(client, f"link approve {ivan_claim}", user_id="UADMIN"))
    assert f"`{TARGET}` is linked to <@UIVAN>; 1 stored rows re-attributed" in approved
    with seeded.connect() as conn:
        ivan = person_id(conn, "ivan@example.com")
    assert _owners(seeded, TARGET) == (ivan, {ivan})
    # A replayed or contrary second decision changes nothing.
    for second in (f"approve {ivan_claim}", f"deny {ivan_claim}"):
        assert "is not waiting" in all_text(send(client, f"link {second}", user_id="UADMIN"))
    assert _owners(seeded, TARGET) == (ivan, {ivan})
    denied = all_text(send(client, f"link deny #{kofi_claim}", user_id="UADMIN"))
    assert "Denied claim" in denied and _owners(seeded, ANA_LOGIN) == (None, {None})
    assert [c[3] for c in _claims(seeded)] == ["approved", "denied"]
    assert "No identity claims are waiting" in all_text(send(client, "link pending", user_id="UADMIN"))
    with seeded.connect() as conn:
        actions = [a for (a,) in conn.execute(select(AuditLog.action).order_by(AuditLog.id))]
    assert actions == ["link.claim", "link.claim", "link.approve", "link.deny"]


# -- item 10: relinking an identity that belongs to someone ----------------------------------


def test_admin_relink_names_the_owner_and_moves_only_with_move(client, seeded):
    assert "1 stored rows re-attributed" in all_text(
        send(client, "link github octo-target <@UBEN|ben>", user_id="UADMIN")
    )
    with seeded.connect() as conn:
        ben, chen = person_id(conn, "ben@example.com"), person_id(conn, "chen@example.com")
    refused = all_text(send(client, "link github octo-target <@UCHEN|chen>", user_id="UADMIN"))
    assert "`github:octo-target` already belongs to ben@example.com <@UBEN>; nothing changed" in refused
    assert "`/tokens link github octo-target <@UCHEN> --move`" in refused
    assert _owners(seeded, TARGET) == (ben, {ben})
    assert "Only admins" in all_text(
        send(client, "link github octo-target <@UCHEN|chen> --move", user_id="UCHEN")
    )
    assert _owners(seeded, TARGET) == (ben, {ben})
    moved = all_text(send(client, "link github octo-target <@UCHEN|chen> --move", user_id="UADMIN"))
    assert "Linked `github:octo-target` to Chen Wei; 1 stored rows re-attributed" in moved
    assert _owners(seeded, TARGET) == (chen, {chen})
    with seeded.connect() as conn:
        moves = conn.execute(select(AuditLog.detail).where(AuditLog.action == "link.move")).scalars().all()
    assert moves == [f"person={chen} from=person:{ben}"]
    # Relinking to the same person is harmless.
    assert "Linked" in all_text(send(client, "link github octo-target <@UCHEN|chen>", user_id="UADMIN"))


def test_people_import_names_the_owner_and_moves_only_with_move(seeded, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    runner = CliRunner()
    first = tmp_path / "first.csv"
    first.write_text("email,slack_id,github\nben@example.com,UBEN,Octo-Target\n")
    assert runner.invoke(cli_app, ["people", "import", str(first)]).exit_code == 0
    with seeded.connect() as conn:
        ben = person_id(conn, "ben@example.com")
    second = tmp_path / "second.csv"
    second.write_text("email,github\nnew.person@example.com,new-login\nchen@example.com,octo-target\n")
    refused = runner.invoke(cli_app, ["people", "import", str(second)])
    assert refused.exit_code == 2, refused.output
    assert "line 3: `github:octo-target` already belongs to ben@example.com (Slack UBEN)" in refused.output
    assert "re-run with --move" in refused.output and "Traceback" not in refused.output
    assert _owners(seeded, TARGET) == (ben, {ben})
    with seeded.connect() as conn:  # all or nothing: the first line of the refused file left no trace
        assert (
            conn.execute(select(func.count()).where(Person.email == "new.person@example.com")).scalar() == 0
        )
        assert conn.execute(select(func.count()).where(Identity.actor == "github:new-login")).scalar() == 0
    moved = runner.invoke(cli_app, ["people", "import", str(second), "--move"])
    assert moved.exit_code == 0, moved.output
    with seeded.connect() as conn:
        chen = person_id(conn, "chen@example.com")
    assert _owners(seeded, TARGET) == (chen, {chen})


def test_forgetting_a_claimer_removes_their_pending_claims(client, seeded):
    from bot.services.privacy import forget_person

    send(client, "link github octo-target", user_id="UIVAN")
    assert len(_claims(seeded)) == 1
    with seeded.begin() as conn:
        ivan = person_id(conn, "ivan@example.com")
        forget_person(conn, workspace_id="default", person_id=ivan, actor_user_id="test")
    assert _claims(seeded) == []
