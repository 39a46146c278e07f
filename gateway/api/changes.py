"""One way for the API to make a configuration change: store it, hand it over, rebuild this node's list.

Cameras, devices and device profiles all go through ``hand_over``: the change commits a row of the SQL
store and wakes every role on a Redis stream (``ingest.changes``); this node's list is then rebuilt from
the store (``gateway.config_state``). The store or Redis away is a 503 the caller may retry — retrying is
safe, a change is an upsert of the item's row.
"""
from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, status

from gateway.config_state import HANDOVER_ERRORS, ConfigState


def hand_over(what: str, change: Callable[[], None], reload: Callable[[], None] | None = None) -> None:
    try:
        change()
    except HANDOVER_ERRORS as exc:
        if reload is not None:
            ConfigState.safely(reload)  # the row may be committed though Redis did not answer
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"{what} change not handed over ({type(exc).__name__}); retry") from exc
    if reload is not None:
        ConfigState.safely(reload)
