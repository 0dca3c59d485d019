"""GitHub's public user profile, used to verify that a person claiming a GitHub login owns it.

``GET /users/{username}`` ("Get a user", https://docs.github.com/en/rest/users/users#get-a-user)
returns the profile's ``email``: the address the user chose to make public, ``null`` when they
made none public, and visible only to authenticated requests. So the request carries the
configured GitHub token (``GITHUB_COPILOT_TOKEN``, else ``GITHUB_DELIVERY_TOKEN``); without one
no email is seen and every claim waits for an admin. Same client (``bot.sources.github_api``), headers
and retries as the GitHub connectors (see docs/sources/github_copilot.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from bot.settings import Settings
from bot.sources.base import SourceError
from bot.sources.github_api import GitHubApi

SOURCE = "github"
# GitHub logins: letters, digits and single hyphens, at most 39 characters.
LOGIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,37}[a-z0-9])?$", re.IGNORECASE)


@dataclass(frozen=True)
class GitHubUser:
    login: str
    email: str | None  # the public email, lower-case; None when GitHub shows none


def token(settings: Settings) -> str | None:
    secret = settings.github_copilot_token or settings.github_delivery_token
    return secret.get_secret_value() if secret else None


def get_user(
    settings: Settings, login: str, *, transport: httpx.BaseTransport | None = None
) -> GitHubUser | None:
    """The user's public profile, or None when GitHub has no such login. Raises SourceError
    when GitHub cannot be asked (network, rate limit, bad token)."""
    if not LOGIN.match(login):
        return None
    api = GitHubApi(
        source=SOURCE,
        token=token(settings),
        base_url=settings.github_api_base_url,
        settings=settings,
        transport=transport,
    )
    try:
        page = api.get(f"users/{quote(login, safe='')}", None, "users/{username}", empty=(404,))
    finally:
        api.close()
    if page is None:
        return None
    body = page.body
    if not isinstance(body, dict) or not isinstance(body.get("login"), str):
        raise SourceError(SOURCE, "users/{username}", "unexpected response shape (no login)")
    email = body.get("email")
    return GitHubUser(
        body["login"], email.strip().lower() if isinstance(email, str) and email.strip() else None
    )
