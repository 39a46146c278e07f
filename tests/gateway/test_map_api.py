"""The map's layers API on a real runtime: cut to the caller's grids, GCJ-02 on request, offline tiles behind auth,
and the alarm acknowledgement written as a history note through the case service."""
from __future__ import annotations

from pathlib import Path

import pytest

from gw_support import CROSSING, PLAZA, file_ticket
from ingest.geo import wgs84_to_gcj02

pytestmark = pytest.mark.timeout(60)

PLAZA_GRID, CROSSING_GRID = "330199001001001", "330199002002004"


def test_operator_sees_every_layer_of_the_district(client, auth_as):
    tk = file_ticket(client.app.state.runtime)
    body = client.get("/api/v1/map/layers", headers=auth_as("operator")).json()
    base = [f for f in body["grids"]["features"] if f["properties"]["level"] == "grid"]
    assert len(base) == 16 and all(f["properties"]["mine"] for f in base)
    assert {c["id"] for c in body["cameras"]} == {"cam-plaza", "cam-crossing", "cam-garages", "cam-office", "cam-campus"}
    plaza = next(c for c in body["cameras"] if c["id"] == "cam-plaza")
    assert (plaza["bearing_deg"], plaza["fov_deg"], plaza["grid_code"]) == (180, 90, PLAZA_GRID)
    assert plaza["community_name"] and plaza["street_name"]
    assert {d["id"] for d in body["devices"]} == {"stb-0001", "stb-0002", "smoke-0001", "water-0001", "manhole-0001"}
    assert [t["id"] for t in body["tickets"]] == [tk.ticket_id]


def test_a_worker_receives_only_the_layers_of_their_grid(client, auth_as):
    rt = client.app.state.runtime
    mine = file_ticket(rt, where=CROSSING, source_id="cam-crossing")
    other = file_ticket(rt, where=PLAZA)
    body = client.get("/api/v1/map/layers", headers=auth_as("worker_my4")).json()
    filled = [f["properties"]["code"] for f in body["grids"]["features"] if f["properties"]["mine"]]
    assert filled == [CROSSING_GRID]
    outlines = {f["properties"]["level"] for f in body["grids"]["features"] if not f["properties"]["mine"]}
    assert outlines == {"district", "street", "community"}   # the units above, as outlines; no other base grid
    assert [c["id"] for c in body["cameras"]] == ["cam-crossing"]
    assert {d["id"] for d in body["devices"]} == {"stb-0002", "water-0001"}
    assert [t["id"] for t in body["tickets"]] == [mine.ticket_id] and other.ticket_id != mine.ticket_id


def test_gcj02_layers_are_offset_like_the_chinese_tiles(client, auth_as):
    wgs = client.get("/api/v1/map/layers", headers=auth_as("operator")).json()
    gcj = client.get("/api/v1/map/layers", params={"crs": "GCJ02"}, headers=auth_as("operator")).json()
    a = next(c for c in wgs["cameras"] if c["id"] == "cam-plaza")
    b = next(c for c in gcj["cameras"] if c["id"] == "cam-plaza")
    assert (a["lon"], a["lat"]) == (120.105, 30.276)
    assert (b["lon"], b["lat"]) == pytest.approx(wgs84_to_gcj02(120.105, 30.276), abs=1e-9)
    assert 0.003 < b["lon"] - a["lon"] < 0.006      # the few hundred metres a GCJ-02 map is shifted by
    assert gcj["crs"] == "GCJ02"
    assert client.get("/api/v1/map/layers", params={"crs": "BD09"}, headers=auth_as("operator")).status_code == 422
    assert client.get("/api/v1/map/layers").status_code == 401


def test_offline_tiles_are_served_with_a_media_token_only(client, auth_as, tmp_path: Path):
    from gateway.config import TileSource

    folder = tmp_path / "tiles" / "14" / "13658"
    folder.mkdir(parents=True)
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    (folder / "6739.png").write_bytes(png)
    dep = client.app.state.runtime.deployment
    dep.gateway.map_tiles = [TileSource(name="offline", dir=str(tmp_path / "tiles"), crs="GCJ02")]
    layers = client.get("/api/v1/map/layers", headers=auth_as("operator")).json()
    assert layers["tiles"] == [{"name": "offline", "url": "/api/v1/map/tiles/offline/{z}/{x}/{y}", "offline": True,
                                "crs": "GCJ02", "attribution": "", "max_zoom": 18}]
    assert client.get("/api/v1/map/tiles/offline/14/13658/6739").status_code == 401
    mt = client.post("/api/v1/auth/media-token", headers=auth_as("operator")).json()["media_token"]
    r = client.get("/api/v1/map/tiles/offline/14/13658/6739", params={"mt": mt})
    assert r.status_code == 200 and r.content == png and r.headers["content-type"] == "image/png"
    assert client.get("/api/v1/map/tiles/offline/14/13658/9999", params={"mt": mt}).status_code == 404
    assert client.get("/api/v1/map/tiles/offline/14/13658/..%2F..%2Fx", params={"mt": mt}).status_code in (404, 422)
    assert client.get("/api/v1/map/tiles/nope/14/13658/6739", params={"mt": mt}).status_code == 404


def test_tile_source_needs_exactly_one_place():
    from pydantic import ValidationError

    from gateway.config import TileSource

    with pytest.raises(ValidationError, match="exactly one of url"):
        TileSource(name="x")
    with pytest.raises(ValidationError, match="exactly one of url"):
        TileSource(name="x", url="https://t/{z}/{x}/{y}.png", dir="tiles")


def test_acknowledge_writes_a_history_note_in_scope(client, auth_as):
    tk = file_ticket(client.app.state.runtime)
    r = client.post(f"/api/v1/tickets/{tk.ticket_id}/acknowledge", json={}, headers=auth_as("operator"))
    assert r.status_code == 200, r.text
    notes = [h for h in r.json()["history"] if h["action"] == "comment"]
    assert len(notes) == 1 and notes[0]["actor"] == "operator" and "接警确认" in notes[0]["note"]
    assert r.json()["status"] == "reported"                 # a note, not a state change
    # a grid worker has no event wall (no pop-up, no acknowledgement); another area gets the one 403
    assert client.post(f"/api/v1/tickets/{tk.ticket_id}/acknowledge", json={}, headers=auth_as("worker_qh1")).status_code == 403
