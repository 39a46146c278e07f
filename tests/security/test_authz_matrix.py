"""The authorisation matrix: every role × every endpoint × own grid / other grid, generated from the app's routes.

The expected answer comes from a table written here by hand — who may do what (``MAY``) and which
caller sees which grid (``SEES``) — never from ``gateway.auth.PERMISSIONS`` or the principal's own grid
check, so a wrong entry in the app's table fails this test. The permission each route declares
(``require("…")``) is read from the app, so a new endpoint is covered the moment it is added: it must
either declare a permission that ``MAY`` knows, or be listed here as public / any-authenticated.
A caller without the permission gets 403; a caller with it gets anything but 401/403 for a ticket in
its grids, and 403 for a ticket outside them; nobody without credentials gets past 401.
"""
from __future__ import annotations

import re
from typing import Any

import pytest

from gw_support import CROSSING, INTEGRATOR_KEY, PASSWORDS, PLAZA, bearer, file_ticket, login

pytestmark = pytest.mark.timeout(120)

PUBLIC = {"/api/v1/auth/token", "/api/v1/auth/refresh", "/api/v1/alarms/press", "/api/v1/healthz",
          "/api/v1/settings", "/api/v1/metrics",
          # the residents' reporting page (alerts.channels): what it shows before login, and the OTP login itself
          "/api/v1/reports/public/config", "/api/v1/reports/public/grids", "/api/v1/reports/public/otp",
          "/api/v1/reports/public/login"}
# Resident-session endpoints: a staff token or API key is no resident session, so everybody here gets 401.
RESIDENT = {"/api/v1/reports/public/logout", "/api/v1/reports/resident", "/api/v1/reports/mine",
            "/api/v1/reports/mine/{report_id}", "/api/v1/reports/mine/{report_id}/info",
            "/api/v1/reports/mine/{report_id}/rating"}
# Authorised by the unguessable token in the link itself (satisfaction survey): a made-up token never succeeds.
TOKEN_LINK = {"/api/v1/reports/survey/{token}"}
# Routes that check more than a permission in their own body: the rule, written out. (gateway.api.reports'
# require_role(...) admits the named roles and admin.)
ROLE_RULES = {"/api/v1/audit": lambda role: role == "admin", "/api/v1/status": lambda role: role != "device",
              "/api/v1/reports/patrol": lambda role: role in ("grid_worker", "grid_leader", "admin"),
              "/api/v1/reports/hotline": lambda role: role in ("dispatcher", "operator", "admin"),
              "/api/v1/reports/classifier/retrain": lambda role: role in ("dispatcher", "admin"),
              "/api/v1/reports/{report_id}/category": lambda role: role in ("dispatcher", "admin")}
SKIP_ALLOWED = {"/api/v1/cameras/{camera_id}/mjpeg"}   # streams forever once allowed; its denials are still checked
SIDE_EFFECTS_LAST = {"/api/v1/auth/logout"}
CAMERAS = {"own": "cam-plaza", "other": "cam-crossing", "-": "cam-plaza"}
# Who may do what, written from docs/API.md and docs/OPERATORS.md (permission → roles), independent of the app.
STAFF = {"operator", "dispatcher", "grid_worker", "grid_leader", "supervisor", "admin"}
MAY: dict[str, set[str]] = {
    "tickets:read": STAFF,
    "tickets:act": STAFF,
    "live": STAFF,
    "wall": {"operator", "dispatcher", "admin"},
    "queue": {"dispatcher", "grid_worker", "grid_leader", "admin"},
    "kpis": {"dispatcher", "grid_leader", "supervisor", "admin"},
    "merge": {"dispatcher", "admin"},
    "status": STAFF | {"integrator"},
    "cameras:read": {"operator", "dispatcher", "grid_leader", "supervisor", "admin", "integrator"},
    "cameras:write": {"admin", "integrator"},
    "devices:read": {"admin", "integrator"},
    "devices:write": {"admin", "integrator"},
}
# Which of the two test tickets (and cameras) each caller's grids cover: "own" is in grid 330199001001001
# (清河北 1), "other" in 330199002002004 (明月南 4); the district-wide roles hold grid 330199 (demo.yaml).
SEES: dict[str, set[str]] = {
    "admin": {"own", "other"}, "operator": {"own", "other"}, "dispatcher": {"own", "other"},
    "supervisor": {"own", "other"}, "worker_qh1": {"own"}, "worker_my4": {"other"}, "leader_qhb": {"own"},
    "integrator": {"own", "other"}, "integrator-key": {"own", "other"},
}
CALLERS = ["admin", "operator", "dispatcher", "worker_qh1", "worker_my4", "leader_qhb", "supervisor", "integrator",
           "integrator-key", "anonymous"]


def _walk(dependant: Any, out: list[str]) -> list[str]:
    for d in dependant.dependencies:
        out.append(getattr(d.call, "__name__", ""))
        _walk(d, out)
    return out


def api_routes(app: Any) -> list[tuple[str, str, str | None]]:
    """(method, path, permission | 'any' | None) for every HTTP endpoint of the app."""
    found = []

    def visit(routes: list, prefix: str) -> None:
        for r in routes:
            ctx = getattr(r, "include_context", None)
            if ctx is not None:
                visit(ctx.included_router.routes, prefix + ctx.prefix)
                continue
            sub = getattr(r, "routes", None)
            if sub is not None and not hasattr(r, "dependant"):
                visit(sub, prefix + getattr(r, "path", ""))
                continue
            if not hasattr(r, "methods") or not hasattr(r, "dependant"):
                continue
            names = _walk(r.dependant, [])
            perm = None
            for n in names:
                m = re.match(r"require_(?:media_)?(.+)", n)
                if m:
                    perm = m.group(1).replace("_", ":", 1) if m.group(1).count("_") else m.group(1)
                    break
            if perm is None and any(n in ("current_principal", "media_principal") for n in names):
                perm = "any"
            for method in sorted(r.methods - {"HEAD"}):
                found.append((method, prefix + r.path, perm))

    visit(app.routes, "")
    return [f for f in found if f[1].startswith("/api/v1")]


def test_every_endpoint_declares_who_may_call_it(app):
    undeclared = [f"{m} {p}" for m, p, perm in api_routes(app) if perm is None and p not in PUBLIC | RESIDENT | TOKEN_LINK]
    assert undeclared == [], f"endpoints with no permission and not listed as public: {undeclared}"
    stale = sorted((PUBLIC | RESIDENT | TOKEN_LINK | set(ROLE_RULES)) - {p for _m, p, _perm in api_routes(app)})
    assert stale == [], f"PUBLIC lists endpoints that no longer exist: {stale}"


def test_the_hand_written_table_knows_every_declared_permission(app):
    declared = {perm for _m, path, perm in api_routes(app) if perm not in (None, "any") and path not in ROLE_RULES}
    assert declared <= set(MAY), f"permissions with no hand-written expectation: {sorted(declared - set(MAY))}"


def test_authorisation_matrix(app, client, runtime):
    auth = app.state.auth
    app.state.login_limit.__init__(100000)
    own = file_ticket(runtime, where=PLAZA)          # grid 330199001001001 (worker_qh1, leader_qhb)
    other = file_ticket(runtime, where=CROSSING)     # grid 330199002002004 (worker_my4)
    headers: dict[str, dict] = {"anonymous": {}, "integrator-key": {"X-API-Key": INTEGRATOR_KEY}}
    principals: dict[str, Any] = {"integrator-key": auth.check_api_key(INTEGRATOR_KEY)}
    for who in CALLERS:
        if who not in headers:
            tokens = login(client, who, PASSWORDS[who])
            headers[who] = bearer(tokens)
            principals[who] = auth.verify_access(tokens["access_token"])
    routes = api_routes(app)
    routes.sort(key=lambda r: (r[1] in SIDE_EFFECTS_LAST, {"GET": 0, "POST": 1, "PUT": 2, "DELETE": 3}.get(r[0], 4)))
    problems: list[str] = []
    cells = 0
    for method, path, perm in routes:
        if path in PUBLIC:
            continue
        scoped = "{ref}" in path or ("{camera_id}" in path and method == "GET")
        targets = [("own", own), ("other", other)] if scoped else [("-", own)]
        for who in CALLERS:
            if path in SIDE_EFFECTS_LAST and who != "anonymous":
                continue  # logout: its effect (revocation) is tested in test_tokens.py
            p = principals.get(who)
            role = p.role if p else None
            for label, ticket in targets:
                camera = CAMERAS[label] if method == "GET" else "cam-nope"
                url = (path.replace("{ref}", str(ticket.ticket_id)).replace("{action}", "comment")
                       .replace("{index}", "0").replace("{camera_id}", camera).replace("{device_id}", "dev-nope")
                       .replace("{report_id}", "1").replace("{token}", "made-up-survey-token"))
                if path in RESIDENT:
                    expected = "401"
                elif path in TOKEN_LINK:
                    expected = "refused"
                elif p is None:
                    expected = "401"
                else:
                    rule = ROLE_RULES.get(path)
                    allowed = rule(role) if rule else (perm == "any" or role in MAY[perm])
                    if allowed and "{ref}" in path:
                        allowed = label in SEES[who]
                    if allowed and "{camera_id}" in path and method == "GET" and camera != "cam-nope":
                        allowed = role == "integrator" or label in SEES[who]  # integrators manage every camera
                    expected = "ok" if allowed else "403"
                    if expected == "ok" and camera == "cam-nope" and "{camera_id}" in path and p.scope is not None:
                        # an unknown id answers like an invisible one for scoped callers (422: body checked first, reveals nothing)
                        expected = "403|404"
                if expected == "ok" and path in SKIP_ALLOWED:
                    continue
                kwargs: dict[str, Any] = {"headers": headers[who]}
                if method in ("POST", "PUT", "PATCH"):
                    kwargs["json"] = {}
                r = client.request(method, url, **kwargs)
                cells += 1
                got = r.status_code
                ok = (got == 401 if expected == "401" else got == 403 if expected == "403"
                      else got in (403, 404, 422) if expected == "403|404"
                      else got in (401, 403, 404, 422) if expected == "refused" else got not in (401, 403))
                if got >= 500 and got != 503:
                    ok = False
                if not ok:
                    problems.append(f"{who:14} {label:5} {method:6} {url}: expected {expected}, got {got} {r.text[:120]}")
                if expected == "403" and got == 403:
                    assert r.json() == {"detail": "forbidden"}, f"{method} {url}: a 403 must not say why"
    print(f"[security] authorisation matrix: {cells} cells, {len(problems)} mismatches")
    assert problems == [], "\n".join(problems)


def test_workflow_actions_by_role(app, client, runtime):
    """Each ticket action × each caller: 403 unless the role may take that action (lifecycle.ACTIONS) in its grid."""
    from alerts import lifecycle

    app.state.login_limit.__init__(100000)
    problems, cells = [], 0
    for who in CALLERS:
        if who in ("anonymous", "integrator-key"):
            continue
        tokens = login(client, who, PASSWORDS[who])
        p = app.state.auth.verify_access(tokens["access_token"])
        for action, spec in sorted(lifecycle.ACTIONS.items()):
            ticket = file_ticket(runtime, where=PLAZA, evidence=[])  # a fresh one each time: earlier actions must not hide a 403
            allowed = (p.can("tickets:act") and p.sees_grid(ticket.grid_code) and p.role in spec.roles
                       and action not in ("escalate", "clear", "auto_close"))
            r = client.post(f"/api/v1/tickets/{ticket.ticket_id}/actions/{action}", json={"note": "matrix"},
                            headers=bearer(tokens))
            cells += 1
            if (r.status_code == 403) == allowed or r.status_code == 401 or (r.status_code >= 500 and r.status_code != 503):
                problems.append(f"{who:12} {action:14} allowed={allowed} got {r.status_code} {r.text[:100]}")
    print(f"[security] workflow action matrix: {cells} cells, {len(problems)} mismatches")
    assert problems == [], "\n".join(problems)
