"""Work a listener hands off to run after it has returned (and Slack has its response).

The app runs with ``process_before_response=True``: Bolt sends the HTTP response (or the Socket
Mode envelope's ack) when the listener returns, not as soon as it acks. So every listener returns
right after its ack and hands any slow tail (Slack Web API calls, database writes, a late answer)
to ``in_background``; a graceful shutdown waits for it with ``drain_background``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

log = logging.getLogger(__name__)

# The event loop keeps only weak references to tasks: a task nobody holds can be garbage-collected
# mid-flight. Listeners' background work is held here until it finishes.
_BACKGROUND: set[asyncio.Task] = set()


async def _logged(work: Awaitable, what: str) -> None:
    try:
        await work
    except Exception:  # nobody awaits a background task: log it, never raise into Bolt
        log.exception("%s failed", what)


def in_background(work: Awaitable, what: str) -> asyncio.Task:
    """Run ``work`` after the listener has returned (and Slack has its response); a failure is
    logged with ``what``."""
    task = asyncio.get_running_loop().create_task(_logged(work, what))
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return task


async def drain_background(timeout: float) -> None:
    """Wait up to ``timeout`` seconds for this loop's background work (a graceful shutdown lets
    late answers and button effects finish)."""
    loop = asyncio.get_running_loop()
    pending = [task for task in _BACKGROUND if task.get_loop() is loop]
    if pending:
        await asyncio.wait(pending, timeout=timeout)
