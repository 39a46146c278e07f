"""Dependencies every router shares: the runtime, the caller, permission checks, and the error shapes.

Errors are always ``{"detail": "..."}``. A request for something outside the caller's grids gets the
same 403 body as one for an id that does not exist, so the answer never tells which is the case.
"""
from __future__ import annotations

from typing import Any, Callable

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from pydantic import BaseModel

from gateway.api.parts import ApiRuntime
from gateway.auth import Authenticator, AuthError, Principal

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False, description="JWT access token")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="integrator API key")

FORBIDDEN = "forbidden"


class ErrorOut(BaseModel):
    """Every error body."""

    detail: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses of an endpoint, for ``responses=``."""
    text = {
        400: "bad request", 401: "missing, invalid, expired or revoked credentials",
        403: "not allowed, or not in the caller's grids (same body either way)", 404: "not found",
        409: "conflicts with the current state", 413: "request body too large", 422: "invalid parameters or body",
        429: "rate limited; see Retry-After", 503: "the part that serves this is not running",
    }
    return {c: {"model": ErrorOut, "description": text.get(c, "error")} for c in codes}


def runtime(request: Request) -> ApiRuntime:
    return request.app.state.runtime


def authenticator(request: Request) -> Authenticator:
    return request.app.state.auth


def current_principal(request: Request, token: str | None = Depends(oauth2),
                      api_key: str | None = Depends(api_key_header)) -> Principal:
    auth: Authenticator = request.app.state.auth
    try:
        if api_key:
            principal = auth.check_api_key(api_key)
        elif token:
            principal = auth.verify_access(token)
        else:
            raise AuthError("not authenticated")
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    request.state.principal = principal
    return principal


def media_principal(request: Request, token: str | None = Depends(oauth2),
                    api_key: str | None = Depends(api_key_header)) -> Principal:
    """For media URLs: the usual credentials, or a media token in ``?mt=`` (see Authenticator.media_token)."""
    mt = request.query_params.get("mt")
    if mt and not token and not api_key:
        try:
            principal = request.app.state.auth.verify_media(mt)
        except AuthError as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
        request.state.principal = principal
        return principal
    return current_principal(request, token, api_key)


def _requiring(permission: str, who: Callable[..., Principal], name: str) -> Callable[..., Principal]:
    def check(principal: Principal = Depends(who)) -> Principal:
        if not principal.can(permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
        return principal

    check.__name__ = f"{name}_{permission.replace(':', '_')}"
    return check


def require_media(permission: str) -> Callable[..., Principal]:
    """``require`` for media URLs: an <img> or <video> cannot send headers, so a media token in ``?mt=`` also counts."""
    return _requiring(permission, media_principal, "require_media")


def require(permission: str) -> Callable[..., Principal]:
    """A dependency that admits callers whose role holds ``permission``."""
    return _requiring(permission, current_principal, "require")


def forbidden() -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)


def unavailable(what: str) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"{what} is not running in this process")


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
