"""Health, status, Prometheus metrics, console settings and the audit trail."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from gateway.api.deps import current_principal, errors, forbidden, runtime
from gateway.auth import Principal
from gateway.api.parts import ApiRuntime

router = APIRouter(tags=["system"])


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    redis: bool
    store: bool


class StatusOut(BaseModel):
    """``Runtime.status()`` as it is; keys beyond these depend on the parts running."""

    model_config = ConfigDict(extra="allow")
    name: str
    model_status: str | None = Field(None, description="'motion-only: …' when the detector model could not load")
    services: dict[str, Any] = Field(default_factory=dict)
    cameras: Any = None
    queues: dict[str, Any] = Field(default_factory=dict)
    roles: dict[str, Any] = Field(default_factory=dict, description="role processes as their supervisors report them: "
                                  "state, pid, host, restarts, last exit code")


class SettingsOut(BaseModel):
    name: str
    language: Literal["zh", "en"]
    tile_url: str | None
    timezone: str


class AuditEntry(BaseModel):
    at: str
    who: str
    action: str
    target: str
    details: dict[str, Any] | None = None


class AuditOut(BaseModel):
    items: list[AuditEntry]


@router.get("/healthz", response_model=HealthOut, responses={503: {"model": HealthOut, "description": "a dependency is down"}},
            summary="Liveness and dependencies (no authentication)")
def healthz(response: Response, rt: ApiRuntime = Depends(runtime)) -> HealthOut:
    try:
        redis_ok = bool(rt.redis.ping())
    except Exception:
        redis_ok = False
    try:
        with rt.store.read() as s:
            s.execute(text("SELECT 1"))
        store_ok = True
    except Exception:
        store_ok = False
    ok = redis_ok and store_ok
    if not ok:
        response.status_code = 503
    return HealthOut(status="ok" if ok else "degraded", redis=redis_ok, store=store_ok)


def livez(request: Request) -> JSONResponse:
    """Kubernetes liveness (no authentication): this process and its roles' loops run. Names of failing checks only."""
    result = request.app.state.probes.live()
    return JSONResponse(result.body(), status_code=200 if result.ok else 503, headers={"Cache-Control": "no-store"})


def readyz(request: Request) -> JSONResponse:
    """Kubernetes readiness (no authentication): started, and Redis / SQL / broker answer. Names of failing checks only."""
    result = request.app.state.probes.ready()
    return JSONResponse(result.body(), status_code=200 if result.ok else 503, headers={"Cache-Control": "no-store"})


@router.get("/settings", response_model=SettingsOut, summary="What the console needs before login (no authentication)")
def settings(rt: ApiRuntime = Depends(runtime)) -> SettingsOut:
    dep = rt.deployment
    return SettingsOut(name=dep.name, language=dep.gateway.language, tile_url=dep.gateway.tile_url, timezone=dep.timezone)


@router.get("/status", response_model=StatusOut, responses=errors(401, 403),
            summary="Services, detector model status, cameras and queue depths")
def status(principal: Principal = Depends(current_principal), rt: ApiRuntime = Depends(runtime)) -> StatusOut:
    if not principal.can("status"):
        raise forbidden()
    data = dict(rt.status())
    data.setdefault("name", rt.deployment.name)
    return StatusOut.model_validate(data)


@router.get("/metrics", response_class=Response, summary="Prometheus metrics (text exposition format)",
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "metrics"}})
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/audit", response_model=AuditOut, responses=errors(401, 403, 422), summary="Recent audited actions (admin)")
def audit(request: Request, limit: int = Query(100, ge=1, le=1000), principal: Principal = Depends(current_principal)) -> AuditOut:
    if principal.role != "admin":
        raise forbidden()
    return AuditOut.model_validate({"items": request.app.state.audit.recent(limit)})
