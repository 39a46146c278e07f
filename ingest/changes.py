"""Configuration changes made through the API, for role processes anywhere: a Redis hash plus a stream.

The hash (id → JSON, ``""`` for removed) is the truth and survives a role's restart; the capped stream
wakes the running roles, which re-read the hash for the id it names. The API writes both in one
MULTI; roles follow with XREAD. Used for cameras (the video role) and devices (the devices role).
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import redis

log = logging.getLogger(__name__)

CONTROL_MAXLEN = 10_000


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ConfigChanges:
    """``put`` / ``remove`` on the API's side; ``overrides`` / ``last_id`` / ``follow`` on the roles' side."""

    def __init__(self, client: redis.Redis, hash_key: str, stream_key: str):
        self.client, self.hash_key, self.stream_key = client, hash_key, stream_key

    def put(self, doc: dict[str, Any], *, new: bool) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.hash_key, doc["id"], json.dumps(doc))
        pipe.xadd(self.stream_key, {"op": "add" if new else "update", "id": doc["id"]}, maxlen=CONTROL_MAXLEN, approximate=True)
        pipe.execute()

    def remove(self, item_id: str) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.hash_key, item_id, "")
        pipe.xadd(self.stream_key, {"op": "remove", "id": item_id}, maxlen=CONTROL_MAXLEN, approximate=True)
        pipe.execute()

    def overrides(self) -> dict[str, dict[str, Any] | None]:
        """id → JSON, or None for an item removed through the API."""
        return {_text(k): (json.loads(v) if v else None) for k, v in self.client.hgetall(self.hash_key).items()}

    def get(self, item_id: str) -> dict[str, Any] | None:
        raw = self.client.hget(self.hash_key, item_id)
        return json.loads(raw) if raw else None

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

    def clear(self) -> None:
        """Forget the API's changes: the deployment file is the truth again (``gridwatch run`` starting afresh)."""
        self.client.delete(self.hash_key, self.stream_key)


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
