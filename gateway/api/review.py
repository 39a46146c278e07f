"""Review: the alerts (tickets) and activity (recorded, never a ticket) of the caller's grids, and a camera's timeline.

Both lists come from ``alerts.review``; this module maps callers to grid scopes and parameters to filters.
Grid scope is the tickets' rule: a grid worker sees only items of their grids, and an activity row outside
them answers the same ``403 {"detail": "forbidden"}`` as one that does not exist. A camera's timeline also follows
the camera routes' rule: a camera outside the caller's grids answers 403. Evidence URLs are API
paths (like a ticket's ``snapshot``): an alert's go through ``/tickets/{id}/evidence/{i}``, an activity's
through ``/activity/{id}/evidence/{i}`` below, both with the same access rule and ``?mt=`` media tokens.
"""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Query, status
from fastapi.responses import FileResponse, Response
from pydantic import AwareDatetime, BaseModel, Field

from alerts.review import BadCursor, Cursor, ReviewFilter, activity_evidence, review_items
from gateway.api.cameras import CAMERA_ID as CAMERA_REF, visible_camera
from gateway.api.deps import errors, forbidden, require, require_media, runtime
from gateway.api.tickets import evidence_response, scope_codes
from gateway.auth import Principal
from gateway.api.parts import ApiRuntime

router = APIRouter(tags=["review"])

CAMERA_ID = r"^[A-Za-z0-9_.:-]{1,100}$"


class TicketRefOut(BaseModel):
    number: str
    status: str


class ReviewItem(BaseModel):
    """One alert or activity record, with why it fired and its evidence."""

    id: str = Field(description="'alert:<ticket id>' or 'activity:<record id>'")
    tier: Literal["alert", "activity"]
    camera_id: str | None = None
    grid: str | None = None
    kind: str = Field(description="rule kind: intrusion, loitering, crowd, illegal_parking, fall, fire_smoke, motion, tamper, …")
    category: str | None = None
    at: AwareDatetime = Field(description="when it happened (an alert: its ticket's first occurrence)")
    title: str
    score: float | None = None
    cause: dict[str, Any] = Field(default_factory=dict, description="what triggered the rule: object/track, dwell, count, boxes")
    ticket: TicketRefOut | None = Field(None, description="the ticket of an alert; null for activity")
    snapshot_url: str | None = Field(None, description="API path of the snapshot (needs ?mt= in <img>)")
    clip_url: str | None = Field(None, description="API path of the clip (needs ?mt= in <video>)")


class ReviewPage(BaseModel):
    items: list[ReviewItem]
    next: str | None = Field(description="pass as ?before= for the next (older) page; null on the last page")


class TimelineOut(BaseModel):
    camera_id: str
    items: list[ReviewItem]


def _filter(principal: Principal, **kw: Any) -> ReviewFilter:
    codes = scope_codes(principal)
    return ReviewFilter(visible=None if codes is None else tuple(codes), **kw)


@router.get("/review", response_model=ReviewPage, responses=errors(401, 403, 422),
            summary="Alerts and activity of the caller's grids, newest first, filtered; cursor-paged")
def list_review(
    tier: Literal["alert", "activity"] | None = Query(None, description="only alerts (tickets) or only activity"),
    camera_id: str | None = Query(None, pattern=CAMERA_ID),
    grid: str | None = Query(None, pattern=r"^\d{6,15}$", description="grid code of any level"),
    kind: str | None = Query(None, pattern=r"^[a-z_]{1,64}$", description="rule kind"),
    status_: list[str] | None = Query(None, alias="status", description="ticket status (alerts only; repeat for several)"),
    since: AwareDatetime | None = Query(None, description="at or after (ISO-8601 with offset)"),
    until: AwareDatetime | None = Query(None, description="before"),
    limit: int = Query(50, ge=1, le=200),
    before: str | None = Query(None, max_length=200, description="the previous page's 'next'"),
    principal: Principal = Depends(require("tickets:read")),
    rt: ApiRuntime = Depends(runtime),
) -> ReviewPage:
    try:
        cursor = Cursor.decode(before) if before else None
    except BadCursor as exc:
        raise HTTPException(422, str(exc)) from None
    statuses = tuple(s for s in (status_ or []) if s)[:20] or None
    f = _filter(principal, tier=tier, camera_id=camera_id, grid=grid, kind=kind, status=statuses, since=since, until=until)
    items, nxt = review_items(rt.store, f, limit=limit, before=cursor)
    return ReviewPage(items=[ReviewItem.model_validate(i) for i in items], next=nxt.encode() if nxt else None)


@router.get("/cameras/{camera_id}/timeline", response_model=TimelineOut, responses=errors(401, 403, 422),
            summary="One camera's alerts and activity in the caller's grids, oldest first")
def camera_timeline(
    camera_id: str = PathParam(pattern=CAMERA_REF),
    since: AwareDatetime | None = Query(None), until: AwareDatetime | None = Query(None),
    limit: int = Query(500, ge=1, le=500, description="at most this many items (the oldest of the range)"),
    principal: Principal = Depends(require("tickets:read")),
    rt: ApiRuntime = Depends(runtime),
) -> TimelineOut:
    try:
        visible_camera(rt, principal, camera_id)  # a camera outside the caller's grids: 403, as every camera route
    except HTTPException as exc:
        if exc.status_code != status.HTTP_404_NOT_FOUND:
            raise
        # a camera no longer configured: its history stays readable for those who see every grid
    f = _filter(principal, camera_id=camera_id, since=since, until=until)
    items, _ = review_items(rt.store, f, limit=limit, newest_first=False)
    return TimelineOut(camera_id=camera_id, items=[ReviewItem.model_validate(i) for i in items])


@router.get("/activity/{activity_id}/evidence/{index}", response_class=FileResponse, responses={
    200: {"content": {"image/jpeg": {}, "video/mp4": {}}, "description": "the evidence file"},
    **errors(401, 403, 404, 422, 503)}, summary="An evidence file of an activity record (same access rule as review)")
def activity_evidence_file(activity_id: int = PathParam(ge=1, le=2**62), index: int = PathParam(ge=0, le=10_000),
                           principal: Principal = Depends(require_media("tickets:read")),
                           rt: ApiRuntime = Depends(runtime)) -> Response:
    items = activity_evidence(rt.store, activity_id, scope_codes(principal))
    if items is None:
        if principal.scope is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such activity")
        raise forbidden()
    return evidence_response(rt, items, index)
