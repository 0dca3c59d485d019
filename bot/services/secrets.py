"""Vendor keys stored per workspace, encrypted at rest (Fernet, keyed by TOKENWISE_SECRET_KEY).

TOKENWISE_SECRET_KEY holds one or more Fernet keys separated by commas. The first encrypts;
every one decrypts (``MultiFernet``), so a key is rotated by putting the new one first, running
``tokenwise secrets rotate`` (re-encrypts every stored key with the first) and then dropping the
old one. A key value never leaves this module except to build a connector: not in a return
value shown to anyone, not in a log line, not in an error message.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Connection, Engine, delete, select

from bot.db.models import AuditLog, SourceSecret
from bot.domain.clock import utcnow
from bot.observability import remember_secrets
from bot.settings import Settings
from bot.sources.base import Connector
from bot.sources.overrides import (
    CONFIGURABLE,
    ConfigurableSource,
    VendorSecret,
    default_base_url,
    without_environment_keys,
)

log = logging.getLogger(__name__)

GENERATE_KEY_COMMAND = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)
MAX_KEY_LENGTH = 1000
#: An id a key needs beside it (Codex's ChatGPT workspace id, a UUID): letters, digits, - and _.
EXTRA_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


class SecretKeyError(ValueError):
    """TOKENWISE_SECRET_KEY is missing or malformed (the message never contains it)."""


class SecretInputError(ValueError):
    """What an admin typed is unusable; ``source`` and ``field`` say where."""

    def __init__(self, source: str, field: str, message: str) -> None:
        super().__init__(message)
        self.source, self.field, self.message = source, field, message


def keyring(settings: Settings) -> MultiFernet:
    if settings.secret_key is None:
        raise SecretKeyError(f"TOKENWISE_SECRET_KEY is not set; generate one with: {GENERATE_KEY_COMMAND}")
    parts = [p.strip() for p in settings.secret_key.get_secret_value().split(",") if p.strip()]
    if not parts:
        raise SecretKeyError(f"TOKENWISE_SECRET_KEY is empty; generate one with: {GENERATE_KEY_COMMAND}")
    fernets = []
    for position, part in enumerate(parts, start=1):
        try:
            fernets.append(Fernet(part.encode()))
        except (ValueError, TypeError):
            raise SecretKeyError(
                f"TOKENWISE_SECRET_KEY: key {position} of {len(parts)} is not a Fernet key "
                f"(32 url-safe base64-encoded bytes); generate one with: {GENERATE_KEY_COMMAND}"
            ) from None
    return MultiFernet(fernets)


def has_keyring(settings: Settings) -> bool:
    try:
        keyring(settings)
    except SecretKeyError:
        return False
    return True


# -- what an admin may see ---------------------------------------------------------------------


@dataclass(frozen=True)
class SecretStatus:
    """Whether a key is stored, never any part of it."""

    source: str
    is_set: bool
    base_url: str | None
    updated_by: str = ""


def statuses(conn: Connection, *, workspace_id: str) -> dict[str, SecretStatus]:
    rows = conn.execute(
        select(SourceSecret.source, SourceSecret.base_url, SourceSecret.updated_by).where(
            SourceSecret.workspace_id == workspace_id
        )
    ).all()
    stored = {r.source: r for r in rows}
    return {
        source: SecretStatus(
            source,
            source in stored,
            stored[source].base_url if source in stored else None,
            stored[source].updated_by if source in stored else "",
        )
        for source in CONFIGURABLE
    }


# -- changes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretChange:
    """One source's edit: a new key (None = keep the stored one), its base URL ("" = default),
    or removal of the stored key."""

    source: str
    key: str | None = None
    base_url: str | None = None
    remove: bool = False
    extra: str | None = None  # the source's ``extra_field`` value, sent with a new key

    def __repr__(self) -> str:  # the key must never reach a log through a repr
        return (
            f"SecretChange(source={self.source!r}, key={'***' if self.key else None}, remove={self.remove})"
        )


def clean_base_url(source: str, value: str | None) -> str | None:
    """None for blank or the default; HTTPS otherwise (plain HTTP only to this machine)."""
    value = (value or "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SecretInputError(source, "base_url", "Enter a full URL such as https://api.example.com/v1.")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise SecretInputError(source, "base_url", "Use https:// (a key must not travel unencrypted).")
    if parts.username or parts.password:
        raise SecretInputError(source, "base_url", "Leave credentials out of the URL; the key goes above.")
    value = value.rstrip("/")
    return None if value == default_base_url(source).rstrip("/") else value


def origin(source: str, base_url: str | None) -> tuple[str, str, int]:
    """(scheme, host, port) a stored key is sent to: its base URL's, or the vendor default's."""
    parts = urlsplit(base_url or default_base_url(source))
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def clean_key(source: str, value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > MAX_KEY_LENGTH:
        raise SecretInputError(source, "key", f"That is longer than any vendor key ({MAX_KEY_LENGTH:,} max).")
    if any(ch.isspace() for ch in value) or not value.isprintable():
        raise SecretInputError(source, "key", "A key has no spaces or line breaks; paste it again.")
    remember_secrets(value)  # masked from here on, before any client sends it
    return value


def clean_extra(source: str, value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if not EXTRA_PATTERN.fullmatch(value):
        label = CONFIGURABLE[source].extra_label
        raise SecretInputError(source, "extra", f"A {label} is letters, digits and dashes; paste it again.")
    return value


def _sealed(spec: ConfigurableSource, change: SecretChange) -> str:
    """What is encrypted: the key, or for a source with an extra field the key and that value
    together (JSON), so the pair is stored, rotated and removed as one."""
    if not spec.extra_field:
        if change.extra is not None:
            raise SecretInputError(change.source, "extra", f"{spec.label} takes no {spec.extra_label}.")
        return change.key or ""
    if change.extra is None:
        raise SecretInputError(
            change.source, "extra", f"Enter the {spec.extra_label} too: the key reads that one only."
        )
    return json.dumps({"key": change.key, "extra": change.extra})


def _unsealed(source: str, plaintext: str, base_url: str | None) -> VendorSecret:
    spec = CONFIGURABLE.get(source)
    if spec is None or not spec.extra_field:
        return VendorSecret(key=plaintext, base_url=base_url)
    pair = json.loads(plaintext)
    return VendorSecret(key=pair["key"], base_url=base_url, extra=pair["extra"])


def apply_changes(
    conn: Connection,
    fernet: MultiFernet,
    *,
    workspace_id: str,
    changes: list[SecretChange],
    updated_by: str,
) -> list[tuple[str, str]]:
    """Store, re-point or remove keys; returns (source, action) per change, action being
    ``secret.set``, ``secret.base_url`` or ``secret.remove``. Audited without values."""
    changed: list[tuple[str, str]] = []
    now = utcnow()
    for change in changes:
        if change.source not in CONFIGURABLE:
            raise SecretInputError(change.source, "key", f"{change.source} cannot be configured here.")
        where = (SourceSecret.workspace_id == workspace_id, SourceSecret.source == change.source)
        existing = conn.execute(select(SourceSecret.id, SourceSecret.base_url).where(*where)).first()
        if change.extra is not None and change.key is None and not change.remove:
            # Stored with the key, so it changes only with the key (nothing new is stored blind).
            raise SecretInputError(
                change.source,
                "key",
                f"Paste the key too: the {CONFIGURABLE[change.source].extra_label} is stored with it.",
            )
        if change.remove:
            if existing is None:
                continue
            conn.execute(delete(SourceSecret).where(*where))
            action = "secret.remove"
        elif change.key is not None:
            values = {
                "encrypted_key": fernet.encrypt(
                    _sealed(CONFIGURABLE[change.source], change).encode()
                ).decode(),
                "base_url": change.base_url or None,
                "updated_by": updated_by,
                "updated_at": now,
            }
            if existing is None:
                conn.execute(
                    SourceSecret.__table__.insert().values(
                        workspace_id=workspace_id, source=change.source, **values
                    )
                )
            else:
                conn.execute(SourceSecret.__table__.update().where(*where).values(**values))
            action = "secret.set"
        elif existing is not None and (change.base_url or None) != existing.base_url:
            if origin(change.source, change.base_url) != origin(change.source, existing.base_url):
                # The key was entered for one host: only the person who holds it may send it to
                # another, else whoever may edit this form could point the key at their own server.
                raise SecretInputError(
                    change.source,
                    "key",
                    "Paste the key again: a stored key goes to a new host only when it is re-entered.",
                )
            conn.execute(
                SourceSecret.__table__.update()
                .where(*where)
                .values(base_url=change.base_url or None, updated_by=updated_by, updated_at=now)
            )
            action = "secret.base_url"
        elif existing is None and change.base_url:
            # Raised inside the caller's transaction: nothing of this submission is stored.
            raise SecretInputError(
                change.source, "key", "Enter the key too: a base URL alone enables nothing."
            )
        else:
            continue
        conn.execute(
            AuditLog.__table__.insert().values(
                workspace_id=workspace_id,
                actor_user_id=updated_by,
                action=action,
                target=f"source:{change.source}",
                detail="",
            )
        )
        changed.append((change.source, action))
    return changed


# -- use --------------------------------------------------------------------------------------


def load_overrides(conn: Connection, fernet: MultiFernet, *, workspace_id: str) -> dict[str, VendorSecret]:
    """Decrypted keys of one workspace. A key no configured Fernet key opens (its encryption key
    was dropped before ``secrets rotate``) is skipped with a warning: that source stays off."""
    found: dict[str, VendorSecret] = {}
    rows = conn.execute(
        select(SourceSecret.source, SourceSecret.encrypted_key, SourceSecret.base_url).where(
            SourceSecret.workspace_id == workspace_id
        )
    ).all()
    for row in rows:
        try:
            secret = _unsealed(row.source, fernet.decrypt(row.encrypted_key.encode()).decode(), row.base_url)
        except InvalidToken:
            log.warning(
                "stored key of source %s in workspace %s cannot be decrypted with TOKENWISE_SECRET_KEY; "
                "enter it again with /tokens sources",
                row.source,
                workspace_id,
            )
            continue
        remember_secrets(secret.key)
        found[row.source] = secret
    return found


def rotate(conn: Connection, fernet: MultiFernet) -> tuple[int, int]:
    """Re-encrypt every stored key with the first Fernet key: (rotated, undecryptable)."""
    rotated = failed = 0
    for row in conn.execute(select(SourceSecret.id, SourceSecret.encrypted_key)).all():
        try:
            token = fernet.rotate(row.encrypted_key.encode()).decode()
        except InvalidToken:
            failed += 1
            continue
        conn.execute(
            SourceSecret.__table__.update().where(SourceSecret.id == row.id).values(encrypted_key=token)
        )
        rotated += 1
    return rotated, failed


def connectors_for_workspace(
    settings: Settings, engine: Engine, workspace_id: str, **kwargs
) -> list[Connector]:
    """The connectors one workspace syncs: its stored keys over the environment's. In a
    multi-workspace install the environment's keys belong to TOKENWISE_WORKSPACE_ID only."""
    from bot.sources.registry import enabled_connectors

    base = settings
    if settings.multi_workspace and workspace_id != settings.workspace_id:
        base = without_environment_keys(settings)
    overrides: Mapping[str, VendorSecret] = {}
    if settings.secret_key is not None:
        with engine.connect() as conn:
            overrides = load_overrides(conn, keyring(settings), workspace_id=workspace_id)
    return enabled_connectors(base, secret_overrides=overrides, **kwargs)
