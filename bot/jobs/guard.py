"""One job's failure stays that job's: logged with its name, never raised into the scheduler's
thread or into the sync that ran the job after itself."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from bot.services.runtime import Runtime

log = logging.getLogger(__name__)

T = TypeVar("T")


def guarded(what: str, job: Callable[[Runtime], T], runtime: Runtime) -> T | None:
    """``job(runtime)``, or None (and the traceback in the log) when it raised."""
    try:
        return job(runtime)
    except Exception:
        log.exception("%s failed", what)
        return None
