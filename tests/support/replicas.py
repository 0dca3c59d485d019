"""Replicas doing the same job at the same moment (threads released together by a barrier)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def at_once(prepare: Callable[[], T], job: Callable[[T], object], replicas: int = 2) -> None:
    """Each of ``replicas`` threads calls ``prepare()`` (its own runtime, say), waits for the others,
    then runs ``job`` on what it prepared. Asserts that no thread raised (a thread's exception
    would otherwise vanish)."""
    gate = threading.Barrier(replicas)
    errors: list[Exception] = []

    def replica() -> None:
        own = prepare()
        try:
            gate.wait(timeout=10)
            job(own)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=replica) for _ in range(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
