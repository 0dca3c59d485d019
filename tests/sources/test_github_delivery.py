"""GitHub delivery source against a loopback fake of the GitHub REST endpoints it uses.

The fixtures (tests/fixtures/github_delivery/) follow GitHub's documented schemas for
"list organization repositories", "list pull requests", "get a pull request", "list commits on a
pull request", "list reviews for a pull request" and "list commits". The org has five repos over
two pages: ``infra-secrets`` is denied by GITHUB_DELIVERY_REPOS_DENY, ``old`` and ``empty`` saw no
push in the window (no commit listing). ``api`` lists pull requests over three pages; the second
page reaches a PR last updated before the window, so the third is never asked for.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.db.models import ActivityDaily, PullRequest
from bot.services.sync import run_source
from bot.settings import Settings, SourceAccount, VendorAccount
from bot.sources.base import SourceError
from bot.sources.github_delivery import (
    SHARED_CACHE,
    EtagCache,
    GitHubDeliveryConnector,
    from_settings,
)
from tests.factories import link_github_person
from tests.support.files import fixture_path

TOKEN = "ghp_delivery_test_token"
TODAY = date(2026, 3, 8)
PULLS_QUERY = {"state": "all", "sort": "updated", "direction": "desc", "per_page": "100"}
API_PULLS = "/repos/acme/api/pulls"
WEB_PULLS = "/repos/acme/web/pulls"


@pytest.fixture(autouse=True)
def _cold_cache():
    """The connector's default ETag cache lives in the process: no test may see another's."""
    SHARED_CACHE.clear()
    yield
    SHARED_CACHE.clear()


def _fixture(name: str) -> bytes:
    return fixture_path("github_delivery", name).read_bytes()


def _json(httpserver, path: str, name: str, *, query=None, headers=None) -> None:
    httpserver.expect_request(path, query_string=query).respond_with_data(
        _fixture(name), content_type="application/json", headers=headers or {}
    )


def _not_modified(httpserver, path: str, etag: str, *, query=None) -> None:
    """Registered before the 200 handler: answers only a request that carries the validator."""
    httpserver.expect_request(path, query_string=query, headers={"If-None-Match": etag}).respond_with_data(
        "", status=304, headers={"ETag": etag}
    )


def _serve(httpserver) -> None:
    repos = "/orgs/acme/repos"
    page2 = httpserver.url_for(repos) + "?type=all&per_page=100&page=2"
    _json(
        httpserver,
        repos,
        "repos-page1.json",
        query={"type": "all", "per_page": "100"},
        headers={"Link": f'<{page2}>; rel="next", <{page2}>; rel="last"'},
    )
    _json(httpserver, repos, "repos-page2.json", query={"type": "all", "per_page": "100", "page": "2"})

    pulls = httpserver.url_for(API_PULLS) + "?state=all&sort=updated&direction=desc&per_page=100"
    _not_modified(httpserver, API_PULLS, '"api-pulls-1"', query=PULLS_QUERY)
    _json(
        httpserver,
        API_PULLS,
        "pulls-api-page1.json",
        query=PULLS_QUERY,
        headers={
            "ETag": '"api-pulls-1"',
            "Link": f'<{pulls}&page=2>; rel="next", <{pulls}&page=3>; rel="last"',
        },
    )
    _json(
        httpserver,
        API_PULLS,
        "pulls-api-page2.json",
        query={**PULLS_QUERY, "page": "2"},
        headers={
            "Link": f'<{pulls}&page=3>; rel="next", <{pulls}&page=3>; rel="last", <{pulls}>; rel="first"'
        },
    )
    _json(httpserver, API_PULLS, "pulls-api-page3.json", query={**PULLS_QUERY, "page": "3"})
    # A secondary rate limit on the first ask, then the page.
    httpserver.expect_oneshot_request(WEB_PULLS).respond_with_data(
        _fixture("secondary-rate-limit.json"),
        status=403,
        content_type="application/json",
        headers={"Retry-After": "7", "X-RateLimit-Remaining": "4500"},
    )
    _json(httpserver, WEB_PULLS, "pulls-web.json", query=PULLS_QUERY)
    for repo in ("old", "empty"):
        _json(httpserver, f"/repos/acme/{repo}/pulls", "empty-list.json", query=PULLS_QUERY)

    _json(httpserver, "/repos/acme/api/commits", "commits-api-main.json")
    _json(httpserver, "/repos/acme/web/commits", "commits-web-trunk.json")

    _not_modified(httpserver, "/repos/acme/api/pulls/101", '"pr101-v1"')
    _json(httpserver, "/repos/acme/api/pulls/101", "pull-api-101.json", headers={"ETag": '"pr101-v1"'})
    for repo, number in (("api", 100), ("api", 102), ("api", 104), ("web", 7), ("web", 6)):
        _json(httpserver, f"/repos/acme/{repo}/pulls/{number}", f"pull-{repo}-{number}.json")
        _json(httpserver, f"/repos/acme/{repo}/pulls/{number}/commits", f"pull-commits-{repo}-{number}.json")
    for repo, number in (("api", 100), ("api", 101), ("api", 102), ("api", 104), ("web", 7), ("web", 6)):
        for listing in (f"pulls/{number}/files", f"issues/{number}/timeline"):  # survival, review load
            _json(httpserver, f"/repos/acme/{repo}/{listing}", "empty-list.json")
    _json(httpserver, "/repos/acme/api/pulls/101/commits", "pull-commits-api-101.json")
    for repo, number in (("api", 101), ("api", 102), ("api", 103), ("api", 104), ("api", 105), ("web", 7)):
        _json(httpserver, f"/repos/acme/{repo}/pulls/{number}/reviews", f"reviews-{repo}-{number}.json")
    for repo, number in (("api", 100), ("web", 6), ("web", 5)):
        _json(httpserver, f"/repos/acme/{repo}/pulls/{number}/reviews", "empty-list.json")


def _settings(httpserver, **extra) -> Settings:
    values = {
        "GITHUB_DELIVERY_TOKEN": TOKEN,
        "GITHUB_DELIVERY_ORG": "acme",
        "GITHUB_API_BASE_URL": httpserver.url_for("/"),
        "GITHUB_DELIVERY_REPOS_DENY": "infra-*",
        "TOKENWISE_HTTP_MAX_BACKOFF": 0.01,
        **extra,
    }
    return Settings(**values)


def _connector(httpserver, *, sleep=None, cache=None, **extra) -> GitHubDeliveryConnector:
    settings = _settings(httpserver, **extra)
    if sleep is None and cache is None:
        (connector,) = from_settings(settings)
        return connector
    return GitHubDeliveryConnector(
        VendorAccount("github_delivery", TOKEN, httpserver.url_for("/"), "acme"),
        settings,
        cache=cache if cache is not None else EtagCache(),
        sleep=sleep or (lambda _: None),
    )


def _link(engine, login: str, email: str) -> int:
    return link_github_person(engine, login, email)


# (day, actor, prs_opened, prs_merged, ai_prs_merged, commits, reviews, +lines, -lines, merge minutes)
EXPECTED_ACTIVITY = [
    (1, "github:alice", 0, 1, 0, 1, 0, 7, 7, 4440),  # #100 opened in Feb, first commit Feb 26
    (2, "github:alice", 1, 0, 0, 0, 0, 0, 0, None),
    (3, "github:alice", 0, 1, 1, 1, 0, 120, 30, 1890),  # #101: Claude co-author trailer
    (4, "github:alice", 0, 0, 0, 0, 1, 0, 0, None),  # two comments on #102 the same day: one review
    (5, "github:alice", 0, 0, 0, 0, 1, 0, 0, None),
    (6, "github:alice", 1, 0, 0, 0, 1, 0, 0, None),  # reviewed dependabot's #105 (the PR is a bot's)
    (7, "github:alice", 0, 0, 0, 0, 1, 0, 0, None),
    (3, "github:bob", 0, 0, 0, 0, 1, 0, 0, None),
    (4, "github:bob", 1, 0, 0, 0, 0, 0, 0, None),  # bob answering on his own #102 is no review
    (5, "github:bob", 0, 1, 1, 1, 0, 10, 5, 1500),  # #102: label "AI-Assisted"
    (6, "github:bob", 0, 0, 0, 0, 1, 0, 0, None),
    (5, "github:carol", 1, 1, 1, 0, 1, 40, 2, 295),  # #104 opened by Copilot, assigned to carol
    (5, "github:copilot", 0, 0, 0, 1, 0, 0, 0, None),  # agents are not bots: its commit counts
    (3, "github:dave", 1, 0, 0, 0, 0, 0, 0, None),
    (7, "github:dave", 0, 1, 1, 1, 0, 300, 100, 5940),  # web#7: "Generated with [Claude Code]"
    (2, "github:erin", 1, 1, 0, 1, 0, 5, 1, 540),  # co-author "Claude Martin" is a colleague
]

EXPECTED_PULLS = [
    ("acme/api", 100, "github:alice", 7, 7, "none", "", "2026-02-26T10:00", "2026-03-01T12:00"),
    (
        "acme/api",
        101,
        "github:alice",
        120,
        30,
        "high",
        "co_author_trailer:claude",
        "2026-03-02T08:00",
        "2026-03-03T15:30",
    ),
    (
        "acme/api",
        102,
        "github:bob",
        10,
        5,
        "high",
        "label:ai-assisted",
        "2026-03-04T09:00",
        "2026-03-05T10:00",
    ),
    (
        "acme/api",
        104,
        "github:carol",
        40,
        2,
        "high",
        "agent_author:copilot",
        "2026-03-05T11:05",
        "2026-03-05T16:00",
    ),
    ("acme/web", 6, "github:erin", 5, 1, "none", "", "2026-03-02T09:00", "2026-03-02T18:00"),
    (
        "acme/web",
        7,
        "github:dave",
        300,
        100,
        "high",
        "generated_with:claude code",
        "2026-03-03T07:00",
        "2026-03-07T10:00",
    ),
]


def _activity(engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                ActivityDaily.day,
                ActivityDaily.actor,
                ActivityDaily.prs_opened,
                ActivityDaily.prs_merged,
                ActivityDaily.ai_prs_merged,
                ActivityDaily.commits,
                ActivityDaily.reviews,
                ActivityDaily.lines_added,
                ActivityDaily.lines_removed,
                ActivityDaily.merge_minutes_median,
            ).order_by(ActivityDaily.actor, ActivityDaily.day)
        ).all()
    return [(r[0].day, *r[1:]) for r in rows]


def _pulls(engine) -> list[tuple]:
    def minute(moment: datetime) -> str:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M")

    with engine.connect() as conn:
        rows = conn.execute(
            select(
                PullRequest.repo,
                PullRequest.number,
                PullRequest.actor,
                PullRequest.additions,
                PullRequest.deletions,
                PullRequest.ai_confidence,
                PullRequest.ai_rule,
                PullRequest.first_commit_at,
                PullRequest.merged_at,
            ).order_by(PullRequest.repo, PullRequest.number)
        ).all()
    return [(*r[:7], minute(r[7]), minute(r[8])) for r in rows]


def _paths(httpserver) -> list[str]:
    return [request.path for request, _ in httpserver.log]


def test_end_to_end_exact_counts_attribution_and_rerun(engine, httpserver):
    _serve(httpserver)
    alice = _link(engine, "alice", "alice@acme.test")
    connector = _connector(httpserver)
    kwargs = dict(workspace_id="W", since=date(2026, 3, 1), until=date(2026, 3, 8), today=TODAY)

    outcome = run_source(engine, connector, **kwargs)
    assert outcome.status == "ok", outcome.error
    assert outcome.activity_rows == 16
    assert _activity(engine) == EXPECTED_ACTIVITY
    assert _pulls(engine) == EXPECTED_PULLS
    with engine.connect() as conn:
        totals = conn.execute(
            select(
                func.sum(ActivityDaily.prs_opened),
                func.sum(ActivityDaily.prs_merged),
                func.sum(ActivityDaily.ai_prs_merged),
                func.sum(ActivityDaily.commits),
                func.sum(ActivityDaily.reviews),
                func.sum(ActivityDaily.lines_added),
                func.sum(ActivityDaily.lines_removed),
            )
        ).one()
        alice_rows = conn.execute(
            select(func.count()).where(
                ActivityDaily.person_id == alice, ActivityDaily.actor == "github:alice"
            )
        ).scalar()
        alice_prs = conn.execute(select(PullRequest.number).where(PullRequest.person_id == alice)).scalars()
        unlinked_prs = conn.execute(select(func.count()).where(PullRequest.person_id.is_(None))).scalar()
        sources = set(conn.execute(select(ActivityDaily.source, ActivityDaily.vendor).distinct()).all())
    assert tuple(totals) == (6, 6, 4, 6, 7, 482, 145)
    assert alice_rows == 7
    assert sorted(alice_prs) == [100, 101]
    assert unlinked_prs == 4  # bob, carol, dave, erin: GitHub gives no email, an admin links them
    assert sources == {("github_delivery", "github_delivery")}

    paths = _paths(httpserver)
    assert not any(p.startswith("/repos/acme/infra-secrets") for p in paths)  # denied
    assert "/repos/acme/old/commits" not in paths and "/repos/acme/empty/commits" not in paths
    # Paging stopped at the PR updated before the window: page 3 was never asked for.
    pages = [r.args.get("page") for r, _ in httpserver.log if r.path == API_PULLS]
    assert pages == [None, "2"]
    # Bot PRs, open PRs and PRs outside the window get no detail or commit requests.
    for number in (105, 103, 99, 98):
        assert f"/repos/acme/api/pulls/{number}" not in paths
        assert f"/repos/acme/api/pulls/{number}/commits" not in paths
    assert "/repos/acme/web/pulls/5" not in paths
    commits = next(r for r, _ in httpserver.log if r.path == "/repos/acme/api/commits")
    assert dict(commits.args) == {
        "sha": "main",
        "since": "2026-03-01T00:00:00Z",
        "until": "2026-03-08T00:00:00Z",
        "per_page": "100",
    }
    web = next(r for r, _ in httpserver.log if r.path == "/repos/acme/web/commits")
    assert web.args["sha"] == "trunk"
    for request, _ in httpserver.log:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Accept"] == "application/vnd.github+json"
        assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
        assert "If-None-Match" not in request.headers  # a cold cache sends no validator

    # The rerun revalidates: unchanged pages come back 304 and their cached bodies are reused.
    httpserver.clear_log()
    again = run_source(engine, connector, **kwargs)
    assert again.status == "ok", again.error
    statuses = {(r.path, r.args.get("page")): resp.status_code for r, resp in httpserver.log}
    assert statuses[(API_PULLS, None)] == 304
    assert statuses[("/repos/acme/api/pulls/101", None)] == 304
    assert _activity(engine) == EXPECTED_ACTIVITY
    assert _pulls(engine) == EXPECTED_PULLS
    connector.close()


def test_secondary_rate_limit_403_waits_retry_after_then_succeeds(httpserver):
    _serve(httpserver)
    waits: list[float] = []
    connector = _connector(httpserver, sleep=waits.append, TOKENWISE_HTTP_MAX_BACKOFF=60)
    batches = list(connector.fetch(date(2026, 3, 1), date(2026, 3, 8)))
    assert waits == [7.0]  # GitHub's Retry-After, not our own backoff
    web = [resp.status_code for r, resp in httpserver.log if r.path == WEB_PULLS]
    assert web == [403, 200]
    assert sorted(pr.number for pr in batches[0].pull_requests if pr.repo == "acme/web") == [6, 7]
    connector.close()


def test_304_reuses_the_cached_body(httpserver):
    _serve(httpserver)
    cache = EtagCache()
    first = list(_connector(httpserver, cache=cache).fetch(date(2026, 3, 1), date(2026, 3, 8)))
    assert len(cache) == 2  # the two responses that carried an ETag
    httpserver.clear_log()
    second = list(_connector(httpserver, cache=cache).fetch(date(2026, 3, 1), date(2026, 3, 8)))
    revalidated = [
        (r.path, r.headers.get("If-None-Match"), resp.status_code)
        for r, resp in httpserver.log
        if r.headers.get("If-None-Match")
    ]
    assert sorted(revalidated) == [
        (API_PULLS, '"api-pulls-1"', 304),
        ("/repos/acme/api/pulls/101", '"pr101-v1"', 304),
    ]
    assert first[0].pull_requests == second[0].pull_requests
    assert sorted(a.key() for a in first[0].activity) == sorted(a.key() for a in second[0].activity)
    pr101 = next(pr for pr in second[0].pull_requests if pr.number == 101)
    assert (pr101.additions, pr101.ai_rule) == (120, "co_author_trailer:claude")


def test_windows_split_by_week_and_reviews_are_fetched_once(httpserver):
    _serve(httpserver)
    connector = _connector(httpserver, cache=EtagCache())
    batches = list(connector.fetch(date(2026, 3, 1), date(2026, 3, 10)))
    assert [(b.window_start.day, b.window_end.day) for b in batches] == [(1, 8), (8, 10)]
    assert len(batches[0].pull_requests) == 6
    # erin's commit at exactly 2026-03-08T00:00Z belongs to the second week, nowhere else.
    assert [(a.day.day, a.actor, a.commits) for a in batches[1].activity] == [(8, "github:erin", 1)]
    assert batches[1].pull_requests == []
    reviews = [r.path for r, _ in httpserver.log if r.path.endswith("/reviews")]
    assert len(reviews) == len(set(reviews)) == 9
    for batch in batches:
        assert all(batch.window_start <= a.day < batch.window_end for a in batch.activity)


def test_invalid_json_fails_the_run_and_stores_nothing(engine, httpserver):
    httpserver.expect_request("/repos/acme/api/pulls/101").respond_with_data(
        "{not json", content_type="application/json"
    )
    _serve(httpserver)
    connector = _connector(httpserver)
    outcome = run_source(
        engine, connector, workspace_id="W", since=date(2026, 3, 1), until=date(2026, 3, 8), today=TODAY
    )
    assert outcome.status == "failed"
    assert outcome.error == "github_delivery: repos/acme/api/pulls/101: response is not valid JSON"
    assert TOKEN not in outcome.error
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ActivityDaily)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(PullRequest)).scalar() == 0


def test_missing_permission_is_a_clear_error(httpserver):
    httpserver.expect_request(API_PULLS).respond_with_data(
        _fixture("forbidden.json"), status=403, content_type="application/json"
    )
    _serve(httpserver)
    connector = _connector(httpserver, cache=EtagCache())
    with pytest.raises(SourceError) as error:
        list(connector.fetch(date(2026, 3, 1), date(2026, 3, 8)))
    message = str(error.value)
    assert message.startswith("github_delivery: repos/acme/api/pulls: HTTP 403: Resource not accessible")
    assert "'Pull requests: read'" in message and "repo + read:org" in message
    assert [resp.status_code for r, resp in httpserver.log if r.path == API_PULLS] == [403]  # not retried


def test_bad_shape_names_the_endpoint(httpserver):
    httpserver.expect_request(WEB_PULLS).respond_with_json({"message": "not a list"})
    _serve(httpserver)
    with pytest.raises(
        SourceError, match=r"repos/acme/web/pulls: unexpected response: expected a JSON array"
    ):
        list(_connector(httpserver, cache=EtagCache()).fetch(date(2026, 3, 1), date(2026, 3, 8)))


def test_allow_list_limits_repositories(httpserver):
    _serve(httpserver)
    connector = _connector(httpserver, cache=EtagCache(), GITHUB_DELIVERY_REPOS_ALLOW="acme/web")
    (batch,) = connector.fetch(date(2026, 3, 1), date(2026, 3, 8))
    assert {pr.repo for pr in batch.pull_requests} == {"acme/web"}
    assert not any(p.startswith("/repos/acme/api") for p in _paths(httpserver))


def test_from_settings_keys_fallbacks_and_accounts():
    assert from_settings(Settings()) == []
    (fallback,) = from_settings(Settings(GITHUB_COPILOT_TOKEN="ghp_copilot", GITHUB_COPILOT_ORG="acme"))
    assert (fallback.name, fallback.org, fallback.trailing_days) == ("github_delivery", "acme", 14)
    assert fallback.http.client.headers["Authorization"] == "Bearer ghp_copilot"
    (own,) = from_settings(
        Settings(
            GITHUB_COPILOT_TOKEN="ghp_copilot",
            GITHUB_COPILOT_ORG="acme",
            GITHUB_DELIVERY_TOKEN="ghp_delivery",
            GITHUB_DELIVERY_ORG="acme-labs",
        )
    )
    assert own.org == "acme-labs" and own.http.client.headers["Authorization"] == "Bearer ghp_delivery"
    main, extra = from_settings(
        Settings(
            GITHUB_DELIVERY_TOKEN="ghp_delivery",
            GITHUB_DELIVERY_ORG="acme",
            accounts=[SourceAccount(name="gh-eu", vendor="github_delivery", key="ghp_eu", org="acme-eu")],
        )
    )
    assert (extra.name, extra.org, extra.vendor) == ("gh-eu", "acme-eu", "github_delivery")
    for connector in (fallback, own, main, extra):
        connector.close()


def test_no_org_is_a_settings_error():
    (connector,) = from_settings(Settings(GITHUB_DELIVERY_TOKEN="ghp_delivery"))
    with pytest.raises(SourceError, match="set GITHUB_DELIVERY_ORG"):
        list(connector.fetch(date(2026, 3, 1), date(2026, 3, 2)))


def test_cli_sync_source_github_delivery(tmp_path, monkeypatch, httpserver):
    from bot.cli import app

    _serve(httpserver)
    for name, value in {
        "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "GITHUB_DELIVERY_TOKEN": TOKEN,
        "GITHUB_DELIVERY_ORG": "acme",
        "GITHUB_API_BASE_URL": httpserver.url_for("/"),
        "GITHUB_DELIVERY_REPOS_DENY": "infra-*",
        "TOKENWISE_HTTP_MAX_BACKOFF": "0.01",
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(
        app, ["sync", "--source", "github_delivery", "--since", "2026-03-01", "--until", "2026-03-08"]
    )
    assert result.exit_code == 0, result.output
    line = "github_delivery: ok, 2026-03-01 to 2026-03-07 (7 days): 0 usage rows, 16 activity rows"
    assert line in result.output
    assert TOKEN not in result.output
