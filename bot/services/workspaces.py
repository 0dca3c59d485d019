"""Which Slack workspaces Tokenwise serves, for scheduled jobs.

Single-workspace installs (SLACK_BOT_TOKEN) serve exactly ``Settings.workspace_id``. Multi-
workspace installs (Slack OAuth) serve every workspace whose ``workspace`` row is ``active``: the
OAuth redirect activates it, ``app_uninstalled`` / ``tokens_revoked`` deactivate it. Deactivating
keeps the workspace's data (a reinstall picks it up again); only its bot token is deleted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, select

from bot.db.models import Workspace
from bot.domain.clock import utcnow
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.services.sync import SyncOutcome

log = logging.getLogger(__name__)

ACTIVE = "active"
INACTIVE = "inactive"


def activate(
    conn: Connection,
    *,
    workspace_id: str,
    enterprise_id: str | None,
    name: str,
    installed_by: str,
) -> None:
    table = Workspace.__table__
    values = {
        "enterprise_id": enterprise_id,
        "name": (name or "")[:200],
        "status": ACTIVE,
        "installed_by": (installed_by or "")[:32],
        "installed_at": utcnow(),
        "uninstalled_at": None,
    }
    found = conn.execute(select(Workspace.id).where(Workspace.workspace_id == workspace_id)).first()
    if found is None:
        conn.execute(table.insert().values(workspace_id=workspace_id, **values))
    else:
        conn.execute(table.update().where(Workspace.id == found.id).values(**values))


def deactivate(conn: Connection, *, workspace_id: str) -> bool:
    """True when the workspace was active (so callers log the change once)."""
    result = conn.execute(
        Workspace.__table__.update()
        .where(Workspace.workspace_id == workspace_id, Workspace.status == ACTIVE)
        .values(status=INACTIVE, uninstalled_at=utcnow())
    )
    return result.rowcount > 0


def get(conn: Connection, workspace_id: str) -> Workspace | None:
    row = conn.execute(select(Workspace).where(Workspace.workspace_id == workspace_id)).first()
    return Workspace.model_validate(row._mapping) if row is not None else None


def active_workspace_ids(conn: Connection, settings: Settings) -> list[str]:
    """The workspaces a scheduled job runs for, in a stable order."""
    if not settings.multi_workspace:
        return [settings.workspace_id]
    return list(
        conn.execute(
            select(Workspace.workspace_id).where(Workspace.status == ACTIVE).order_by(Workspace.workspace_id)
        ).scalars()
    )


def sync_every_workspace(settings: Settings, engine: Engine, **run_kwargs) -> dict[str, list[SyncOutcome]]:
    """One sync pass per active workspace, each with its own connectors (its stored keys over the
    environment's; see ``bot.services.secrets.connectors_for_workspace``). A workspace whose
    stored keys cannot be read is logged and skipped; the others still sync."""
    from bot.services.secrets import SecretKeyError, connectors_for_workspace
    from bot.services.sync import run_all

    with engine.connect() as conn:
        workspace_ids = active_workspace_ids(conn, settings)
    outcomes: dict[str, list[SyncOutcome]] = {}
    for workspace_id in workspace_ids:
        try:
            connectors = connectors_for_workspace(settings, engine, workspace_id)
        except SecretKeyError as error:  # its message names the problem, never a key
            log.error("workspace %s not synced: %s", workspace_id, error)
            continue
        outcomes[workspace_id] = run_all(engine, connectors, workspace_id=workspace_id, **run_kwargs)
    return outcomes
