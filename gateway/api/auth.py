"""Log in (OAuth2 password flow), refresh, log out, and who am I."""
from __future__ import annotations

import math

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from gateway.api.deps import authenticator, client_ip, current_principal, errors, oauth2
from gateway.auth import PERMISSIONS, Authenticator, AuthError, Principal

router = APIRouter(tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the access token is valid")
    refresh_expires_in: int


class RefreshIn(BaseModel):
    refresh_token: str = Field(max_length=4096)


class LogoutIn(BaseModel):
    refresh_token: str | None = Field(None, max_length=4096)


class MeOut(BaseModel):
    username: str
    role: str
    display_name: str
    grids: list[str] = Field(description="grid codes configured for the user (everything below them is visible)")
    all_grids: bool = Field(description="true when the user sees every grid (admin)")
    permissions: list[str]


def _tokens(auth: Authenticator, username: str) -> TokenOut:
    pair = auth.issue(username)
    return TokenOut(access_token=pair.access_token, refresh_token=pair.refresh_token,
                    expires_in=pair.expires_in, refresh_expires_in=pair.refresh_expires_in)


@router.post("/auth/token", response_model=TokenOut, responses=errors(401, 422, 429),
             summary="Log in with username and password (OAuth2 password flow)")
def login(request: Request, form: OAuth2PasswordRequestForm = Depends(),
          auth: Authenticator = Depends(authenticator)) -> TokenOut:
    wait = request.app.state.login_limit.take(client_ip(request))
    if wait:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many login attempts",
                            headers={"Retry-After": str(math.ceil(wait))})
    try:
        principal = auth.check_password(form.username[:128], form.password[:256])
    except AuthError as exc:
        request.app.state.audit.record(form.username[:64], "login_failed", "auth", ip=client_ip(request))
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    request.app.state.audit.record(principal.username, "login", "auth", ip=client_ip(request))
    return _tokens(auth, principal.username)


@router.post("/auth/refresh", response_model=TokenOut, responses=errors(401, 422),
             summary="Trade a refresh token for a new pair (the old refresh token is revoked)")
def refresh(body: RefreshIn, auth: Authenticator = Depends(authenticator)) -> TokenOut:
    try:
        pair = auth.refresh(body.refresh_token)
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    return TokenOut(access_token=pair.access_token, refresh_token=pair.refresh_token,
                    expires_in=pair.expires_in, refresh_expires_in=pair.refresh_expires_in)


@router.post("/auth/logout", status_code=204, responses=errors(401, 422),
             summary="Revoke the access token used and, when given, the refresh token")
def logout(request: Request, body: LogoutIn | None = None, token: str | None = Depends(oauth2),
           principal: Principal = Depends(current_principal), auth: Authenticator = Depends(authenticator)) -> None:
    if token:
        auth.revoke(token)
    if body and body.refresh_token:
        auth.revoke(body.refresh_token)
    request.app.state.audit.record(principal.username, "logout", "auth")


class MediaTokenOut(BaseModel):
    media_token: str = Field(description="send as ?mt= on snapshot, evidence and MJPEG URLs")
    expires_in: int


@router.post("/auth/media-token", response_model=MediaTokenOut, responses=errors(401),
             summary="A 5-minute token for <img>/<video> URLs, which cannot carry an Authorization header")
def media_token(principal: Principal = Depends(current_principal), auth: Authenticator = Depends(authenticator)) -> MediaTokenOut:
    return MediaTokenOut(media_token=auth.media_token(principal.username), expires_in=300)


@router.get("/me", response_model=MeOut, responses=errors(401), summary="The caller, their role, grids and permissions")
def me(principal: Principal = Depends(current_principal)) -> MeOut:
    return MeOut(username=principal.username, role=principal.role, display_name=principal.display_name,
                 grids=list(principal.grids), all_grids=principal.scope is None,
                 permissions=sorted(PERMISSIONS.get(principal.role, frozenset())))
