"""Acknowledging an alarm from the console's pop-up (接警确认).

The workflow has no "acknowledge" state: taking an alarm in is a fact about who saw it and when, not a step of
the case. So the acknowledgement is a history note (the lifecycle's ``comment`` action) written through the
case service like every other action, with the same role check, grid scope, audit line and ticket event.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path as PathParam, Request
from pydantic import BaseModel, Field

from gateway.api.deps import errors, require, runtime
from gateway.api.tickets import TICKET_REF, ActionIn, TicketDetail, act
from gateway.auth import Principal
from gateway.api.parts import ApiRuntime

router = APIRouter(tags=["tickets"])

ACK_NOTE = "接警确认 · acknowledged from the alarm pop-up"


class AckIn(BaseModel):
    note: str = Field("", max_length=500, description="added after the standard acknowledgement text")


@router.post("/tickets/{ref}/acknowledge", response_model=TicketDetail, responses=errors(401, 403, 404, 409, 422),
             summary="Acknowledge an alarm (a history note: who took it in, when)")
def acknowledge(request: Request, ref: str = PathParam(pattern=TICKET_REF), body: AckIn | None = None,
                principal: Principal = Depends(require("wall")), rt: ApiRuntime = Depends(runtime)) -> TicketDetail:
    extra = (body.note.strip() if body else "")
    note = f"{ACK_NOTE} · {extra}" if extra else ACK_NOTE
    return act(request, rt, ref, "comment", principal, ActionIn(note=note))
