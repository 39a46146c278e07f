"""The one-key alarm (一键报警) over HTTPS: signed by the set-top box, no user token.

The box signs ``f"{timestamp}\\n{nonce}\\n" + body`` with its secret (HMAC-SHA256) and sends ``X-GW-Device``,
``X-GW-Timestamp``, ``X-GW-Nonce`` and ``X-GW-Signature`` (``ingest.devices.signing``). Verification, replay
protection, de-duplication of retries and filing are ``ingest.devices.handle_press``'s, reached through
``Runtime.press_alarm``; this endpoint adds rate limits per device and per address, the audit line, and
answers the box's protocol as it is (the ack, or the refusal's reason) so the TV can show the case number.
"""
from __future__ import annotations

import math
from typing import Any

import anyio
from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import ErrorOut, client_ip

router = APIRouter(tags=["alarms"])


class PressOut(BaseModel):
    """The ack the box shows (status received / duplicate / pending / cancelled / error) or a refusal (rejected)."""

    model_config = ConfigDict(extra="allow")
    status: str = Field(description="received, duplicate, pending, cancelled, error, rejected")
    case: str | None = Field(None, description="the case number (案卷号) the press was filed under")
    press_id: str | None = None
    kind: str | None = None
    reason: str | None = Field(None, description="why it was refused: malformed, unknown_device, bad_signature, "
                                                 "timestamp_out_of_window, replayed_nonce, invalid_payload, oversized_payload")
    server_time: float | None = Field(None, description="lets a box with a drifting clock correct itself")


def _press(description: str) -> dict[str, Any]:
    return {"model": PressOut, "description": description}


RESPONSES: dict[int | str, dict[str, Any]] = {
    202: _press("a twin press is being filed right now; the retry gets the case"),
    400: _press("malformed or invalid press"), 401: _press("unknown device, bad signature or stale timestamp"),
    409: _press("replayed nonce"), 413: {"model": ErrorOut, "description": "body too large"},
    422: {"model": ErrorOut, "description": "invalid header"},
    429: {"model": ErrorOut, "description": "rate limited; see Retry-After"},
    503: _press("the case could not be filed now; retry with a fresh nonce and the same press_id"),
}


@router.post("/alarms/press", response_model=PressOut, responses=RESPONSES,
             summary="One-key alarm press, signed by the device (see docs/API.md, 'Alarm signing')",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                 "type": "object", "description": "the press as the box sends it; the signature covers these exact bytes",
                 "additionalProperties": True}}}}})
async def press(request: Request,
                x_gw_device: str | None = Header(None, alias="X-GW-Device", max_length=64, description="the device's registry id"),
                x_gw_timestamp: str | None = Header(None, alias="X-GW-Timestamp", max_length=16, description="Unix seconds"),
                x_gw_nonce: str | None = Header(None, alias="X-GW-Nonce", max_length=64, description="single-use, 8–64 of [A-Za-z0-9_-]"),
                x_gw_signature: str | None = Header(None, alias="X-GW-Signature", max_length=64,
                                                    description="hex HMAC-SHA256 of timestamp\\nnonce\\nbody")) -> Any:
    app = request.app
    keys = [f"ip:{client_ip(request)}"] + ([f"dev:{x_gw_device}"] if x_gw_device else [])
    for key in keys:
        wait = app.state.alarm_limit.take(key)
        if wait:
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many presses", headers={"Retry-After": str(math.ceil(wait))})
    rt: Any = app.state.runtime
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        result = await anyio.to_thread.run_sync(lambda: rt.press_alarm(x_gw_device or "", body, headers))
    except Exception as exc:
        reason = getattr(exc, "reason", None)
        if reason is None:
            raise
        app.state.audit.record(f"device:{x_gw_device or '?'}", "alarm.rejected", f"device:{x_gw_device or '?'}",
                               ip=client_ip(request), reason=str(reason))
        return JSONResponse({"status": "rejected", "reason": str(reason)}, status_code=401)
    code, payload = result.http_status, result.body
    if "case" not in payload and "case_number" in payload:
        payload = {**payload, "case": payload["case_number"]}
    payload.setdefault("status", "received" if code == 200 else "rejected")
    who = f"device:{x_gw_device or payload.get('device') or '?'}"
    action = "alarm.press" if code < 400 else "alarm.rejected"
    app.state.audit.record(who, action, f"case:{payload.get('case')}" if code < 400 else who, ip=client_ip(request),
                           status=payload.get("status"), reason=payload.get("reason"))
    return JSONResponse(payload, status_code=code)
