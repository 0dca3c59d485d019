"""GitHub Copilot: the per-user "Copilot usage metrics" daily reports (value signals and Copilot
CLI tokens) and the seat list (an estimated daily seat cost from the configured list prices).
See docs/sources/github_copilot.md.

Reports: ``GET /orgs/{org}/copilot/metrics/reports/users-1-day?day=YYYY-MM-DD`` returns only
signed, expiring ``download_links``; each is downloaded at once, without the GitHub token, and
parsed as NDJSON or a JSON array. The links are never stored or logged. A 204 means "no report
for that day (yet)": a 204 day followed by a day that has a report is an empty day; trailing 204
days are held back (not yielded) so the watermark stays on them and the next run asks again.

Seats: ``GET /orgs/{org}/copilot/billing/seats`` (Link-header pagination). GitHub sends no
prices, so each seat costs ``COPILOT_SEAT_PRICES[plan_type]`` per month, spread over the days of
that month (integer micro-USD, cumulative rounding so a full month sums to the exact price),
``cost_basis="estimated"``, ``kind="seat"``. Nothing else in Tokenwise bills Copilot seats, so
these rows count in org totals (``in_org_total=True``) and are never double counted.

Actors are ``github:<login lower-case>``; GitHub gives no email, so people are linked by an
admin (``/tokens link github <login> @user``) or a CSV import.
"""

from __future__ import annotations

import calendar
import gzip
import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from bot.money import Money, micros_to_usd, usd_to_micros
from bot.settings import Settings
from bot.sources.base import (
    ESTIMATED,
    SEAT,
    ActivityRecord,
    Batch,
    IdentityHint,
    SourceError,
    UsageRecord,
    split_window,
)
from bot.sources.http import VendorHttp, decode_json, error_summary

log = logging.getLogger(__name__)

VENDOR = "github_copilot"
API_VERSION = "2022-11-28"
SEAT_UNIT = "estimate:copilot-seat-list-price"
CLI_MODEL = "copilot-cli"
MAX_PAGES = 10_000  # loop guard for the seat list
EXPIRED_STATUS = frozenset({403, 404, 410})


def actor_of(login: str) -> str:
    return f"github:{login.strip().lower()}"


def _count(value: Any, field: str) -> int:
    """A non-negative count from a report (int, integral Decimal or digit string); None is 0."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"{field} is not a number")
    if isinstance(value, int):
        return value
    try:
        number = Decimal(value) if isinstance(value, str | Decimal) else None
    except ArithmeticError:
        number = None
    if number is None or not number.is_finite() or number != number.to_integral_value():
        raise ValueError(f"{field} is not a whole number: {value!r}")
    return int(number)


def _date(value: Any) -> date | None:
    """``YYYY-MM-DD`` or an ISO timestamp (converted to its UTC day); None when absent."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()


def _moment(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_report(content: bytes) -> list[dict]:
    """The records of one downloaded report file: NDJSON, a JSON array or one JSON object.

    Raises ValueError when the file is neither (the caller turns it into a SourceError).
    """
    if content[:2] == b"\x1f\x8b":  # gzip, in case the blob store does not set Content-Encoding
        content = gzip.decompress(content)
    text = content.decode("utf-8-sig").strip()
    if not text:
        return []
    records: Any
    if text.startswith("["):
        records = json.loads(text, parse_float=Decimal)
        if not isinstance(records, list):
            raise ValueError("not a JSON array")
    else:
        try:
            records = [json.loads(text, parse_float=Decimal)]
        except json.JSONDecodeError:  # several objects: NDJSON, one per line
            records = [json.loads(line, parse_float=Decimal) for line in text.splitlines() if line.strip()]
    for record in records:
        if not isinstance(record, dict):
            raise ValueError("a record is not a JSON object")
    return records


def daily_seat_micros(monthly_usd: Decimal, day: date) -> int:
    """The seat price for ``day``: the month's price spread over its days in integer micro-USD.

    Cumulative rounding (floor of the running total) makes the days of a full month add up to
    exactly the monthly price, e.g. $19 in a 30-day month is 633,333 or 633,334 micros a day.
    """
    days = calendar.monthrange(day.year, day.month)[1]
    month_micros = usd_to_micros(monthly_usd)
    return (month_micros * day.day) // days - (month_micros * (day.day - 1)) // days


class GitHubCopilotConnector:
    vendor: ClassVar[str] = VENDOR

    def __init__(
        self,
        *,
        name: str,
        token: str,
        org: str | None,
        base_url: str,
        settings: Settings,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.org = (org or "").strip() or None
        self.lag = timedelta(days=1)  # the report for a day is published the next day
        self.trailing_days = 3
        self.max_window_days = 1  # one report (one day) per request
        common = {
            "source": name,
            "base_url": base_url,
            "timeout": settings.http_timeout_seconds,
            "max_retries": settings.http_max_retries,
            "max_backoff": settings.http_max_backoff_seconds,
            "transport": transport,
        }
        self.http = VendorHttp(
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
            **common,
        )
        # Signed download links carry their own authorisation: the GitHub token must never go there.
        self.downloads = VendorHttp(**common)
        self.prices = {
            plan.lower(): Decimal(price) for plan, price in settings.copilot_seat_price_usd.items()
        }

    def close(self) -> None:
        self.http.close()
        self.downloads.close()

    # -- helpers -------------------------------------------------------------------------
    def _org_path(self, suffix: str) -> str:
        if not self.org:
            raise SourceError(
                self.name,
                "settings",
                "no GitHub organisation: set GITHUB_COPILOT_ORG (or `org` in the [[accounts]] entry)",
            )
        return f"orgs/{quote(self.org, safe='')}/{suffix}"

    def _fail(self, endpoint: str, response: httpx.Response) -> SourceError:
        status = response.status_code
        summary = error_summary(response)
        if status == 401:
            hint = "the token was rejected (check GITHUB_COPILOT_TOKEN)"
        elif status in (403, 429) and response.headers.get("x-ratelimit-remaining") == "0":
            reset = response.headers.get("x-ratelimit-reset")
            hint = f"GitHub API rate limit exhausted (resets at epoch {reset})"
        elif status == 403:
            hint = (
                "the token lacks access (needs read:org / manage_billing:copilot, or the fine-grained "
                "'View Organization Copilot Metrics' and 'Copilot Business' permissions)"
            )
        elif status == 404:
            hint = "check GITHUB_COPILOT_ORG and that the org's 'Copilot usage metrics' policy is enabled"
        else:
            hint = ""
        return SourceError(self.name, endpoint, f"HTTP {status}: {summary}" + (f"; {hint}" if hint else ""))

    # -- usage metrics reports -----------------------------------------------------------
    def report(self, day: date) -> list[dict] | None:
        """Every user record of ``day``'s report, or None when GitHub has no report (HTTP 204)."""
        endpoint = self._org_path("copilot/metrics/reports/users-1-day")
        response = self.http.request("GET", endpoint, params={"day": day.isoformat()}, endpoint=endpoint)
        if response.status_code == 204:
            return None
        if response.status_code != 200:
            raise self._fail(endpoint, response)
        body = decode_json(response, self.name, endpoint)
        links = body.get("download_links") if isinstance(body, dict) else None
        if not isinstance(links, list) or not all(isinstance(link, str) for link in links):
            raise SourceError(self.name, endpoint, "unexpected response shape (no download_links list)")
        try:
            report_day = _date(body.get("report_day"))
        except ValueError:
            raise SourceError(self.name, endpoint, "report_day is not a date") from None
        if report_day is not None and report_day != day:
            raise SourceError(self.name, endpoint, f"asked for {day}, got the report for {report_day}")
        records: list[dict] = []
        for link in links:  # download at once: the signed links expire
            records.extend(self._download(endpoint, link))
        return records

    def _download(self, report_endpoint: str, link: str) -> list[dict]:
        endpoint = f"{report_endpoint} (download)"  # never the signed URL itself
        if not link.startswith(("https://", "http://")):
            raise SourceError(self.name, endpoint, "download link is not an absolute http(s) URL")
        response = self.downloads.request("GET", link, endpoint=endpoint, follow_redirects=True)
        if response.status_code in EXPIRED_STATUS:
            raise SourceError(
                self.name,
                endpoint,
                f"HTTP {response.status_code}: download link expired; will retry next run",
            )
        if response.status_code != 200:
            raise SourceError(self.name, endpoint, f"HTTP {response.status_code} downloading the report")
        try:
            return parse_report(response.content)
        except (ValueError, UnicodeDecodeError, OSError, EOFError):
            raise SourceError(self.name, endpoint, "report file is not valid NDJSON or JSON") from None

    def _day_records(
        self, day: date, records: list[dict], endpoint: str
    ) -> tuple[list[ActivityRecord], list[UsageRecord], list[IdentityHint]]:
        activity: list[ActivityRecord] = []
        usage: list[UsageRecord] = []
        hints: list[IdentityHint] = []
        skipped = 0
        for record in records:
            login = record.get("user_login")
            if not isinstance(login, str) or not login.strip():
                skipped += 1
                continue
            actor = actor_of(login)
            try:
                record_day = _date(record.get("day"))
                if record_day is not None and record_day != day:
                    raise ValueError(f"record for {record_day} in the report for {day}")
                activity.append(
                    ActivityRecord(
                        day=day,
                        actor=actor,
                        suggestions_shown=_count(
                            record.get("code_generation_activity_count"), "code_generation_activity_count"
                        ),
                        acceptances=_count(
                            record.get("code_acceptance_activity_count"), "code_acceptance_activity_count"
                        ),
                        lines_suggested=_count(
                            record.get("loc_suggested_to_add_sum"), "loc_suggested_to_add_sum"
                        ),
                        lines_accepted=_count(record.get("loc_added_sum"), "loc_added_sum"),
                        lines_removed=_count(record.get("loc_deleted_sum"), "loc_deleted_sum"),
                        requests=_count(
                            record.get("user_initiated_interaction_count"), "user_initiated_interaction_count"
                        ),
                    )
                )
                cli = self._cli_usage(day, actor, record.get("totals_by_cli"))
            except (ValueError, TypeError, AttributeError) as error:
                raise SourceError(self.name, f"{endpoint} (download)", f"bad record: {error}") from None
            if cli is not None:
                usage.append(cli)
            hints.append(IdentityHint(actor, None, login.strip()))
        if skipped:
            log.warning("%s: %d report records for %s without user_login skipped", self.name, skipped, day)
        return activity, usage, hints

    @staticmethod
    def _cli_usage(day: date, actor: str, totals: Any) -> UsageRecord | None:
        """Copilot CLI tokens (``totals_by_cli.token_usage``): covered by the seat, so zero dollars."""
        parts = totals if isinstance(totals, list) else [totals] if isinstance(totals, dict) else []
        prompt = output = requests = 0
        for part in parts:
            if not isinstance(part, dict):
                continue
            tokens = part.get("token_usage") or {}
            prompt += _count(tokens.get("prompt_tokens_sum"), "prompt_tokens_sum")
            output += _count(tokens.get("output_tokens_sum"), "output_tokens_sum")
            requests += _count(part.get("request_count"), "request_count")
        if not (prompt or output or requests):
            return None
        return UsageRecord(
            day=day,
            actor=actor,
            model=CLI_MODEL,
            input_tokens=prompt,
            output_tokens=output,
            requests=requests,
        )

    # -- seats ---------------------------------------------------------------------------
    def seats(self) -> list[dict]:
        """Every Copilot seat of the org (all pages, following the Link header)."""
        endpoint = self._org_path("copilot/billing/seats")
        base = self.http.client.base_url
        url: str = endpoint
        params: dict[str, Any] | None = {"per_page": 100}
        seen: set[str] = set()
        found: list[dict] = []
        for _ in range(MAX_PAGES):
            response = self.http.request("GET", url, params=params, endpoint=endpoint)
            if response.status_code != 200:
                raise self._fail(endpoint, response)
            body = decode_json(response, self.name, endpoint)
            page = body.get("seats") if isinstance(body, dict) else None
            if not isinstance(page, list) or not all(isinstance(seat, dict) for seat in page):
                raise SourceError(self.name, endpoint, "unexpected response shape (no seats list)")
            found.extend(page)
            next_url = response.links.get("next", {}).get("url")
            if not next_url:
                return found
            target = httpx.URL(next_url)
            if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
                raise SourceError(self.name, endpoint, "Link rel=next points to another host")
            if next_url in seen:
                raise SourceError(self.name, endpoint, "Link rel=next repeats a page")
            seen.add(next_url)
            url, params = next_url, None
        raise SourceError(self.name, endpoint, f"more than {MAX_PAGES} pages")

    def _price(self, plan: str) -> Decimal:
        price = self.prices.get(plan, self.prices.get("unknown"))
        if price is None:
            raise SourceError(
                self.name, "settings", f"no price for Copilot plan {plan!r}: add it to COPILOT_SEAT_PRICES"
            )
        return price

    def seat_costs(self, day: date, seats: list[dict]) -> list[UsageRecord]:
        """One estimated seat-cost record per seat that was assigned on ``day``."""
        endpoint = self._org_path("copilot/billing/seats")
        records = []
        for seat in seats:
            login = (seat.get("assignee") or {}).get("login")
            if not isinstance(login, str) or not login.strip():
                continue
            try:
                created = _date(seat.get("created_at"))
                cancelled = _date(seat.get("pending_cancellation_date"))
            except (ValueError, TypeError):
                raise SourceError(self.name, endpoint, f"seat of {login}: bad date") from None
            if created is None:
                raise SourceError(self.name, endpoint, f"seat of {login} has no created_at")
            if day < created or (cancelled is not None and day > cancelled):
                continue
            plan = str(seat.get("plan_type") or "unknown").strip().lower()
            micros = daily_seat_micros(self._price(plan), day)
            records.append(
                UsageRecord(
                    day=day,
                    actor=actor_of(login),
                    model=f"copilot-{plan}",
                    cost=Money(micros, str(micros_to_usd(micros)), SEAT_UNIT),
                    cost_basis=ESTIMATED,
                    kind=SEAT,
                )
            )
        return records

    def idle_seats(self, days: int = 30, *, now: datetime | None = None) -> list[str]:
        """Logins (lower-case, sorted) whose seat saw no activity in the last ``days`` days, or never."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
        endpoint = self._org_path("copilot/billing/seats")
        idle = set()
        for seat in self.seats():
            login = (seat.get("assignee") or {}).get("login")
            if not isinstance(login, str) or not login.strip():
                continue
            try:
                last = _moment(seat.get("last_activity_at"))
            except (ValueError, TypeError):
                raise SourceError(self.name, endpoint, f"seat of {login}: bad last_activity_at") from None
            if last is None or last < cutoff:
                idle.add(login.strip().lower())
        return sorted(idle)

    # -- fetch ---------------------------------------------------------------------------
    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        endpoint = self._org_path("copilot/metrics/reports/users-1-day")
        seats: list[dict] | None = None
        pending: list[date] = []  # 204 days: empty if a later day has a report, else held back
        first = True
        for day, _ in split_window(window_start, window_end, self.max_window_days):
            records = self.report(day)
            if records is None:
                pending.append(day)
                continue
            if seats is None:
                seats = self.seats()
            for empty_day in pending:
                yield self._batch(empty_day, [], seats, endpoint, first)
                first = False
            pending = []
            yield self._batch(day, records, seats, endpoint, first)
            first = False
        if pending:
            log.info("%s: no Copilot report yet from %s; will ask again next run", self.name, pending[0])

    def _batch(self, day: date, records: list[dict], seats: list[dict], endpoint: str, first: bool) -> Batch:
        activity, usage, hints = self._day_records(day, records, endpoint)
        batch = Batch(day, day + timedelta(days=1), usage=usage, activity=activity, identities=hints)
        batch.usage.extend(self.seat_costs(day, seats))
        if first:
            known = {hint.actor for hint in hints}
            for seat in seats:
                login = (seat.get("assignee") or {}).get("login")
                if isinstance(login, str) and login.strip() and actor_of(login) not in known:
                    known.add(actor_of(login))
                    batch.identities.append(IdentityHint(actor_of(login), None, login.strip()))
        return batch


def from_settings(settings: Settings) -> list[GitHubCopilotConnector]:
    accounts = settings.vendor_accounts(
        VENDOR,
        key=settings.github_copilot_token,
        base_url=settings.github_api_base_url,
        org=settings.github_copilot_org,
    )
    return [
        GitHubCopilotConnector(
            name=account.name,
            token=account.key,
            org=account.org,
            base_url=account.base_url,
            settings=settings,
        )
        for account in accounts
    ]
