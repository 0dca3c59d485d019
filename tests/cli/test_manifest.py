"""manifest.yml declares exactly what the code registers: commands, events, interactivity."""

from __future__ import annotations

from pathlib import Path

import yaml
from slack_bolt.async_app import AsyncApp

from bot.db.engine import make_engine
from bot.services.runtime import Runtime
from bot.settings import Settings
from bot.slack.app import build_app
from bot.slack.blocks.format import VENDOR_NAMES
from bot.sources.registry import SOURCE_MODULES

ROOT = Path(__file__).resolve().parents[2]
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


# -- scopes: what the manifests request is exactly what the code's Web API calls need ---------------

#: Bot scopes each Web API method needs as Tokenwise calls it, from its page on
#: docs.slack.dev/reference/methods ("Required scopes", bot token). A conversations.* method
#: needs the scope of each kind of conversation it reads: recaps and teams live in public
#: (channels:*) and private (groups:*) channels; DMs are opened with one person (im:write).
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "chat.postEphemeral": ("chat:write",),
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    # The recap's recovery looks for a post it may have made already (bot/slack/handlers/recap.py).
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.info": ("channels:read", "groups:read"),
    "conversations.members": ("channels:read", "groups:read"),
    "conversations.open": ("im:write",),
    "files.completeUploadExternal": ("files:write",),
    "files.getUploadURLExternal": ("files:write",),
    "oauth.v2.access": (),
    "usergroups.users.list": ("usergroups:read",),
    # users:read; the profile's email field is returned only with users:read.email.
    "users.info": ("users:read", "users:read.email"),
    "users.lookupByEmail": ("users:read", "users:read.email"),
    "views.open": (),
    "views.publish": (),
    "views.update": (),  # docs.slack.dev/reference/methods/views.update: "No scopes required"
}
#: slack_sdk helpers that call several Web API methods.
HELPERS = {"files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal")}


def web_api_calls() -> dict[str, set[str]]:
    """Web API method -> where bot/ calls it: ``client.chat_postMessage(...)`` (any receiver: a
    method name of slack_sdk's WebClient, not of its base class) and ``client.api_call("...")``."""
    import ast

    from slack_sdk.web.async_base_client import AsyncBaseClient
    from slack_sdk.web.async_client import AsyncWebClient

    methods = {name for name in dir(AsyncWebClient) if not name.startswith("_")} - set(dir(AsyncBaseClient))
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name, called = node.func.attr, ()
            if name in methods:
                called = HELPERS.get(name, (name.replace("_", "."),))
            elif name == "api_call" and node.args and isinstance(node.args[0], ast.Constant):
                called = (str(node.args[0].value),)
            for method in called:
                found.setdefault(method, set()).add(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_manifests_request_exactly_the_scopes_the_code_needs():
    calls = web_api_calls()
    # The scan sees the calls (a rename of the client would make it find nothing and pass).
    assert {"chat.postMessage", "conversations.history", "conversations.open", "users.info"} <= set(calls)
    unknown = {method: sorted(where) for method, where in calls.items() if method not in METHOD_SCOPES}
    assert not unknown, f"add these methods' scopes to METHOD_SCOPES (from their docs pages): {unknown}"
    needed = {scope for method in calls for scope in METHOD_SCOPES[method]}
    for name in ("manifest.yml", "manifest.dev.yml"):
        manifest = yaml.safe_load((ROOT / name).read_text())
        needed_here = needed | ({"commands"} if manifest["features"].get("slash_commands") else set())
        requested = set(manifest["oauth_config"]["scopes"]["bot"])
        missing = {
            scope: sorted(m for m in calls if scope in METHOD_SCOPES[m]) for scope in needed_here - requested
        }
        assert not missing, f"{name} lacks scopes the code needs (scope: methods): {missing}"
        assert requested <= needed_here, f"{name} requests scopes no call needs: {requested - needed_here}"
        assert len(manifest["oauth_config"]["scopes"]["bot"]) == len(requested), f"{name} repeats a scope"


def test_the_long_description_names_every_source():
    """Each registered source appears in the app's description by the name Slack users see
    (``VENDOR_NAMES``, without its maker's prefix: "OpenAI Codex" is listed as Codex)."""
    for name in ("manifest.yml", "manifest.dev.yml"):
        text = " ".join(
            yaml.safe_load((ROOT / name).read_text())["display_information"]["long_description"].split()
        )
        for source in SOURCE_MODULES:
            shown = VENDOR_NAMES[source].removesuffix(" API").removeprefix("OpenAI ")
            assert shown in text, f"{name} does not mention {shown}"
