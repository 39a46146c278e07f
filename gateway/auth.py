"""Who is calling, and what they may see: passwords, JWTs, API keys, roles and grid scope.

Users come from ``deployment.gateway.users``. Demo accounts carry plain passwords; they are bcrypt-hashed
once at start-up and the plain text is never kept or logged. Access tokens are short-lived JWTs; refresh
tokens are longer-lived JWTs that rotate on every use. Both carry a ``jti`` so logout (and a used refresh
token) can be revoked in Redis, which every process of a deployment shares. Integrators may instead send an
``X-API-Key`` (compared by SHA-256, constant time). A principal's grid scope is every grid below the codes
configured for the user (``GridIndex.within``); an admin sees everything.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Literal

import bcrypt
import jwt
import redis

from alerts.grids import GridIndex
from ingest.redis_connect import hash_tag
from gateway.config import Deployment, User

log = logging.getLogger(__name__)

Role = Literal["operator", "dispatcher", "grid_worker", "grid_leader", "supervisor", "admin", "integrator", "device"]
ALGORITHM = "HS256"

# What each role may do besides reading tickets in its own grids. Kept here, in one table, so the
# API, the console (via /me) and the docs agree.
PERMISSIONS: dict[str, frozenset[str]] = {
    "operator": frozenset({"tickets:read", "tickets:act", "wall", "cameras:read", "live", "status"}),
    "dispatcher": frozenset({"tickets:read", "tickets:act", "wall", "cameras:read", "live", "queue", "kpis", "status", "merge"}),
    "grid_worker": frozenset({"tickets:read", "tickets:act", "queue", "live", "status"}),
    "grid_leader": frozenset({"tickets:read", "tickets:act", "queue", "kpis", "live", "status", "cameras:read"}),
    "supervisor": frozenset({"tickets:read", "tickets:act", "kpis", "cameras:read", "live", "status"}),
    "admin": frozenset({"tickets:read", "tickets:act", "wall", "cameras:read", "cameras:write", "devices:read",
                        "devices:write", "live", "queue", "kpis", "status", "merge"}),
    "integrator": frozenset({"cameras:read", "cameras:write", "devices:read", "devices:write", "status"}),
    "device": frozenset(),
}


class AuthError(Exception):
    """Credentials are missing, wrong, expired or revoked (→ 401)."""


@dataclass(frozen=True)
class Principal:
    """The caller of one request, resolved from a token or an API key."""

    username: str
    role: str
    display_name: str = ""
    grids: tuple[str, ...] = ()
    scope: frozenset[str] | None = field(default=None, repr=False)  # None: every grid
    via: Literal["token", "api_key"] = "token"

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())

    def sees_grid(self, code: str | None) -> bool:
        if self.scope is None:
            return True
        return code is not None and code in self.scope


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_secret(deployment: Deployment) -> str:
    """The JWT key: configured, or generated once per run directory (kept 0600) so restarts keep sessions."""
    if deployment.gateway.secret_key:
        return deployment.gateway.secret_key
    path = deployment.run_dir / "gateway_secret"
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key)
    return key


class Authenticator:
    """Checks passwords, issues and verifies tokens, revokes them, and resolves grid scope."""

    def __init__(self, deployment: Deployment, grids: GridIndex, client: redis.Redis, prefix: str, *,
                 secret: str | None = None):
        cfg = deployment.gateway
        self._grids = grids
        self._redis = client
        self._prefix = prefix
        self._secret = secret or load_secret(deployment)
        self.access_ttl = cfg.token_ttl_s
        self.refresh_ttl = cfg.refresh_ttl_s
        self._users: dict[str, User] = {u.username: u for u in cfg.users}
        self._hashes: dict[str, bytes] = {}
        self._api_keys: dict[str, str] = {}
        for user in cfg.users:
            if user.password_hash:
                self._hashes[user.username] = user.password_hash.encode()
            elif user.password:
                self._hashes[user.username] = bcrypt.hashpw(user.password.encode(), bcrypt.gensalt(cfg.bcrypt_rounds))
            if user.api_key_sha256:
                self._api_keys[user.api_key_sha256] = user.username
            elif user.api_key:
                self._api_keys[_sha256(user.api_key)] = user.username
        # A fixed dummy hash so an unknown user costs as much time as a wrong password.
        self._dummy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(cfg.bcrypt_rounds))
        log.info("auth: %d users, %d API keys", len(self._users), len(self._api_keys))

    # -- principals -----------------------------------------------------------------------------
    def principal(self, username: str, via: Literal["token", "api_key"] = "token") -> Principal:
        user = self._users.get(username)
        if user is None:
            raise AuthError("unknown user")
        scope: frozenset[str] | None
        if user.role == "admin":
            scope = None
        else:
            codes: set[str] = set()
            for code in user.grids:
                codes |= self._grids.within(code)
            scope = frozenset(codes)
        return Principal(user.username, user.role, user.display_name, tuple(user.grids), scope, via)

    def users(self) -> list[User]:
        return list(self._users.values())

    # -- passwords and API keys -----------------------------------------------------------------
    def check_password(self, username: str, password: str) -> Principal:
        hashed = self._hashes.get(username)
        ok = bcrypt.checkpw(password.encode("utf-8")[:72], hashed or self._dummy)
        if not ok or hashed is None:
            raise AuthError("wrong username or password")
        return self.principal(username)

    def check_api_key(self, key: str) -> Principal:
        digest = _sha256(key)
        for known, username in self._api_keys.items():
            if hmac.compare_digest(known, digest):
                return self.principal(username, via="api_key")
        raise AuthError("unknown API key")

    # -- tokens ---------------------------------------------------------------------------------
    def _encode(self, username: str, typ: str, ttl: int) -> str:
        now = int(time.time())
        claims = {"sub": username, "typ": typ, "jti": uuid.uuid4().hex, "iat": now, "exp": now + ttl}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def issue(self, username: str) -> TokenPair:
        return TokenPair(self._encode(username, "access", self.access_ttl), self._encode(username, "refresh", self.refresh_ttl),
                         self.access_ttl, self.refresh_ttl)

    def _decode(self, token: str, typ: str) -> dict:
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "jti", "typ"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.PyJWTError:
            raise AuthError("invalid token") from None
        if claims.get("typ") != typ:
            raise AuthError("invalid token")
        if self._redis.exists(self._revoked_key(claims["jti"])):
            raise AuthError("token revoked")
        return claims

    def media_token(self, username: str, ttl: int = 300) -> str:
        """A short-lived token that only the read-only media endpoints (snapshots, evidence, MJPEG) accept.

        ``<img>`` and ``<video>`` cannot send an Authorization header, so these URLs carry this token in the
        query string instead of the access token: if a URL leaks (a log, a copied link) it opens pictures
        for a few minutes and nothing else.
        """
        return self._encode(username, "media", ttl)

    def verify_media(self, token: str) -> Principal:
        claims = self._decode(token, "media")
        return self.principal(claims["sub"])

    def verify_access(self, token: str) -> Principal:
        claims = self._decode(token, "access")
        return self.principal(claims["sub"])

    def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: the refresh token used here is revoked, so a stolen one works at most once."""
        claims = self._decode(refresh_token, "refresh")
        if self._users.get(claims["sub"]) is None:
            raise AuthError("unknown user")
        if not self._revoke_claims(claims):
            raise AuthError("token revoked")  # a concurrent refresh already used it
        return self.issue(claims["sub"])

    def revoke(self, token: str) -> None:
        """Revoke a token of either kind if it is valid; silently ignore one that is not."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM])
        except jwt.PyJWTError:
            return
        self._revoke_claims(claims)

    def _revoke_claims(self, claims: dict) -> bool:
        ttl = max(1, int(claims.get("exp", 0) - time.time()) + 1)
        return bool(self._redis.set(self._revoked_key(str(claims.get("jti"))), b"1", ex=ttl, nx=True))

    def _revoked_key(self, jti: str) -> str:
        return f"{hash_tag(self._prefix)}:auth:revoked:{jti}"

