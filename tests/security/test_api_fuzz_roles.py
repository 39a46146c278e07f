"""Schemathesis over the OpenAPI document as the roles the gateway's own fuzz test does not use.

``tests/gateway/test_fuzz.py`` fuzzes as ``admin`` and a grid worker. Here the same real runtime
(``tests/gateway`` fixtures: real Redis, SQLite in tmp, one filed ticket) is fuzzed as the operator,
the dispatcher, a grid leader, the supervisor (bearer tokens) and the integrator (``X-API-Key``), so
the code paths behind each role's permission and grid scope get arbitrary input too. The check: no
5xx (503 is the documented "that part is not running here"). Schemathesis also generates values for
the security schemes (a fuzzed ``X-API-Key`` / ``Authorization``); they are removed so each request
carries the role's real credentials — otherwise nearly every request is a 401 and fuzzes nothing. Streaming endpoints and the probe (it
opens network connections; see test_ssrf.py and test_bad_video.py) are left out. After the fuzzed
``/auth/logout`` (which revokes the caller's token) the role logs in again, so every later operation
is still exercised as that role and not answered 401.
Bounded: 3 examples per operation and role (~10 s a role; ``GRIDWATCH_LONG=1``: 15).
"""
from __future__ import annotations

import os

import pytest

pytest.importorskip("schemathesis")
import schemathesis  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

from gw_support import INTEGRATOR_KEY, PASSWORDS, bearer, file_ticket, login  # noqa: E402

pytestmark = pytest.mark.timeout(180)

SKIP = ("/api/v1/cameras/{camera_id}/mjpeg", "/api/v1/live", "/api/v1/cameras/probe")
EXAMPLES = 15 if os.environ.get("GRIDWATCH_LONG") == "1" else 3


@pytest.mark.parametrize("who", ["operator", "dispatcher", "leader_qhb", "supervisor", "integrator-api-key"])
def test_no_5xx_as_each_role(app, runtime, who):
    from fastapi.testclient import TestClient

    file_ticket(runtime)
    with TestClient(app) as client:
        def credentials() -> dict[str, str]:
            if who == "integrator-api-key":
                return {"X-API-Key": INTEGRATOR_KEY}
            return bearer(login(client, who, PASSWORDS[who]))

        headers = credentials()
        assert client.get("/api/v1/me", headers=headers).status_code == 200
        app.state.login_limit.__init__(100000)
        app.state.alarm_limit.__init__(100000)
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
        failures: list[str] = []
        calls = 0
        statuses: dict[int, int] = {}
        for op in schema.get_all_operations():
            operation = op.ok()
            if operation.path in SKIP:
                continue

            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def run(case):
                nonlocal calls
                for generated in ("X-API-Key", "x-api-key", "Authorization", "authorization"):
                    (case.headers or {}).pop(generated, None)  # the role's own credentials, not fuzzed ones
                response = case.call(headers=headers)
                calls += 1
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code >= 500 and response.status_code != 503:
                    failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

            run()
            if "logout" in operation.path:  # the fuzzed logout revoked our token: later operations need a fresh one
                headers = credentials()
        print(f"[fuzz] api as {who}: {calls} requests, statuses {dict(sorted(statuses.items()))}")
        assert not failures, "\n".join(failures[:20])
