"""Survival, review load and trailer detection end to end: the GitHub delivery source against a
loopback fake of the documented REST endpoints, stored on SQLite and PostgreSQL, read back by
``bot.services.value``.

Fixtures (tests/fixtures/github_delivery/value/) follow GitHub's documented shapes: "list pull
requests", "get a pull request", "list commits on a pull request", "compare two commits",
"list pull requests files", "list timeline events for an issue", "list reviews for a pull
request" and "list commits". Repository lab/app, squash merges throughout (the branch commits
carry no trailers):

  #1 ana  AI (Assisted-by in its 2nd commit)  drafted, ready May 2 10:00, merged 16:00, 2 rounds
  #2 ben  -                                    reverted by #4 ("Reverts lab/app#2")
  #3 ben  - fix(parser) touching #1's file     so #1 was followed by a fix
  #4 ana  - the revert                         survives
  #5 ana  AI (Made-with: Cursor, commit 251)   251 commits: read through compare, page 2
  #6 ben  -                                    reverted by a commit pushed straight to main
  #7 ana  AI (Entire-Checkpoint)               merged May 25: still within the 14 days
  #8 ben  - "Assisted-by: <a person>", "Made-with: love": not AI; pending
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from bot.db.models import PullRequest
from bot.services.value.merged_prs import Whose
from bot.services.value.review import review_load
from bot.services.value.survival import FIXED, PENDING, REVERTED, SURVIVED, survival_shares
from bot.sources.github_delivery import review_rounds
from bot.sources.github_delivery_parse import (
    parse_compare,
    parse_files,
    parse_pulls,
    parse_ready_times,
    parse_reviews,
)
from tests.factories import link_github_person as _link
from tests.support.files import fixture_path
from tests.support.github import run_delivery

TODAY = date(2026, 5, 29)
NOW = datetime(2026, 5, 29, tzinfo=UTC)
MAY = (datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 29, tzinfo=UTC))


def _json(httpserver, path: str, name: str, *, query=None, headers=None) -> None:
    body = fixture_path("github_delivery", "value", name).read_bytes()
    httpserver.expect_request(path, query_string=query).respond_with_data(
        body, content_type="application/json", headers=headers or {}
    )


def _serve(httpserver) -> None:
    app = "/repos/lab/app"
    _json(httpserver, "/orgs/lab/repos", "repos.json")
    _json(httpserver, f"{app}/pulls", "pulls.json")
    _json(httpserver, f"{app}/commits", "branch-commits.json")
    compare = f"{app}/compare/{'0' * 40}...{'f' * 40}"
    page2 = httpserver.url_for(compare) + "?per_page=100&page=2"
    _json(httpserver, compare, "compare-5-page2.json", query={"per_page": "100", "page": "2"})
    _json(
        httpserver,
        compare,
        "compare-5-page1.json",
        query={"per_page": "100"},
        headers={"Link": f'<{page2}>; rel="next"'},
    )
    for n in range(1, 9):
        _json(httpserver, f"{app}/pulls/{n}", f"pull-{n}.json")
        _json(httpserver, f"{app}/pulls/{n}/files", f"files-{n}.json")
        if n != 5:
            _json(httpserver, f"{app}/pulls/{n}/commits", f"commits-{n}.json")
        _json(
            httpserver, f"{app}/issues/{n}/timeline", "timeline-1.json" if n == 1 else "timeline-other.json"
        )
        _json(httpserver, f"{app}/pulls/{n}/reviews", "reviews-1.json" if n == 1 else "reviews-other.json")


def _sync(engine, httpserver):
    outcome = run_delivery(engine, httpserver, token="ghp_value_test", since=date(2026, 5, 1), today=TODAY)
    assert outcome.status == "ok", outcome.error


def _stored(engine) -> dict[int, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(select(PullRequest).order_by(PullRequest.number)).all()
    return {
        r.number: (r.ai_rule, r.is_fix, r.reverts, r.reverted_by, r.review_rounds, r.files, r.title[:12])
        for r in rows
    }


def test_survival_review_and_trailers_end_to_end_and_rerun(engine, httpserver):
    _serve(httpserver)
    ana = _link(engine, "ana", "ana@lab.test")
    ben = _link(engine, "ben", "ben@lab.test")
    _sync(engine, httpserver)

    stored = _stored(engine)
    assert stored[1][0] == "assisted_by:claude"  # found in the PR's 2nd commit, not the squash commit
    assert stored[5][0] == "made_with:cursor"  # commit 251, on the comparison's 2nd page
    assert stored[7][0] == "agent_checkpoint:entire"
    assert stored[8][0] == "" and stored[2][0] == ""  # a person in Assisted-by; "Made-with: love"
    assert stored[3][1] is True and not any(stored[n][1] for n in (1, 2, 4, 5, 6, 7, 8))
    assert stored[4][2] == f"#2 sha:{'2' * 40}"
    assert stored[6][3].startswith("commit:") and stored[2][3] == ""
    assert stored[1][4] == 2 and stored[2][4] == 1  # distinct reviewed commits, the author's own left out
    assert stored[3][5] == "src/parser.py\ntests/test_parser.py"
    paths = [r.path for r, _ in httpserver.log]
    assert "/repos/lab/app/pulls/5/commits" not in paths  # past 250: the comparison instead
    assert paths.count(f"/repos/lab/app/compare/{'0' * 40}...{'f' * 40}") == 2

    def read():
        with engine.connect() as conn:
            span = {"start": MAY[0], "end": MAY[1]}
            shares = survival_shares(conn, Whose("W"), **span, window_days=14, now=NOW)
            load = review_load(conn, Whose("W"), **span)
            mine = survival_shares(conn, Whose("W", [ana]), **span, window_days=14, now=NOW)
        return shares, load, mine

    shares, load, mine = read()
    statuses = {number: v.status for (_, number), v in shares.verdicts.items()}
    assert statuses == {
        1: FIXED,
        2: REVERTED,
        3: SURVIVED,
        4: SURVIVED,
        5: SURVIVED,
        6: REVERTED,
        7: PENDING,
        8: PENDING,
    }
    assert shares.verdicts[("lab/app", 1)].by == "#3"
    assert shares.verdicts[("lab/app", 2)].by == "#4"
    assert (shares.ai.survived, shares.ai.decided, shares.ai.pending) == (1, 2, 1)
    assert (shares.other.survived, shares.other.decided, shares.other.pending) == (2, 4, 1)
    assert shares.ai.people == {ana} and shares.other.people == {ana, ben}
    assert (mine.ai.decided, mine.other.decided) == (2, 1)  # ana's #1, #5 and #4
    # #1: ready May 2 10:00 (its last ready_for_review), merged 16:00: 6 h; #5 26 h, #7 24 h
    # (opened ready for review). Rounds: #1 2; #5 and #7 only had ana's own review: 0.
    assert (load.ai.prs, load.ai.median_minutes) == (3, 1440)
    assert load.ai.mean_rounds == (2 + 0 + 0) / 3
    assert (load.other.prs, load.other.mean_rounds) == (5, 4 / 5)  # ana approved ben's 4 PRs

    # A re-sync rewrites the same rows: nothing is counted twice.
    _sync(engine, httpserver)
    assert _stored(engine) == stored
    again, load_again, _ = read()
    assert (again.ai, again.other, again.verdicts) == (shares.ai, shares.other, shares.verdicts)
    assert load_again == load


def test_the_new_parsers_read_the_documented_shapes_and_refuse_others():
    timeline = json.loads(fixture_path("github_delivery", "value", "timeline-1.json").read_text())
    assert parse_ready_times(timeline) == (
        datetime(2026, 5, 1, 12, tzinfo=UTC),
        datetime(2026, 5, 2, 10, tzinfo=UTC),
    )
    assert parse_files([{"filename": "b.py", "previous_filename": "a.py"}, {"filename": "c.py"}]) == (
        "b.py",
        "a.py",
        "c.py",
    )
    page = json.loads(fixture_path("github_delivery", "value", "compare-5-page2.json").read_text())
    assert [c.message.splitlines()[0] for c in parse_compare(page)] == ["CLI step 251"]
    for parse, bad in (
        (parse_compare, []),
        (parse_files, {"files": []}),
        (parse_ready_times, {"event": "x"}),
    ):
        with pytest.raises(ValueError):
            parse(bad)


def test_a_malformed_comparison_fails_the_run_naming_the_endpoint(engine, httpserver):
    _serve(httpserver)
    compare = f"/repos/lab/app/compare/{'0' * 40}...{'f' * 40}"
    # One-shot handlers answer before the permanent ones: the comparison comes back as a list.
    httpserver.expect_oneshot_request(compare).respond_with_json([{"sha": "not a comparison"}])
    outcome = run_delivery(engine, httpserver, token="ghp_value_test", since=date(2026, 5, 1), today=TODAY)
    assert outcome.status == "failed"
    assert "compare" in outcome.error and "unexpected response: expected a comparison object" in outcome.error
    with engine.connect() as conn:
        stored = conn.execute(select(PullRequest.number)).scalars().all()
    # The weeks before stay stored; nothing of #5's window (May 8 on) is.
    assert sorted(stored) == [1, 2, 3, 4]


def test_review_rounds_count_distinct_reviewed_commits_of_others():
    pr = parse_pulls(json.loads(fixture_path("github_delivery", "value", "pulls.json").read_text()))[-1]
    reviews = parse_reviews(
        json.loads(fixture_path("github_delivery", "value", "reviews-1.json").read_text())
    )
    assert pr.number == 1 and review_rounds(pr, list(reviews)) == 2
    assert review_rounds(pr, [r for r in reviews if r.reviewer.login == "ana"]) == 0  # the author's own
    assert review_rounds(pr, []) == 0
