"""The live WebSocket: new anomalies and ticket events, filtered to the caller's grids.

It reads the ``anomalies`` and ``events`` Redis streams with plain XREAD (no consumer group: every page
sees every entry, and nothing here acknowledges anything the intake owns). An anomaly carries a
position, not a grid, so it is routed here with the same GridIndex the intake uses.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from alerts.grids import GridIndex
from ingest.anomaly import Anomaly
from gateway.auth import Authenticator, AuthError, Principal
from ingest.redis_connect import connect_async

log = logging.getLogger(__name__)
router = APIRouter(tags=["live"])

AUTH_TIMEOUT_S = 10.0
REVALIDATE_S = 30.0
BLOCK_MS = 2000


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _grid_of_event(fields: dict[str, str]) -> tuple[str | None, dict]:
    """A ticket event is either one JSON field (``event``/``data``/``ticket``) or flat fields; find its grid."""
    body: dict[str, Any] = {}
    for name in ("event", "data", "ticket", "payload"):
        if name in fields:
            try:
                parsed = json.loads(fields[name])
            except ValueError:
                continue
            if isinstance(parsed, dict):
                body = parsed
                break
    if not body:
        body = dict(fields)
        for k, v in list(body.items()):
            if isinstance(v, str) and v[:1] in "{[":
                try:
                    body[k] = json.loads(v)
                except ValueError:
                    pass
    grid = body.get("grid") or body.get("grid_code") or fields.get("grid") or fields.get("grid_code")
    if grid is None and isinstance(body.get("ticket"), dict):
        grid = body["ticket"].get("grid") or body["ticket"].get("grid_code")
    return (str(grid) if grid else None), body


def filter_entry(stream: str, fields: dict[str, str], keys: Any, grids: GridIndex, principal: Principal) -> dict | None:
    """The message to send for one stream entry, or None when the caller may not see it."""
    if stream == keys.anomalies:
        try:
            anomaly = Anomaly.model_validate_json(fields.get("anomaly", ""))
        except ValueError:
            return None
        grid = grids.route(anomaly.location)
        code = grid.code if grid else None
        if not principal.sees_grid(code):
            return None
        return {"type": "anomaly", "grid": code, "anomaly": json.loads(anomaly.model_dump_json())}
    code, body = _grid_of_event(fields)
    if not principal.sees_grid(code):
        return None
    return {"type": "ticket", "grid": code, "event": body}


async def _newest_id(client, stream: str) -> str:
    newest = await client.xrevrange(stream, count=1)
    return _text(newest[0][0]) if newest else "0-0"


async def _authenticate(ws: WebSocket, auth: Authenticator) -> tuple[Principal, str]:
    token = ws.query_params.get("token")
    if not token:
        raw = await asyncio.wait_for(ws.receive_text(), AUTH_TIMEOUT_S)
        try:
            msg = json.loads(raw)
        except ValueError:
            msg = {}
        token = str(msg.get("token", "")) if isinstance(msg, dict) else ""
    return auth.verify_access(token), token


@router.websocket("/live")
async def live(ws: WebSocket) -> None:
    """Stream ``{"type": "anomaly"|"ticket", "id", "stream", "grid", ...}`` messages; see docs/API.md."""
    app = ws.app
    auth: Authenticator = app.state.auth
    runtime = app.state.runtime
    keys = app.state.keys
    await ws.accept()
    try:
        principal, token = await _authenticate(ws, auth)
    except (AuthError, asyncio.TimeoutError, WebSocketDisconnect):
        await _close(ws, 4401, "unauthorized")
        return
    if not principal.can("live"):
        await _close(ws, 4403, "forbidden")
        return
    client = connect_async(runtime.deployment.services.redis_url, decode_responses=True)
    since = ws.query_params.get("since")
    if since:  # resume after a reconnect: entries after this id on both streams
        streams = {k: since for k in (keys.anomalies, keys.events)}
    else:  # from now on: the newest ids, fixed before "hello" so nothing sent after it is missed
        streams = {k: await _newest_id(client, k) for k in (keys.anomalies, keys.events)}
    await ws.send_json({"type": "hello", "user": principal.username, "grids": list(principal.grids)})
    last_check = time.monotonic()
    reader = asyncio.create_task(_drain_client(ws))
    try:
        while not reader.done():
            if time.monotonic() - last_check > REVALIDATE_S:
                last_check = time.monotonic()
                try:
                    await asyncio.to_thread(auth.verify_access, token)
                except AuthError:
                    await _close(ws, 4401, "token expired or revoked")
                    return
            try:
                result = await client.xread(streams, block=BLOCK_MS, count=100)
            except aioredis.ConnectionError:
                log.warning("live: redis unavailable; retrying")
                await asyncio.sleep(1.0)
                continue
            for stream, entries in result or []:
                stream = _text(stream)
                for entry_id, fields in entries:
                    streams[stream] = entry_id
                    msg = filter_entry(stream, fields, keys, runtime.grids, principal)
                    if msg is None:
                        continue
                    msg.update(id=entry_id, stream="anomalies" if stream == keys.anomalies else "events")
                    await ws.send_json(msg)
                    app.state.metrics.live_clients.inc()
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        reader.cancel()
        await client.aclose()


async def _drain_client(ws: WebSocket) -> None:
    """Read (and ignore) what the page sends, so a closed socket ends the stream promptly."""
    try:
        while True:
            await ws.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        return


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    try:
        await ws.close(code=code, reason=reason)
    except RuntimeError:
        pass
