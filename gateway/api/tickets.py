"""Tickets (案卷): query, detail, workflow actions, the event wall, the duty queue, KPIs and evidence files.

Everything goes through ``alerts.service.CaseService``; this module only maps callers to grid scopes and
roles, and its exceptions to HTTP. Visibility rule: for a caller limited to some grids, a ticket outside
them and a ticket that does not exist both answer ``403 {"detail": "forbidden"}``, as does an action the
caller's role may never take, so the answer never reveals what exists elsewhere.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Query, Request, status
from fastapi.responses import FileResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from alerts import lifecycle
from alerts.service import NotVisible, TicketNotFound, TransitionError
from gateway.api.deps import errors, forbidden, require, require_media, runtime
from gateway.auth import Principal
from gateway.api.parts import ApiRuntime
from ingest.blobs import BadKey, BlobError, BlobNotFound

log = logging.getLogger(__name__)

router = APIRouter(tags=["tickets"])

WALL_STATUSES = ("reported",)
WALL_CONFIRM, WALL_DISMISS = "register", "false_alarm"
TICKET_REF = r"^[A-Za-z0-9-]{1,40}$"


class Location(BaseModel):
    lon: float
    lat: float
    crs: str = "WGS84"


class Source(BaseModel):
    kind: str = Field(description="camera | sensor | alarm | report")
    id: str
    zone: str | None = None


class TicketOut(BaseModel):
    """A ticket as listed: state, place, grid, deadlines."""

    model_config = ConfigDict(extra="ignore")
    id: int
    number: str = Field(description="case number, e.g. QS20261123-000001")
    category: str
    category_name: str = ""
    severity: str
    status: str
    status_label: str = Field(description="Chinese label of the status")
    title: str
    grid_code: str
    grid_name: str = ""
    unit_code: str = Field(description="the unit now responsible (changes on escalation)")
    escalation_level: int
    department: str | None = None
    police: bool = False
    location: Location
    address: str | None = None
    source: Source
    kind: str
    created_at: datetime
    updated_at: datetime
    last_seen_at: datetime | None = None
    occurrence_count: int
    sign_deadline: datetime | None = None
    handle_deadline: datetime | None = None
    signed_at: datetime | None = None
    closed_at: datetime | None = None
    sign_overdue: bool = False
    handle_overdue: bool = False
    supervised: bool = False
    extension_requested: datetime | None = None
    assignee: str | None = None
    merged_into: int | None = None
    snapshot: str | None = Field(None, description="API path of the first image evidence (needs ?mt= in <img>)")
    allowed_actions: list[str] = Field(default_factory=list, description="actions the caller may take now")


class HistoryOut(BaseModel):
    at: datetime
    actor: str
    action: str
    from_status: str | None = None
    to_status: str | None = None
    note: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class EvidenceOut(BaseModel):
    kind: str
    content_type: str
    url: str = Field(description="API path; GET it with a token or ?mt=")


class OccurrenceOut(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    kind: str
    state: str
    source: Source
    score: float
    title: str | None = None
    occurred_at: datetime
    received_at: datetime
    merged: bool


class RatingOut(BaseModel):
    model_config = ConfigDict(extra="ignore")
    score: int
    satisfied: bool
    comment: str
    actor: str
    at: datetime


class TicketDetail(TicketOut):
    description: str = ""
    history: list[HistoryOut]
    evidence: list[EvidenceOut]
    occurrences: list[OccurrenceOut]
    ratings: list[RatingOut] = Field(default_factory=list)


class TicketPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[TicketOut]


class WallOut(BaseModel):
    items: list[TicketOut]
    actions: dict[str, str] = Field(description="the workflow actions behind the wall's confirm and dismiss buttons")


class QueueOut(BaseModel):
    items: list[TicketOut]


class ActionIn(BaseModel):
    """Parameters of a workflow action; which ones an action needs is in docs/API.md."""

    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=2000, description="required by return, rework, void, false_alarm, request_extension")
    deadline: AwareDatetime | None = Field(None, description="request_extension / approve_extension: the new handle deadline")
    hours: float | None = Field(None, gt=0, le=24 * 365, description="request_extension: extend by this many hours")
    score: int | None = Field(None, ge=1, le=5, description="rate: 1–5")
    unit_code: str | None = Field(None, pattern=r"^\d{6,15}$", description="register / dispatch: send to this unit instead")
    into: int | None = Field(None, ge=1, description="merge: the ticket this one is merged into")
    attachments: list[str] = Field(default_factory=list, max_length=20)


class WallActionIn(BaseModel):
    note: str = Field("", max_length=2000)


class KpiStats(BaseModel):
    n: int
    mean: float | None
    p50: float | None
    p90: float | None


class KpiMetrics(BaseModel):
    cases: int
    open: int
    closed: int
    sign_on_time_rate: float | None = Field(description="按期签收率")
    close_on_time_rate: float | None = Field(description="按期结案率")
    rework_rate: float | None = Field(description="返工率")
    extension_rate: float | None = Field(description="延期率")
    escalated: int
    time_to_sign_min: KpiStats
    time_to_close_min: KpiStats
    ratings: int
    satisfaction_rate: float | None = Field(description="满意率")


class KpiGroup(KpiMetrics):
    key: str
    name: str = ""


class KpiOut(BaseModel):
    since: datetime | None
    until: datetime | None
    group_by: str | None
    overall: KpiMetrics
    groups: list[KpiGroup]


# -- helpers ------------------------------------------------------------------------------------
def scope_codes(principal: Principal) -> list[str] | None:
    """The grid codes the service filters on (None: every grid)."""
    return None if principal.scope is None else list(principal.grids)


def _names(rt: ApiRuntime, item: dict) -> dict:
    grid = rt.grids.get(item.get("grid_code", ""))
    cat = rt.cases.policy.by_code.get(item.get("category", ""))
    item = dict(item)
    item["grid_name"] = grid.name if grid else ""
    item["category_name"] = cat.name if cat else ""
    return item


def _evidence(ticket_id: int, evidence: list[dict]) -> list[dict]:
    return [{"kind": e.get("kind", "file"), "content_type": e.get("content_type", "application/octet-stream"),
             "url": f"/tickets/{ticket_id}/evidence/{i}"} for i, e in enumerate(evidence)]


def _snapshot(ticket_id: int, evidence: list[dict]) -> str | None:
    for i, e in enumerate(evidence):
        if str(e.get("content_type", "")).startswith("image/"):
            return f"/tickets/{ticket_id}/evidence/{i}"
    return None


def summary_out(rt: ApiRuntime, item: dict, principal: Principal) -> TicketOut:
    item = _names(rt, item)
    item["allowed_actions"] = rt.cases.allowed_actions(item, principal.role) if principal.can("tickets:act") else []
    return TicketOut.model_validate(item)


def detail_out(rt: ApiRuntime, item: dict, principal: Principal) -> TicketDetail:
    item = _names(rt, item)
    evidence = item.get("evidence") or []
    item["snapshot"] = _snapshot(item["id"], evidence)
    item["evidence"] = _evidence(item["id"], evidence)
    item["history"] = [{**h, "from_status": h.get("from"), "to_status": h.get("to")} for h in item.get("history", [])]
    item["allowed_actions"] = rt.cases.allowed_actions(item, principal.role) if principal.can("tickets:act") else []
    return TicketDetail.model_validate(item)


def _hidden(principal: Principal) -> HTTPException:
    """Not found or not visible: 404 only for callers who see every grid, otherwise the one 403."""
    if principal.scope is None:
        return HTTPException(status.HTTP_404_NOT_FOUND, "no such ticket")
    return forbidden()


def load_visible(rt: ApiRuntime, ref: str, principal: Principal) -> dict:
    try:
        return rt.cases.get_ticket(ref, grids=scope_codes(principal))
    except (TicketNotFound, NotVisible):
        raise _hidden(principal) from None


def act(request: Request, rt: Any, ref: str, action: str, principal: Principal, body: ActionIn) -> TicketDetail:
    """Perform one workflow action after the role check, map the service's errors, and audit it."""
    spec = lifecycle.ACTIONS.get(action)
    role_ok = (action in ("merge", "unmerge") and principal.role in ("dispatcher", "admin")) or (
        spec is not None and principal.role in spec.roles and action not in ("escalate", "clear", "auto_close"))
    if not principal.can("tickets:act") or not role_ok:
        # Same answer as an invisible ticket; checked after visibility so a 409 can't reveal existence either.
        load_visible(rt, ref, principal)
        raise forbidden()
    params: dict[str, Any] = {}
    if body.deadline is not None:
        params["deadline"] = body.deadline
    if body.hours is not None:
        params["hours"] = body.hours
    if body.score is not None:
        params["score"] = body.score
    if body.unit_code is not None:
        params["unit_code"] = body.unit_code
    if action == "merge":
        if body.into is None:
            raise HTTPException(422, "into: merge needs the ticket to merge into")
        params["into"] = body.into
    try:
        out = rt.cases.transition(ref, action, principal.username, body.note, body.attachments or None,
                                  role=principal.role, grids=scope_codes(principal), **params)
    except (TicketNotFound, NotVisible):
        raise _hidden(principal) from None
    except TransitionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except (ValueError, KeyError) as exc:
        raise HTTPException(422, str(exc).strip("'\"")) from None
    request.app.state.audit.record(principal.username, f"ticket.{action}", f"ticket:{out['id']}",
                                   number=out.get("number"), status=out.get("status"), note=body.note[:200])
    return detail_out(rt, out, principal)


# -- endpoints ----------------------------------------------------------------------------------
@router.get("/tickets", response_model=TicketPage, responses=errors(401, 403, 422),
            summary="Tickets in the caller's grids, newest first, filtered by grid, status, category and time")
def list_tickets(
    grid: str | None = Query(None, pattern=r"^\d{6,15}$", description="grid code of any level"),
    status_: list[str] | None = Query(None, alias="status", description="repeat for several statuses"),
    category: str | None = Query(None, pattern=r"^\d{2,8}$", description="category code or prefix (大类)"),
    since: AwareDatetime | None = Query(None, description="created at or after (ISO-8601 with offset)"),
    until: AwareDatetime | None = Query(None, description="created before"),
    q: str | None = Query(None, max_length=100, description="text in title, case number or address"),
    open_: bool = Query(False, alias="open", description="only open tickets"),
    offset: int = Query(0, ge=0, le=1_000_000),
    limit: int = Query(50, ge=1, le=500),
    principal: Principal = Depends(require("tickets:read")),
    rt: ApiRuntime = Depends(runtime),
) -> TicketPage:
    codes = scope_codes(principal)
    if grid is not None:
        if principal.sees_grid(grid):
            codes = [grid]
        elif codes is not None:  # an ancestor of the caller's grids: narrow to their codes below it
            codes = [c for c in codes if c.startswith(grid)]
    if status_ is not None:
        status_ = [s for s in status_ if s][:20] or None
    page = rt.cases.list_tickets(grids=codes, status=status_, category=category, since=since, until=until, text=q,
                                 open_only=open_, offset=offset, limit=limit)
    return TicketPage(total=page.total, offset=page.offset, limit=page.limit,
                      items=[summary_out(rt, t, principal) for t in page.items])


@router.get("/tickets/{ref}", response_model=TicketDetail, responses=errors(401, 403, 404, 422),
            summary="One ticket (id or case number) with history, evidence and the caller's allowed actions")
def get_ticket(ref: str = PathParam(pattern=TICKET_REF), principal: Principal = Depends(require("tickets:read")),
               rt: ApiRuntime = Depends(runtime)) -> TicketDetail:
    return detail_out(rt, load_visible(rt, ref, principal), principal)


@router.post("/tickets/{ref}/actions/{action}", response_model=TicketDetail, responses=errors(401, 403, 404, 409, 413, 422),
             summary="Perform a workflow action (sign, start, feedback, request_extension, verify, close, …)")
def ticket_action(request: Request, ref: str = PathParam(pattern=TICKET_REF),
                  action: str = PathParam(pattern=r"^[a-z_]{1,32}$"), body: ActionIn | None = None,
                  principal: Principal = Depends(require("tickets:act")), rt: ApiRuntime = Depends(runtime)) -> TicketDetail:
    return act(request, rt, ref, action, principal, body or ActionIn())


@router.get("/tickets/{ref}/evidence/{index}", response_class=FileResponse, responses={
    200: {"content": {"image/jpeg": {}, "application/octet-stream": {}}, "description": "the evidence file"},
    **errors(401, 403, 404, 422, 503)}, summary="An evidence file of a ticket (same access rule as the ticket)")
def evidence_file(ref: str = PathParam(pattern=TICKET_REF), index: int = PathParam(ge=0, le=10_000),
                  principal: Principal = Depends(require_media("tickets:read")), rt: ApiRuntime = Depends(runtime)) -> Response:
    ticket = load_visible(rt, ref, principal)
    return evidence_response(rt, ticket.get("evidence") or [], index)


def evidence_response(rt: ApiRuntime, items: list[dict], index: int) -> Response:
    """Evidence item ``index`` of a ticket or an activity record, read through the deployment's evidence store.

    Any API node serves it, whatever host stored it (S3); a key outside the store (``../``) is refused by
    ``ingest.blobs.check_key`` as if absent. The local store's files go out as files (range requests for clips).
    """
    if index >= len(items):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such evidence")
    store, key = rt.evidence_store, str(items[index].get("path", ""))
    media = items[index].get("content_type") or "application/octet-stream"
    headers = {"Cache-Control": "private, max-age=300"}
    try:
        path = store.local_path(key)
        if path is not None:
            return FileResponse(path, media_type=media, headers=headers)
        return Response(store.get(key), media_type=media, headers=headers)
    except (BadKey, BlobNotFound):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such evidence") from None
    except BlobError as exc:
        log.warning("evidence %s not readable: %s", key, exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "evidence store unavailable, try again") from None


@router.get("/wall", response_model=WallOut, responses=errors(401, 403, 422),
            summary="The event wall: reported events awaiting an operator's confirm or dismiss, with snapshots")
def wall(limit: int = Query(50, ge=1, le=200), principal: Principal = Depends(require("wall")),
         rt: ApiRuntime = Depends(runtime)) -> WallOut:
    page = rt.cases.list_tickets(grids=scope_codes(principal), status=list(WALL_STATUSES), limit=limit)
    items = []
    for t in page.items:
        try:
            detail = rt.cases.get_ticket(t["id"])
        except TicketNotFound:
            continue
        out = summary_out(rt, t, principal)
        out.snapshot = _snapshot(t["id"], detail.get("evidence") or [])
        items.append(out)
    return WallOut(items=items, actions={"confirm": WALL_CONFIRM, "dismiss": WALL_DISMISS})


@router.post("/wall/{ref}/confirm", response_model=TicketDetail, responses=errors(401, 403, 404, 409, 422),
             summary="Confirm an event: the ticket is registered and dispatched to its grid's duty queue")
def wall_confirm(request: Request, ref: str = PathParam(pattern=TICKET_REF), body: WallActionIn | None = None,
                 principal: Principal = Depends(require("wall")), rt: ApiRuntime = Depends(runtime)) -> TicketDetail:
    return act(request, rt, ref, WALL_CONFIRM, principal, ActionIn(note=(body.note if body else "") or "监控室核实，确认派遣"))


@router.post("/wall/{ref}/dismiss", response_model=TicketDetail, responses=errors(401, 403, 404, 409, 422),
             summary="Dismiss an event as a false alarm (teaches suppression for that camera, zone and kind)")
def wall_dismiss(request: Request, ref: str = PathParam(pattern=TICKET_REF), body: WallActionIn | None = None,
                 principal: Principal = Depends(require("wall")), rt: ApiRuntime = Depends(runtime)) -> TicketDetail:
    return act(request, rt, ref, WALL_DISMISS, principal, ActionIn(note=(body.note if body else "") or "监控室核实为误报"))


@router.get("/queue", response_model=QueueOut, responses=errors(401, 403, 422),
            summary="The duty queue of the caller's grids: dispatched, signed and in-hand tickets, most urgent first")
def queue(limit: int = Query(200, ge=1, le=500), principal: Principal = Depends(require("queue")),
          rt: ApiRuntime = Depends(runtime)) -> QueueOut:
    codes = scope_codes(principal)
    if codes is None:
        codes = [g.code for g in rt.grids.level("district")]
    items = rt.cases.queue_for(codes, include_below=True, limit=limit)
    return QueueOut(items=[summary_out(rt, t, principal) for t in items])


@router.get("/kpis", response_model=KpiOut, responses=errors(401, 403, 422),
            summary="Case KPIs (按期签收率, 按期结案率, 返工率, 延期率, times, 满意率) over the caller's grids")
def kpis(since: AwareDatetime | None = Query(None), until: AwareDatetime | None = Query(None),
         group_by: Literal["grid", "department", "level", "category", "month", "day", "unit"] | None = Query("grid"),
         principal: Principal = Depends(require("kpis")), rt: ApiRuntime = Depends(runtime)) -> KpiOut:
    data = rt.cases.kpis(since=since, until=until, grids=scope_codes(principal), group_by=group_by)
    groups = []
    for key, metrics in data.get("groups", {}).items():
        name = ""
        if group_by in ("grid", "unit"):
            g = rt.grids.get(key)
            name = g.name if g else ""
        elif group_by == "category":
            c = rt.cases.policy.by_code.get(key)
            name = c.name if c else ""
        groups.append({**metrics, "key": key, "name": name})
    return KpiOut.model_validate({**data, "groups": groups})
