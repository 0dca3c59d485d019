"""GitHub Copilot: the per-user "Copilot usage metrics" daily reports (value signals and Copilot
CLI tokens) and the seat list (an estimated daily seat cost from the configured list prices).
See docs/sources/github_copilot.md. One concern (the Copilot connector: its two endpoints and
their parsing), kept whole though it is long.

Reports: ``GET /orgs/{org}/copilot/metrics/reports/users-1-day?day=YYYY-MM-DD`` returns only
signed, expiring ``download_links``; each is downloaded at once, without the GitHub token, and
parsed as NDJSON or a JSON array. The links are never stored or logged. A 204 means "no report
for that day (yet)": a 204 day followed by a day that has a report is an empty day; trailing 204
days are held back (not yielded) so the watermark stays on them and the next run asks again.

Seats: ``GET /orgs/{org}/copilot/billing/seats`` (Link-header pagination). GitHub sends no
prices, so each seat costs ``COPILOT_SEAT_PRICES[plan_type]`` per month, spread over the days of
that month (integer micro-USD, cumulative rounding so a full month sums to the exact price),
``cost_basis="estimated"``, ``kind="seat"``. Nothing else in Tokenwise bills Copilot seats, so
these rows count in org totals (``in_org_total=True``) and are never double counted. The seat
list holds today's seats only, so batches are not complete for seats (``complete_kinds``): a
seat stored for a day stays when a later run no longer sees it.

Metered usage beyond the seat (AI credits since June 2026; premium requests on legacy plans):
``GET /organizations/{org}/settings/billing/{ai_credit,premium_request}/usage?year&month&day``
answers line items per product, SKU and model, with no user and no day in them, so each day is
asked once for the org and then once per user active in that day's metrics report
(``&user=<login>``); ``netAmount`` (USD, what the org pays after the included allowance) becomes
a billed usage row per user and model, and what the users do not account for becomes
``github_copilot:unattributed``, so a day's stored dollars equal GitHub's org total. A 403/404
there (no billing access) leaves the seat, activity and CLI rows syncing, keeps the stored
billed rows, and fails the run with a clear error at its end.

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

from bot.domain.money import USD, Money, micros_to_usd, to_decimal, usd_to_micros
from bot.domain.records import ESTIMATED, SEAT, USAGE, ActivityRecord, Batch, IdentityHint, UsageRecord
from bot.settings import Settings, VendorAccount
from bot.sources.base import SourceError, split_window
from bot.sources.github_api import GitHubApi, actor_of, rate_limit_exhausted
from bot.sources.http import VendorHttp, error_summary
from bot.sources.values import count, optional_day, utc_moment

log = logging.getLogger(__name__)

VENDOR = "github_copilot"
SEAT_UNIT = "estimate:copilot-seat-list-price"
CLI_MODEL = "copilot-cli"
EXPIRED_STATUS = frozenset({403, 404, 410})
UNATTRIBUTED = "github_copilot:unattributed"  # not "github:": a GitHub login could be that word
#: The billing usage reports with Copilot's metered usage, in order of precedence: a line item
#: (product, SKU, model) that both report for the same user and day is counted once, the first.
BILLING_REPORTS = ("ai_credit", "premium_request")
NO_BILLING_ACCESS = frozenset({403, 404})
HINTS = {
    401: "the token was rejected (check GITHUB_COPILOT_TOKEN)",
    403: (
        "the token lacks access (needs read:org / manage_billing:copilot, or the fine-grained "
        "'View Organization Copilot Metrics' and 'Copilot Business' permissions)"
    ),
    404: "check GITHUB_COPILOT_ORG and that the org's 'Copilot usage metrics' policy is enabled",
}


class BillingUnavailable(SourceError):
    """The token or the org cannot read a billing usage report (403/404)."""

    def __init__(self, source: str, endpoint: str, message: str, status: int) -> None:
        super().__init__(source, endpoint, message)
        self.status = status


class CopilotApi(GitHubApi):
    """The GitHub client, with a billing report's 403/404 as ``BillingUnavailable``."""

    def fail(self, endpoint: str, response: httpx.Response) -> SourceError:
        status = response.status_code
        if (
            "/settings/billing/" in endpoint
            and status in NO_BILLING_ACCESS
            and not rate_limit_exhausted(response)
        ):
            return BillingUnavailable(
                self.source,
                endpoint,
                f"HTTP {status}: {error_summary(response)}; no access to Copilot's billing usage (needs an "
                "org owner or billing manager: fine-grained 'Administration' organization permission "
                "(read), and the org on GitHub's enhanced billing platform; GITHUB_COPILOT_BILLING=false "
                "if it has none); seats, activity and CLI tokens were stored, metered usage (AI credits) "
                "was not",
                status,
            )
        return super().fail(endpoint, response)


def net_usd(item: dict) -> Decimal:
    """What the org pays for one billing line item, in USD.

    ``netAmount`` (after the included allowance, ``discountAmount``) when present; a line with
    only ``grossAmount`` is gross minus its discount. A line with neither raises ValueError, so
    an unknown shape never becomes a silent $0.
    """
    net = item.get("netAmount")
    if net is not None:
        return to_decimal(net)
    gross = item.get("grossAmount")
    if gross is None:
        raise ValueError("usage item without netAmount or grossAmount")
    discount = item.get("discountAmount")
    return to_decimal(gross) - (to_decimal(discount) if discount is not None else Decimal(0))


def line_key(item: dict) -> tuple[str, str, str]:
    """A billing line item's identity: (product, SKU, model), as reported."""
    product, sku, model = (str(item.get(name) or "").strip() for name in ("product", "sku", "model"))
    return product, sku, model


def net_by_model(reports: dict[str, dict[tuple[str, str, str], Decimal]]) -> dict[str, Decimal]:
    """Net USD per model over the billing reports; a line item that two reports both carry counts
    once (``BILLING_REPORTS`` order). A line without a model is named after its SKU."""
    seen: set[tuple[str, str, str]] = set()
    totals: dict[str, Decimal] = {}
    for report in BILLING_REPORTS:
        for key, net in reports.get(report, {}).items():
            if key in seen:
                continue
            seen.add(key)
            model = key[2] or key[1] or key[0] or "unknown"
            totals[model] = totals.get(model, Decimal(0)) + net
    return totals


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
        self, account: VendorAccount, settings: Settings, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        name, token, base_url = account.name, account.key, account.base_url
        self.name = name
        self.org = (account.org or "").strip() or None
        self.lag = timedelta(days=1)  # the report for a day is published the next day
        self.trailing_days = 3
        self.max_window_days = 1  # one report (one day) per request
        self.api = CopilotApi(
            source=name, token=token, base_url=base_url, settings=settings, hints=HINTS, transport=transport
        )
        self.http = self.api.http
        # Signed download links carry their own authorisation: the GitHub token must never go there.
        self.downloads = VendorHttp.configured(
            settings,
            source=name,
            base_url=base_url,
            transport=transport,
        )
        self.prices = {
            plan.lower(): Decimal(price) for plan, price in settings.copilot_seat_price_usd.items()
        }
        self.billing = settings.github_copilot_billing

    def close(self) -> None:
        self.api.close()
        self.downloads.close()

    # -- helpers -------------------------------------------------------------------------
    def _org_path(self, suffix: str, root: str = "orgs") -> str:
        """``{root}/{org}/{suffix}``: the billing reports live under ``organizations/``."""
        if not self.org:
            raise SourceError(
                self.name,
                "settings",
                "no GitHub organisation: set GITHUB_COPILOT_ORG (or `org` in the [[accounts]] entry)",
            )
        return f"{root}/{quote(self.org, safe='')}/{suffix}"

    # -- usage metrics reports -----------------------------------------------------------
    def report(self, day: date) -> list[dict] | None:
        """Every user record of ``day``'s report, or None when GitHub has no report (HTTP 204)."""
        endpoint = self._org_path("copilot/metrics/reports/users-1-day")
        page = self.api.get(endpoint, {"day": day.isoformat()}, endpoint, empty=(204,))
        if page is None:
            return None
        body = page.body
        links = body.get("download_links") if isinstance(body, dict) else None
        if not isinstance(links, list) or not all(isinstance(link, str) for link in links):
            raise SourceError(self.name, endpoint, "unexpected response shape (no download_links list)")
        try:
            report_day = optional_day(body.get("report_day"))
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
                record_day = optional_day(record.get("day"))
                if record_day is not None and record_day != day:
                    raise ValueError(f"record for {record_day} in the report for {day}")
                activity.append(
                    ActivityRecord(
                        day=day,
                        actor=actor,
                        suggestions_shown=count(
                            record.get("code_generation_activity_count"), "code_generation_activity_count"
                        ),
                        acceptances=count(
                            record.get("code_acceptance_activity_count"), "code_acceptance_activity_count"
                        ),
                        lines_suggested=count(
                            record.get("loc_suggested_to_add_sum"), "loc_suggested_to_add_sum"
                        ),
                        lines_accepted=count(record.get("loc_added_sum"), "loc_added_sum"),
                        lines_removed=count(record.get("loc_deleted_sum"), "loc_deleted_sum"),
                        requests=count(
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
            prompt += count(tokens.get("prompt_tokens_sum"), "prompt_tokens_sum")
            output += count(tokens.get("output_tokens_sum"), "output_tokens_sum")
            requests += count(part.get("request_count"), "request_count")
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
    def _pages(self, endpoint: str, params: dict[str, Any], field: str) -> Iterator[tuple[Any, list[dict]]]:
        """Each page's body and its list ``field`` (all pages, following the Link header)."""
        for body in self.api.pages(endpoint, params, endpoint):
            page = body.get(field) if isinstance(body, dict) else None
            if not isinstance(page, list) or not all(isinstance(entry, dict) for entry in page):
                raise SourceError(self.name, endpoint, f"unexpected response shape (no {field} list)")
            yield body, page

    def seats(self) -> list[dict]:
        """Every Copilot seat of the org (all pages, following the Link header)."""
        endpoint = self._org_path("copilot/billing/seats")
        return [seat for _, page in self._pages(endpoint, {"per_page": 100}, "seats") for seat in page]

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
                created = optional_day(seat.get("created_at"))
                cancelled = optional_day(seat.get("pending_cancellation_date"))
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
                last = utc_moment(seat.get("last_activity_at"))
            except (ValueError, TypeError):
                raise SourceError(self.name, endpoint, f"seat of {login}: bad last_activity_at") from None
            if last is None or last < cutoff:
                idle.add(login.strip().lower())
        return sorted(idle)

    # -- metered usage (billing usage reports) -------------------------------------------
    def billing_lines(
        self, report: str, day: date, user: str | None = None
    ) -> dict[tuple[str, str, str], Decimal]:
        """Net USD per line item (product, SKU, model) of one billing report for ``day``: the
        org's, or one user's. Raises BillingUnavailable on 403/404."""
        endpoint = self._org_path(f"settings/billing/{report}/usage", root="organizations")
        params: dict[str, Any] = {"year": day.year, "month": day.month, "day": day.day}
        if user:
            params["user"] = user
        lines: dict[tuple[str, str, str], Decimal] = {}
        for body, items in self._pages(endpoint, params, "usageItems"):
            self._check_period(endpoint, body, day, user)
            for item in items:
                try:
                    net = net_usd(item)
                except (ValueError, TypeError) as error:
                    raise SourceError(self.name, endpoint, f"bad usage item: {error}") from None
                key = line_key(item)
                lines[key] = lines.get(key, Decimal(0)) + net
        return lines

    def _check_period(self, endpoint: str, body: dict, day: date, user: str | None) -> None:
        """The answer is for the asked day (and user): a month's figures on one day would be wrong.
        ``timePeriod.day`` may be absent (the documented example has only ``year``)."""
        period = body.get("timePeriod")
        period = period if isinstance(period, dict) else {}
        for name, want in (("year", day.year), ("month", day.month), ("day", day.day)):
            got = period.get(name)
            if got is not None and str(got).strip().lstrip("0") != str(want):
                raise SourceError(self.name, endpoint, f"asked for {day}, got timePeriod {period}")
        answered = body.get("user")
        if user and isinstance(answered, str) and answered.strip().lower() != user.strip().lower():
            raise SourceError(self.name, endpoint, "the report is for another user than asked")

    def billed_usage(self, day: date, logins: list[str]) -> list[UsageRecord]:
        """``day``'s metered usage: one billed row per (user, model) with a non-zero net amount,
        and what the users do not account for as ``github_copilot:unattributed``.

        Per-user reports are asked only when the org's day has net usage; a 404 on a later report
        (after the first answered) means the org has none of it. Should the users' net
        for a model add up to more than the org's (an allowance pooled at org level), those rows
        are dropped and the org's figure is stored unattributed: the bill stays exact.
        """
        org: dict[str, dict[tuple[str, str, str], Decimal]] = {}
        for report in BILLING_REPORTS:
            try:
                org[report] = self.billing_lines(report, day)
            except BillingUnavailable as error:
                if not org or error.status != 404:
                    raise
                # Billing answered the first report: this one (legacy premium requests) is gone.
                log.info("%s: no %s usage report (404) for %s", self.name, report, day)
                org[report] = {}
        reports = [report for report in BILLING_REPORTS if any(org[report].values())]
        if not reports:
            return []
        per_user: dict[str, dict[str, Decimal]] = {}
        for login in logins:
            try:
                lines = {report: self.billing_lines(report, day, login) for report in reports}
            except BillingUnavailable:  # the org's report answered: this login is unknown to billing
                log.warning(
                    "%s: no billing report for user %s on %s; left unattributed", self.name, login, day
                )
                continue
            per_user[login] = {model: net for model, net in net_by_model(lines).items() if net}
        org_totals = net_by_model(org)
        beyond = {model for nets in per_user.values() for model in nets} - org_totals.keys()
        if beyond:
            log.warning(
                "%s: users' Copilot usage of %s on %s is not in the org's; not stored",
                self.name,
                sorted(beyond),
                day,
            )
        records: list[UsageRecord] = []
        for model, total in org_totals.items():
            users = [
                (login, Money.from_usd(nets[model])) for login, nets in per_user.items() if model in nets
            ]
            rest = usd_to_micros(total) - sum(cost.micros for _, cost in users)
            if rest < 0:
                log.warning(
                    "%s: users' Copilot usage of %r on %s exceeds the org's; stored unattributed",
                    self.name,
                    model,
                    day,
                )
                users, rest = [], usd_to_micros(total)
            records.extend(
                UsageRecord(day=day, actor=actor_of(login), model=model, cost=cost) for login, cost in users
            )
            if rest:
                raw = total - sum((per_user[login][model] for login, _ in users), Decimal(0))
                records.append(
                    UsageRecord(day=day, actor=UNATTRIBUTED, model=model, cost=Money(rest, str(raw), USD))
                )
        return records

    @staticmethod
    def _metered_users(records: list[dict]) -> list[str]:
        """The day's report users who may have metered usage: all but those whose record says
        ``ai_credits_used: 0`` (newer reports)."""
        logins: dict[str, str] = {}
        for record in records:
            login = record.get("user_login")
            used = record.get("ai_credits_used")
            if not isinstance(login, str) or not login.strip():
                continue
            try:
                if used is not None and to_decimal(used) == 0:
                    continue
            except (ValueError, TypeError):
                pass  # not a number: ask the billing report
            logins.setdefault(login.strip().lower(), login.strip())
        return sorted(logins.values(), key=str.lower)

    # -- fetch ---------------------------------------------------------------------------
    def fetch(self, window_start: date, window_end: date) -> Iterator[Batch]:
        endpoint = self._org_path("copilot/metrics/reports/users-1-day")
        seats: list[dict] | None = None
        pending: list[date] = []  # 204 days: empty if a later day has a report, else held back
        first = True
        no_billing: BillingUnavailable | None = None  # once denied, not asked again this run
        for day, _ in split_window(window_start, window_end, self.max_window_days):
            records = self.report(day)
            if records is None:
                pending.append(day)
                continue
            if seats is None:
                seats = self.seats()
            for batch_day, batch_records in [*((empty, []) for empty in pending), (day, records)]:
                batch = self._batch(batch_day, batch_records, seats, endpoint, first)
                first = False
                if not self.billing:  # metered usage switched off: the usage rows are all there is
                    batch.complete_kinds = frozenset({USAGE})
                elif no_billing is None:
                    try:
                        batch.usage.extend(self.billed_usage(batch_day, self._metered_users(batch_records)))
                        batch.complete_kinds = frozenset({USAGE})
                    except BillingUnavailable as error:
                        log.warning("%s", error)
                        no_billing = error
                yield batch
            pending = []
        if pending:
            log.info("%s: no Copilot report yet from %s; will ask again next run", self.name, pending[0])
        if no_billing is not None:
            raise no_billing  # after the batches: the seat and activity rows are stored

    def _batch(self, day: date, records: list[dict], seats: list[dict], endpoint: str, first: bool) -> Batch:
        """The day's activity, CLI tokens and seat costs. Complete for no usage kind until the
        metered usage is added: seats seen earlier stay, and so do billed rows if billing fails."""
        activity, usage, hints = self._day_records(day, records, endpoint)
        batch = Batch(
            day,
            day + timedelta(days=1),
            usage=usage,
            activity=activity,
            identities=hints,
            complete_kinds=frozenset(),
        )
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
    return [GitHubCopilotConnector(account, settings) for account in accounts]
