"""Authentication against a real runtime: passwords, token expiry, refresh rotation, logout revocation, API keys, limits."""
from __future__ import annotations

import time
import uuid

import jwt
import pytest

from gw_support import INTEGRATOR_KEY, bearer, login

pytestmark = pytest.mark.timeout(60)


def test_login_and_me(client):
    tokens = login(client, "worker_qh1", "worker123")
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] > 0
    me = client.get("/api/v1/me", headers=bearer(tokens)).json()
    assert me["username"] == "worker_qh1" and me["role"] == "grid_worker"
    assert me["grids"] == ["330199001001001"] and not me["all_grids"]
    assert "queue" in me["permissions"] and "wall" not in me["permissions"]


def test_wrong_password_and_unknown_user_answer_alike(client):
    a = client.post("/api/v1/auth/token", data={"username": "operator", "password": "nope"})
    b = client.post("/api/v1/auth/token", data={"username": "nobody", "password": "nope"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json() == {"detail": "wrong username or password"}


def test_no_token_and_garbage_token(client):
    assert client.get("/api/v1/me").status_code == 401
    r = client.get("/api/v1/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert r.status_code == 401 and r.json() == {"detail": "invalid token"}


def test_expired_access_token(client, runtime):
    secret = runtime.deployment.gateway.secret_key
    now = int(time.time())
    token = jwt.encode({"sub": "operator", "typ": "access", "jti": uuid.uuid4().hex, "iat": now - 120, "exp": now - 60},
                       secret, algorithm="HS256")
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json() == {"detail": "token expired"}


def test_token_signed_with_another_key_is_refused(client):
    now = int(time.time())
    token = jwt.encode({"sub": "admin", "typ": "access", "jti": "x", "iat": now, "exp": now + 60}, "another-key-that-is-long-enough-0123456789", algorithm="HS256")
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_refresh_token_is_not_an_access_token(client):
    tokens = login(client, "operator", "operator123")
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert r.status_code == 401


def test_refresh_rotates_and_old_refresh_token_dies(client):
    tokens = login(client, "operator", "operator123")
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200
    fresh = r.json()
    assert client.get("/api/v1/me", headers=bearer(fresh)).status_code == 200
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401 and again.json() == {"detail": "token revoked"}


def test_logout_revokes_access_and_refresh(client):
    tokens = login(client, "dispatcher", "dispatcher123")
    r = client.post("/api/v1/auth/logout", headers=bearer(tokens), json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 204
    assert client.get("/api/v1/me", headers=bearer(tokens)).json() == {"detail": "token revoked"}
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401


def test_api_key_for_integrators(client):
    ok = client.get("/api/v1/cameras", headers={"X-API-Key": INTEGRATOR_KEY})
    assert ok.status_code == 200 and {c["id"] for c in ok.json()["items"]} >= {"cam-plaza", "cam-crossing"}
    assert client.get("/api/v1/cameras", headers={"X-API-Key": "wrong"}).status_code == 401
    # an integrator manages cameras and devices, it does not read cases
    r = client.get("/api/v1/tickets", headers={"X-API-Key": INTEGRATOR_KEY})
    assert r.status_code == 403 and r.json() == {"detail": "forbidden"}


def test_device_secrets_are_never_answered(client):
    r = client.get("/api/v1/devices", headers={"X-API-Key": INTEGRATOR_KEY})
    assert r.status_code == 200
    assert "\"secret\"" not in r.text and "demo-stb-0001-secret" not in r.text
    assert all(d["has_secret"] for d in r.json()["items"])


def test_login_is_rate_limited(client, runtime):
    from gateway.api.ratelimit import SharedLimit

    state = client.app.state  # the same shared (Redis) storage the app counts in, a smaller budget
    state.login_limit = SharedLimit(3, state.login_limit.limiter.storage, "login")
    codes = [client.post("/api/v1/auth/token", data={"username": "operator", "password": "x"}).status_code for _ in range(5)]
    assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429]
    r = client.post("/api/v1/auth/token", data={"username": "operator", "password": "operator123"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_body_size_limit(client, auth_as):
    big = "x" * (client.app.state.runtime.deployment.gateway.max_body_bytes + 10)
    r = client.post("/api/v1/tickets/1/actions/comment", headers=auth_as("dispatcher"), content=big,
                    )
    assert r.status_code == 413 and r.json() == {"detail": "request body too large"}


def test_passwords_are_hashed_not_kept(app):
    auth = app.state.auth
    assert all(h.startswith(b"$2") for h in auth._hashes.values())
    assert b"operator123" not in b"".join(auth._hashes.values())


def test_health_and_settings_need_no_token(client):
    assert client.get("/api/v1/healthz").json() == {"status": "ok", "redis": True, "store": True}
    s = client.get("/api/v1/settings").json()
    assert s["language"] == "zh" and s["timezone"] == "Asia/Shanghai"
