"""Reports from people: resident login by SMS code, resident/patrol/hotline filing, following, rating, 回访.

Mount with ``app.include_router(reports.router, prefix="/api/v1")`` and serve the pages with
``reports.mount_pages(app)`` (``/report/`` resident, ``/report/hotline.html``, ``/report/patrol.html``).
The channel parts are the runtime's (``runtime.channels``, built by ``alerts.channels.build``); they answer
typed values (dataclasses), which this module turns into the response models of ``gateway.api.report_schemas``
(the same JSON as before the models, now documented in the OpenAPI schema).
Resident endpoints take ``Authorization: Bearer <resident token>`` from ``POST /reports/public/login``;
staff endpoints take the usual staff credentials. Phone numbers and names are masked for every role
except dispatcher and admin.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path as PathParam, Query, Request, UploadFile, status
from fastapi.encoders import jsonable_encoder
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from alerts.channels.build import Channels
from alerts.channels.categories import URGENCY_LABELS
from alerts.channels.hotline import HOTLINE_LINES
from alerts.channels.masking import mask_phone, normalize_phone
from alerts.channels.otp import OtpError, Resident
from alerts.channels.satisfaction import satisfaction
from alerts.channels.screening import ReportError
from alerts.channels.values import Photo, ReportInput, Staff
from gateway.api.deps import client_ip, current_principal, errors, require
from gateway.api.parts import ApiRuntime
from gateway.api.report_schemas import (FiledReportOut, GeocodeOut, PublicConfig, PublicGrids, RecategorizedOut, ReportPageOut,
                                        ResidentReportDetailOut, ResidentReportOut, RetrainOut, SatisfactionOut, StaffReportOut,
                                        SuggestionOut, SurveyAnswerOut, SurveyViewOut)
from gateway.auth import Principal

log = logging.getLogger("alerts.channels")
router = APIRouter(tags=["reports"])
# Ids are SQL integers: anything larger is a 422, not an overflow in the database driver.
ReportId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]
PAGES = Path(__file__).resolve().parent.parent / "console" / "report"


def mount_pages(app: Any) -> None:
    """Serve the resident, hotline and patrol pages under /report/."""
    app.mount("/report", StaticFiles(directory=PAGES, html=True), name="report")


def channels(request: Request) -> Channels:
    """The channel parts of this process's runtime (every runtime with the api role has them)."""
    rt: ApiRuntime = request.app.state.runtime
    found = rt.channels
    if found is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "report channels are not running in this process")
    return found


M = TypeVar("M", bound=BaseModel)


def _out(model: type[M], value: Any) -> M:
    """A channel's typed answer (dataclasses) as its response model. It goes through ``jsonable_encoder`` first so
    times are the ISO 8601 text the pages have always read (``IsoTime``, see ``report_schemas``)."""
    return model.model_validate(jsonable_encoder(value))


def _http(exc: ReportError | OtpError | ValueError) -> HTTPException:
    code = getattr(exc, "status", 422)
    headers = {"Retry-After": str(exc.retry_after)} if getattr(exc, "retry_after", None) else None
    return HTTPException(code, str(exc), headers=headers)


def resident(request: Request, ch: Channels = Depends(channels)) -> Resident:
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "请先用手机号登录", headers={"WWW-Authenticate": "Bearer"})
    try:
        return ch.tokens.verify(auth[7:].strip())
    except OtpError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


def staff_of(p: Principal) -> Staff:
    return Staff(p.username, p.role, tuple(p.grids), p.scope)


def require_role(*roles: str):
    def check(p: Principal = Depends(current_principal)) -> Principal:
        if p.role not in roles and p.role != "admin":
            raise HTTPException(status.HTTP_403_FORBIDDEN, "forbidden")
        return p
    check.__name__ = "require_" + "_".join(roles)
    return check


async def _photos(files: list[UploadFile] | None, ch: Channels) -> list[Photo]:
    out = []
    for f in files or []:
        if not f.filename and not f.size:
            continue
        data = await f.read(ch.cfg.photo_max_bytes + 1)
        out.append(Photo(f.filename or "photo", data))
    return out


# -- resident login -------------------------------------------------------------------------------
class OtpIn(BaseModel):
    phone: str = Field(max_length=20, examples=["13812341234"])


class OtpOut(BaseModel):
    sent: bool = True
    expires_in: int
    phone: str = Field(description="the number, masked")


class LoginIn(BaseModel):
    phone: str = Field(max_length=20)
    code: str = Field(max_length=10)


class LoginOut(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_in: int
    phone: str = Field(description="the number, masked")


@router.get("/reports/public/config", response_model=PublicConfig, responses=errors(503),
            summary="Categories, urgency levels and limits the report pages need")
def public_config(ch: Channels = Depends(channels)) -> PublicConfig:
    return PublicConfig.model_validate({
        "district": ch.gazetteer.district, "categories": ch.catalog.public(), "urgency": URGENCY_LABELS,
        "hotline_lines": list(HOTLINE_LINES), "max_photos": ch.cfg.max_photos, "photo_max_bytes": ch.cfg.photo_max_bytes,
        "min_text_chars": ch.cfg.min_text_chars, "max_text_chars": ch.cfg.max_text_chars})


@router.get("/reports/public/grids", response_model=PublicGrids, responses=errors(503),
            summary="Grid polygons for the resident's map (GeoJSON, WGS-84)")
def public_grids(ch: Channels = Depends(channels)) -> PublicGrids:
    return PublicGrids.model_validate(ch.core.parts.grids.to_geojson())


@router.post("/reports/public/otp", response_model=OtpOut, responses=errors(400, 422, 429),
             summary="Send a one-time login code by SMS")
def request_otp(body: OtpIn, request: Request, ch: Channels = Depends(channels)) -> OtpOut:
    try:
        ttl = ch.otp.request(body.phone, client_ip(request))
    except (OtpError, ValueError) as exc:
        raise _http(exc) from None
    return OtpOut(expires_in=ttl, phone=mask_phone(normalize_phone(body.phone)))


@router.post("/reports/public/login", response_model=LoginOut, responses=errors(401, 422),
             summary="Trade phone + code for a resident token")
def login(body: LoginIn, ch: Channels = Depends(channels)) -> LoginOut:
    try:
        who = ch.otp.verify(body.phone, body.code)
    except (OtpError, ValueError) as exc:
        raise _http(exc) from None
    return LoginOut(token=ch.tokens.issue(who), expires_in=ch.tokens.ttl, phone=who.masked)


@router.post("/reports/public/logout", status_code=204, responses=errors(401), summary="Revoke the resident token")
def logout(request: Request, _: Resident = Depends(resident), ch: Channels = Depends(channels)) -> None:
    ch.tokens.revoke(request.headers.get("authorization", "")[7:].strip())


# -- filing ---------------------------------------------------------------------------------------
@router.post("/reports/resident", response_model=FiledReportOut, responses=errors(401, 413, 422, 429, 503),
             summary="A resident files a report: text, photos and a point (WGS84 or GCJ02)")
async def file_resident(text: str = Form(..., max_length=5000), lon: float | None = Form(None), lat: float | None = Form(None),
                        crs: Literal["WGS84", "GCJ02", "BD09"] = Form("WGS84"), address: str | None = Form(None, max_length=300),
                        category: str | None = Form(None, max_length=8), name: str | None = Form(None, max_length=100),
                        wechat_openid: str | None = Form(None, max_length=128),
                        photos: list[UploadFile] | None = File(None), who: Resident = Depends(resident),
                        ch: Channels = Depends(channels)) -> FiledReportOut:
    inp = ReportInput(text=text, lon=lon, lat=lat, crs=crs, address=address, category=category or None, name=name,
                      wechat_openid=wechat_openid)
    try:
        return _out(FiledReportOut, ch.resident.file(inp, await _photos(photos, ch), resident_phone=who.phone))
    except (ReportError, ValueError) as exc:
        raise _http(exc) from None


@router.post("/reports/patrol", response_model=FiledReportOut, responses=errors(401, 403, 413, 422, 503),
             summary="A grid worker files what they found on patrol (采); signed by them when in their own grid")
async def file_patrol(text: str = Form(..., max_length=5000), lon: float = Form(...), lat: float = Form(...),
                      crs: Literal["WGS84", "GCJ02", "BD09"] = Form("WGS84"), address: str | None = Form(None, max_length=300),
                      category: str | None = Form(None, max_length=8), urgency: str | None = Form(None, max_length=16),
                      photos: list[UploadFile] | None = File(None),
                      p: Principal = Depends(require_role("grid_worker", "grid_leader")),
                      ch: Channels = Depends(channels)) -> FiledReportOut:
    inp = ReportInput(text=text, lon=lon, lat=lat, crs=crs, address=address, category=category or None, urgency=urgency or None)
    try:
        return _out(FiledReportOut, ch.patrol.file(inp, await _photos(photos, ch), staff=staff_of(p)))
    except (ReportError, ValueError) as exc:
        raise _http(exc) from None


@router.post("/reports/hotline", response_model=FiledReportOut, responses=errors(401, 403, 413, 422, 429, 503),
             summary="A dispatcher files a call or a front-desk visit (收): caller, callback number, address, category")
async def file_hotline(text: str = Form(..., max_length=5000), caller: str | None = Form(None, max_length=100),
                       phone: str | None = Form(None, max_length=20), line: str = Form("12345"),
                       address: str | None = Form(None, max_length=300), lon: float | None = Form(None),
                       lat: float | None = Form(None), crs: Literal["WGS84", "GCJ02", "BD09"] = Form("WGS84"),
                       category: str | None = Form(None, max_length=8), urgency: str | None = Form(None, max_length=16),
                       photos: list[UploadFile] | None = File(None),
                       p: Principal = Depends(require_role("dispatcher", "operator")),
                       ch: Channels = Depends(channels)) -> FiledReportOut:
    inp = ReportInput(text=text, name=caller, phone=phone, line=line, address=address, lon=lon, lat=lat, crs=crs,
                      category=category or None, urgency=urgency or None)
    try:
        return _out(FiledReportOut, ch.hotline.file(inp, await _photos(photos, ch), staff=staff_of(p)))
    except (ReportError, ValueError) as exc:
        raise _http(exc) from None


# -- following, adding, rating --------------------------------------------------------------------
class RatingIn(BaseModel):
    score: int = Field(ge=1, le=5)
    comment: str = Field("", max_length=500)
    resolved: bool | None = None


@router.get("/reports/mine", response_model=list[ResidentReportOut], responses=errors(401),
            summary="The resident's reports and the state of their cases")
def mine(who: Resident = Depends(resident), ch: Channels = Depends(channels)) -> list[ResidentReportOut]:
    return [_out(ResidentReportOut, r) for r in ch.resident.mine(who.phone)]


@router.get("/reports/mine/{report_id}", response_model=ResidentReportDetailOut, responses=errors(401, 404, 422),
            summary="One report with its case timeline")
def mine_one(report_id: ReportId, who: Resident = Depends(resident), ch: Channels = Depends(channels)) -> ResidentReportDetailOut:
    try:
        return _out(ResidentReportDetailOut, ch.resident.one(who.phone, report_id))
    except ReportError as exc:
        raise _http(exc) from None


@router.post("/reports/mine/{report_id}/info", response_model=ResidentReportDetailOut, responses=errors(401, 404, 409, 413, 422),
             summary="Add text and photos to an open case")
async def add_info(report_id: ReportId, text: str = Form(..., max_length=5000), photos: list[UploadFile] | None = File(None),
                   who: Resident = Depends(resident), ch: Channels = Depends(channels)) -> ResidentReportDetailOut:
    try:
        return _out(ResidentReportDetailOut, ch.resident.add_info(who.phone, report_id, text, await _photos(photos, ch)))
    except (ReportError, ValueError) as exc:
        raise _http(exc) from None


@router.post("/reports/mine/{report_id}/rating", response_model=SurveyAnswerOut, responses=errors(401, 404, 409, 422),
             summary="Rate a closed case (1–5)")
def rate(report_id: ReportId, body: RatingIn, who: Resident = Depends(resident), ch: Channels = Depends(channels)) -> SurveyAnswerOut:
    try:
        return _out(SurveyAnswerOut, ch.resident.rate(who.phone, report_id, body.score, body.comment, body.resolved))
    except (ReportError, ValueError) as exc:
        raise _http(exc) from None


@router.get("/reports/survey/{token}", response_model=SurveyViewOut, responses=errors(404, 422), summary="The 回访 survey behind an SMS link")
def get_survey(token: str, ch: Channels = Depends(channels)) -> SurveyViewOut:
    try:
        return _out(SurveyViewOut, ch.surveys.view(token[:64]))
    except ReportError as exc:
        raise _http(exc) from None


@router.post("/reports/survey/{token}", response_model=SurveyAnswerOut, responses=errors(404, 409, 410, 422),
             summary="Answer the 回访 survey")
def answer_survey(token: str, body: RatingIn, ch: Channels = Depends(channels)) -> SurveyAnswerOut:
    try:
        return _out(SurveyAnswerOut, ch.surveys.answer(token[:64], body.score, body.comment, body.resolved))
    except (ReportError, ValueError) as exc:
        raise _http(exc) from None


# -- staff tools ----------------------------------------------------------------------------------
class ClassifyIn(BaseModel):
    text: str = Field(min_length=1, max_length=5000)


class CategoryIn(BaseModel):
    category: str = Field(pattern=r"^\d{2,8}$")
    urgency: Literal["low", "normal", "high", "critical"] | None = None


@router.post("/reports/classify", response_model=SuggestionOut, responses=errors(401, 403, 422),
             summary="Suggested category and urgency for a text, with confidence")
def classify(body: ClassifyIn, _: Principal = Depends(require("tickets:act")), ch: Channels = Depends(channels)) -> SuggestionOut:
    return _out(SuggestionOut, ch.suggester.classify(body.text))


@router.get("/reports/geocode", response_model=GeocodeOut, responses=errors(401, 403, 422),
            summary="Address registry candidates for a free-text address (WGS-84)")
def geocode(q: str = Query(..., min_length=1, max_length=300), _: Principal = Depends(require("tickets:read")),
            ch: Channels = Depends(channels)) -> GeocodeOut:
    hits = ch.gazetteer.search(q)
    best = ch.gazetteer.geocode(q)
    return GeocodeOut.model_validate({"query": q, "match": best.to_dict() if best else None,
                                      "candidates": [h.to_dict() for h in hits]})


@router.get("/reports/satisfaction", response_model=SatisfactionOut, responses=errors(401, 403, 422),
            summary="满意率 from 回访 surveys per grid/unit/department/category")
def get_satisfaction(group_by: Literal["grid", "unit", "department", "category"] = "grid",
                     p: Principal = Depends(require("kpis")), ch: Channels = Depends(channels)) -> SatisfactionOut:
    return SatisfactionOut.model_validate(
        satisfaction(ch.core.parts.store, group_by=group_by, grids=None if p.scope is None else sorted(p.scope)))


@router.post("/reports/classifier/retrain", response_model=RetrainOut, responses=errors(401, 403),
             summary="Retrain the classifier on the seed plus all corrections now")
def retrain(_: Principal = Depends(require_role("dispatcher")), ch: Channels = Depends(channels)) -> RetrainOut:
    return RetrainOut(examples=ch.suggester.retrain())


@router.get("/reports", response_model=ReportPageOut, responses=errors(401, 403, 422),
            summary="Reports in the caller's grids (phones and names masked except for dispatcher/admin)")
def list_reports(channel: Literal["resident", "patrol", "hotline"] | None = None, ticket_id: int | None = Query(None, ge=1, le=2**63 - 1),
                 offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=200),
                 p: Principal = Depends(require("tickets:read")), ch: Channels = Depends(channels)) -> ReportPageOut:
    return _out(ReportPageOut, ch.staff.list(staff_of(p), channel=channel, ticket_id=ticket_id, offset=offset, limit=limit))


@router.get("/reports/{report_id}", response_model=StaffReportOut, responses=errors(401, 403, 404, 422),
            summary="One report (masked per role)")
def get_report(report_id: ReportId, p: Principal = Depends(require("tickets:read")), ch: Channels = Depends(channels)) -> StaffReportOut:
    try:
        return _out(StaffReportOut, ch.staff.get(report_id, staff_of(p)))
    except ReportError as exc:
        raise _http(exc) from None


@router.post("/reports/{report_id}/category", response_model=RecategorizedOut, responses=errors(401, 403, 404, 422),
             summary="Correct a report's category/urgency (stored as a correction the classifier learns from)")
def recategorize(report_id: ReportId, body: CategoryIn, p: Principal = Depends(require_role("dispatcher")),
                 ch: Channels = Depends(channels)) -> RecategorizedOut:
    try:
        return _out(RecategorizedOut, ch.staff.recategorize(report_id, body.category, body.urgency, staff_of(p)))
    except ReportError as exc:
        raise _http(exc) from None
