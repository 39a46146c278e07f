"""The FastAPI application: REST API under /api/v1, the live WebSocket, WebRTC, metrics and the web console.

``create_app(runtime)`` only reads the runtime the lead's ``gateway.runtime`` builds; it never builds
parts itself, so the same app serves the embedded demo and a gateway-only process.
"""
from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alerts.streams import StreamKeys
from gateway.api.parts import ApiRuntime
from gateway.api.ratelimit import SharedLimit, shared_storage
from gateway.audit import AuditLog
from gateway.auth import Authenticator
from gateway.metrics import Metrics

log = logging.getLogger(__name__)

CONSOLE_DIR = Path(__file__).resolve().parent / "console"
API = "/api/v1"


class BodyLimit:
    """Refuse request bodies above ``limit`` bytes with 413, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    await JSONResponse({"detail": "request body too large"}, status_code=413)(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except _TooLarge:
            if not started:
                await JSONResponse({"detail": "request body too large"}, status_code=413)(scope, receive, send)


class _TooLarge(Exception):
    pass


def _csp(*tile_urls: str | None) -> str:
    img = "'self' data: blob:"
    for tile_url in tile_urls:
        if not tile_url:
            continue
        parts = urlsplit(tile_url.replace("{s}", "a"))
        if parts.scheme and parts.netloc:
            img += f" {parts.scheme}://{parts.netloc.replace('a.', '*.', 1) if '{s}' in tile_url else parts.netloc}"
    return (f"default-src 'self'; img-src {img}; media-src 'self' blob:; connect-src 'self' ws: wss:; "
            "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def create_app(runtime: ApiRuntime, probes: Any = None) -> FastAPI:
    """The gateway of one GridWatch process, over a runtime built elsewhere (``gateway.runtime``).

    ``probes``: the process's ``gateway.probes.Probes`` (one is made when not given)."""
    from gateway import live, webrtc
    from gateway.api import alarms, auth as auth_api, cameras, devices, grids, profiles, reports, system, tickets
    from gateway.api import acks, analysis as analysis_api, map as map_api

    dep = runtime.deployment
    cfg = dep.gateway
    keys: StreamKeys = runtime.keys
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.webrtc.close()

    app = FastAPI(
        lifespan=lifespan,
        title="GridWatch API",
        version="1",
        summary="Cameras, one-key alarms and sensors to geolocated, routed, escalated grid tickets.",
        description=(
            "REST API of a GridWatch command centre. Authenticate with `POST /api/v1/auth/token` (OAuth2 password flow) "
            "and send `Authorization: Bearer <access_token>`; integrators may send `X-API-Key` instead. "
            "Alarm presses are signed by the device (see docs/API.md). Errors are `{\"detail\": \"...\"}`."
        ),
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        redoc_url=None,
        license_info={"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
    )
    app.state.runtime = runtime
    app.state.keys = keys
    app.state.auth = Authenticator(dep, runtime.grids, runtime.redis, keys.prefix)
    app.state.audit = AuditLog(dep.run_dir / "audit.jsonl")
    app.state.metrics = Metrics(runtime)
    limits = shared_storage(dep.services.redis_url, dep.services.stream_prefix)  # one budget for every API node
    app.state.login_limit = SharedLimit(cfg.login_per_minute, limits, "login")
    app.state.alarm_limit = SharedLimit(cfg.alarm_per_minute, limits, "alarm")
    app.state.webrtc = webrtc.LiveViews(runtime)
    csp = _csp(cfg.tile_url, *(t.url for t in cfg.map_tiles))

    @app.middleware("http")
    async def observe(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        app.state.metrics.observe(request.method, path, response.status_code, started)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if not request.url.path.startswith(f"{API}/docs"):
            response.headers.setdefault("Content-Security-Policy", csp)
        if request.url.path.startswith(API):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    app.add_middleware(BodyLimit, limit=cfg.max_body_bytes)  # type: ignore[arg-type]
    if cfg.cors_origins:  # other web apps of the command centre calling this API from a browser
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=cfg.cors_origins, allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type", "X-API-Key"])

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "invalid"),
                             "errors": [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()[:20]]},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail if isinstance(exc.detail, str) else str(exc.detail)},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    for module in (auth_api, grids, tickets, cameras, devices, profiles, alarms, system, map_api, acks, analysis_api):
        app.include_router(module.router, prefix=API)
    app.include_router(live.router, prefix=API)
    app.include_router(webrtc.router, prefix=API)
    app.include_router(reports.router, prefix=API)
    from gateway.api import review  # the review page and camera timeline (alerts vs activity)
    app.include_router(review.router, prefix=API)
    reports.mount_pages(app)
    # Where probes and scrapers look by convention: liveness and readiness (gateway.probes), metrics.
    from gateway.probes import Probes

    app.state.probes = probes or Probes(runtime)
    app.add_api_route("/healthz", system.livez, methods=["GET"], include_in_schema=False)
    app.add_api_route("/readyz", system.readyz, methods=["GET"], include_in_schema=False)
    app.add_api_route("/metrics", system.metrics, methods=["GET"], include_in_schema=False)

    app.mount("/static", StaticFiles(directory=CONSOLE_DIR / "static"), name="static")
    app.mount("/vendor", StaticFiles(directory=CONSOLE_DIR / "vendor"), name="vendor")  # Leaflet, ECharts, the CJK font

    @app.get("/", include_in_schema=False)
    def console() -> FileResponse:
        return FileResponse(CONSOLE_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    return app
