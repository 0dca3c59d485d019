"""manifest.yml declares exactly what the code registers: commands, events, interactivity."""

from __future__ import annotations

from pathlib import Path

import yaml
from slack_bolt.async_app import AsyncApp

from bot.db.engine import make_engine
from bot.services.runtime import Runtime
from bot.settings import Settings
from bot.slack.app import build_app

ROOT = Path(__file__).resolve().parent.parent
# Registered only when OAuth (multi-workspace) is configured.
OAUTH_ONLY_EVENTS = {"app_uninstalled", "tokens_revoked"}


def _registered(monkeypatch, sqlite_url) -> dict[str, set]:
    seen: dict[str, set] = {"command": set(), "event": set(), "action": set(), "view": set()}
    for kind in seen:
        original = getattr(AsyncApp, kind)

        def spy(self, name, *args, _kind=kind, _original=original, **kwargs):
            seen[_kind].add(name if isinstance(name, str) else repr(name))
            return _original(self, name, *args, **kwargs)

        monkeypatch.setattr(AsyncApp, kind, spy)
    settings = Settings(SLACK_BOT_TOKEN="xoxb-x", SLACK_SIGNING_SECRET="s")
    build_app(Runtime(settings=settings, engine=make_engine(sqlite_url)))
    return seen


def test_manifest_matches_registered_listeners(monkeypatch, sqlite_url):
    seen = _registered(monkeypatch, sqlite_url)
    for name in ("manifest.yml", "manifest.dev.yml"):
        manifest = yaml.safe_load((ROOT / name).read_text())
        commands = {c["command"] for c in manifest["features"]["slash_commands"]}
        events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
        assert seen["command"] == commands, name
        assert seen["event"] <= events, f"{name} lacks {seen['event'] - events}"
        assert events - seen["event"] <= OAUTH_ONLY_EVENTS, f"{name} declares unused {events - seen['event']}"
        if seen["action"] or seen["view"]:
            assert manifest["settings"]["interactivity"]["is_enabled"] is True
        scopes = set(manifest["oauth_config"]["scopes"]["bot"])
        assert {"commands", "chat:write", "users:read", "users:read.email"} <= scopes


def test_http_manifest_points_every_url_at_slack_events():
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is False
    urls = [c["url"] for c in manifest["features"]["slash_commands"]]
    urls += [settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"]]
    assert all(url.endswith("/slack/events") for url in urls)
    dev = yaml.safe_load((ROOT / "manifest.dev.yml").read_text())
    assert dev["settings"]["socket_mode_enabled"] is True
