"""Configuration changes made through the API, for role processes anywhere: the SQL store plus a Redis stream.

The store (``ConfigStore``, injected by the composer: ``alerts.config_store.SqlConfigStore``) is the truth
and survives any restart and a Redis flush: id → JSON, None for an item removed through the API; the
deployment file is the seed those rows override. The capped stream ``{op, id}`` only wakes the running
roles, which re-read the store for the id it names — so two API nodes racing on one item end with every
role holding the last committed version, whatever order their stream entries arrived in. The API commits
the row, then appends to the stream; roles follow with XREAD. Used for cameras (the video role), devices
and device profiles (the devices role) and by every API node for its own lists.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import redis

log = logging.getLogger(__name__)

CONTROL_MAXLEN = 10_000


class ConfigStore(Protocol):
    """Where changed items live (SQL): ``kind`` is camera, device or profile."""

    def record(self, kind: str, item_id: str, doc: dict[str, Any] | None) -> None: ...

    def changes(self, kind: str) -> dict[str, dict[str, Any] | None]: ...

    def get(self, kind: str, item_id: str) -> dict[str, Any] | None: ...


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ConfigChanges:
    """``put`` / ``remove`` on the API's side; ``overrides`` / ``get`` / ``last_id`` / ``follow`` on the roles' side."""

    def __init__(self, client: redis.Redis, store: ConfigStore, kind: str, stream_key: str):
        self.client, self.store, self.kind, self.stream_key = client, store, kind, stream_key

    def put(self, doc: dict[str, Any], *, new: bool) -> None:
        """Commit the item to the store, then wake the roles (a store error leaves the roles untouched)."""
        self.store.record(self.kind, doc["id"], doc)
        self._announce("add" if new else "update", doc["id"])

    def remove(self, item_id: str) -> None:
        self.store.record(self.kind, item_id, None)
        self._announce("remove", item_id)

    def _announce(self, op: str, item_id: str) -> None:
        self.client.xadd(self.stream_key, {"op": op, "id": item_id}, maxlen=CONTROL_MAXLEN, approximate=True)

    def overrides(self) -> dict[str, dict[str, Any] | None]:
        """id → JSON, or None for an item removed through the API."""
        return self.store.changes(self.kind)

    def get(self, item_id: str) -> dict[str, Any] | None:
        return self.store.get(self.kind, item_id)

    def last_id(self) -> str:
        last = self.client.xrevrange(self.stream_key, count=1)
        return _text(last[0][0]) if last else "0-0"

    def follow(self, after: str, block_ms: int = 1000) -> tuple[str, list[tuple[str, str]]]:
        """Changes after entry ``after``: (new last id, [(op, id)])."""
        got = self.client.xread({self.stream_key: after}, block=block_ms, count=100)
        changes: list[tuple[str, str]] = []
        for _, entries in got or []:
            for entry_id, fields in entries:
                after = _text(entry_id)
                f = {_text(k): _text(v) for k, v in fields.items()}
                changes.append((f.get("op", ""), f.get("id", "")))
        return after, changes

    def follow_forever(self, after: str, apply: Callable[[str, str], None], stop: threading.Event, what: str) -> None:
        """Apply ``apply(op, id)`` to every change after entry ``after`` until ``stop``; Redis away: wait and go on."""
        while not stop.is_set():
            try:
                after, changes = self.follow(after, block_ms=1000)
            except redis.RedisError as exc:
                log.warning("%s changes not read: %s", what, exc)
                stop.wait(1.0)
                continue
            for op, item_id in changes:
                apply(op, item_id)


def apply_overrides(items: list[Any], overrides: dict[str, dict[str, Any] | None],
                    load: Callable[[dict[str, Any]], Any]) -> list[Any]:
    """The deployment's items with the API's additions, replacements and removals applied, in order."""
    out = {i.id: i for i in items}
    for item_id, doc in overrides.items():
        if doc is None:
            out.pop(item_id, None)
        else:
            try:
                out[item_id] = load(doc)
            except Exception as exc:  # a bad entry costs that item, never the role
                log.error("%s from the API's changes ignored: %s", item_id, exc)
    return list(out.values())
