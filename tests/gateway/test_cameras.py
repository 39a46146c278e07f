"""Camera management over the API: roles, SSRF guard, redaction, probe of a real clip, grid-scoped visibility."""
from __future__ import annotations

import base64

import pytest

from gw_support import FOOTAGE, INTEGRATOR_KEY

pytestmark = pytest.mark.timeout(60)
KEY = {"X-API-Key": INTEGRATOR_KEY}


def _camera(cid: str = "cam-new", url: str = "rtsp://admin:s3cret@1.2.3.4:554/stream1") -> dict:
    return {"id": cid, "name": "新摄像机", "source": {"url": url},
            "pose": {"position": {"lon": 120.106, "lat": 30.275}, "bearing_deg": 90, "height_m": 6, "fov_deg": 70},
            "zones": [{"name": "door", "polygon": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.6]]}],
            "lines": [{"name": "gate", "a": [0.2, 0.9], "b": [0.8, 0.9]}], "rules": [{"kind": "motion"}]}


def test_add_replace_remove_with_redaction_and_audit(client, runtime):
    r = client.post("/api/v1/cameras", headers=KEY, json=_camera())
    assert r.status_code == 201, r.text
    body = r.json()
    assert "s3cret" not in r.text and body["source"]["url"].startswith("rtsp://admin:")
    assert body["grid_code"] == "330199001001001" and body["zones"][0]["name"] == "door"
    assert client.post("/api/v1/cameras", headers=KEY, json=_camera()).status_code == 409
    # the console sends back the redacted URL when the integrator did not change it: the real one is kept
    changed = dict(_camera(), name="改名", source={"url": body["source"]["url"]})
    r = client.put("/api/v1/cameras/cam-new", headers=KEY, json=changed)
    assert r.status_code == 200 and r.json()["name"] == "改名"
    stored = next(c for c in runtime.deployment.cameras if c.id == "cam-new")
    assert "s3cret" in stored.source.url
    assert client.delete("/api/v1/cameras/cam-new", headers=KEY).status_code == 204
    assert client.get("/api/v1/cameras/cam-new", headers=KEY).status_code == 404
    audit = (runtime.deployment.run_dir / "audit.jsonl").read_text()
    assert "camera.add" in audit and "camera.remove" in audit and "s3cret" not in audit


def test_ssrf_guard_and_place_checks(client, monkeypatch):
    monkeypatch.delenv("GRIDWATCH_TEST_ONLY_LOOPBACK_CAMERAS", raising=False)  # production rules (tests/conftest.py)
    meta = client.post("/api/v1/cameras", headers=KEY, json=_camera(url="http://169.254.169.254/latest/meta-data"))
    assert meta.status_code == 422 and meta.json()["detail"].startswith("source.url")
    loop = client.post("/api/v1/cameras", headers=KEY, json=_camera(url="rtsp://127.0.0.1:8554/x"))
    assert loop.status_code == 422
    far = _camera()
    far["pose"]["position"] = {"lon": 116.4, "lat": 39.9}
    assert "outside every grid" in client.post("/api/v1/cameras", headers=KEY, json=far).json()["detail"]


def test_roles(client, auth_as):
    assert client.post("/api/v1/cameras", headers=auth_as("operator"), json=_camera()).json() == {"detail": "forbidden"}
    assert client.get("/api/v1/cameras", headers=auth_as("worker_qh1")).status_code == 403
    # a community leader sees the cameras standing in the community's grids only
    ids = {c["id"] for c in client.get("/api/v1/cameras", headers=auth_as("leader_qhb")).json()["items"]}
    assert ids == {"cam-plaza"}
    assert client.get("/api/v1/cameras/cam-crossing", headers=auth_as("leader_qhb")).json() == {"detail": "forbidden"}
    assert client.get("/api/v1/cameras/no-such", headers=auth_as("leader_qhb")).json() == {"detail": "forbidden"}


@pytest.mark.skipif(not (FOOTAGE / "campus_pedestrians_pets2009.avi").exists(), reason="shared footage is absent")
def test_probe_a_real_clip(client):
    r = client.post("/api/v1/cameras/probe", headers=KEY, json={"url": "footage:campus_pedestrians_pets2009.avi"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] and body["detail"]["width"] == 480 and body["detail"]["height"] == 360
    assert base64.b64decode(body["snapshot"])[:2] == b"\xff\xd8"
    bad = client.post("/api/v1/cameras/probe", headers=KEY, json={"url": "footage:no_such_clip.mp4"})
    assert bad.status_code == 422
