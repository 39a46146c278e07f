"""The camera list with a city's cameras: 10,000 synthetic cameras (not started) in the real runtime and API.

Pages cover every visible camera exactly once, in order; ``q`` searches id, name and place (grid names);
``grid`` takes a grid and those below it; ``state`` and ``host`` read the health the video roles publish
in Redis; a grid leader's pages hold only their grids' cameras. Latency figures are the benchmark's
(benchmarks/bench_control_plane.py); here only a loose bound that fails if a page serialises every camera.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from benchmarks.fleet import grid_of, synthetic_cameras
from gw_support import INTEGRATOR_KEY, PASSWORDS, REDIS_URL, bearer, build_test_runtime, drop_keys, login, make_deployment

pytestmark = pytest.mark.timeout(180)
KEY = {"X-API-Key": INTEGRATOR_KEY}
N = 10_000


def _with_city(runtime: Any) -> list[str]:
    """Add the 10,000 synthetic cameras to the runtime's deployment; the demo's own camera ids (listed first)."""
    demo = [c.id for c in runtime.deployment.cameras]
    runtime.deployment.cameras.extend(synthetic_cameras(runtime.grids, N))
    return demo


@dataclass
class City:
    runtime: Any
    client: Any
    demo: list[str]


@pytest.fixture(scope="module")
def shared_city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    """One runtime and API holding the city for the tests that only read it (building it costs seconds here).
    A test that edits cameras takes ``city`` (its own runtime) instead."""
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    dep = make_deployment(tmp_path_factory.mktemp("city"))
    rt = build_test_runtime(dep)
    try:
        demo = _with_city(rt)
        with TestClient(create_app(rt)) as client:
            yield City(rt, client, demo)
    finally:
        rt.stop()
        r = redis.Redis.from_url(REDIS_URL)
        drop_keys(r, dep.services.stream_prefix)
        r.close()


@pytest.fixture
def city(runtime: Any) -> list[str]:
    return _with_city(runtime)


def _ids(client, **params) -> list[str]:
    """Every id the pages of this query answer, following next_offset."""
    ids, offset = [], 0
    while offset is not None:
        page = client.get("/api/v1/cameras", headers=KEY, params={**params, "limit": 1000, "offset": offset}).json()
        ids += [c["id"] for c in page["items"]]
        offset = page["next_offset"]
    return ids


def test_pages_cover_every_camera_once_in_order(shared_city):
    client, city = shared_city.client, shared_city.demo
    first = client.get("/api/v1/cameras", headers=KEY).json()
    assert first["total"] == N + len(city) and first["limit"] == 100 and len(first["items"]) == 100
    assert first["next_offset"] == 100
    ids = _ids(client)
    assert ids == city + [f"syn-{i:05d}" for i in range(N)]
    last = client.get("/api/v1/cameras", headers=KEY, params={"offset": N + len(city) - 3}).json()
    assert len(last["items"]) == 3 and last["next_offset"] is None
    assert "s3cret" not in json.dumps(first) and first["items"][0]["health"]["state"]


def test_search_and_grid_filter(shared_city):
    client, runtime = shared_city.client, shared_city.runtime
    assert _ids(client, q="syn-0004") == [f"syn-{i:05d}" for i in range(40, 50)]
    assert _ids(client, q="合成摄像机 777 号") == ["syn-00777"]
    code = grid_of(runtime.grids, 3)
    in_grid = [f"syn-{i:05d}" for i in range(N) if grid_of(runtime.grids, i) == code]
    assert [i for i in _ids(client, grid=code) if i.startswith("syn-")] == in_grid
    # place: the grid's name (and its community's) is searchable, and a community code takes its grids
    name = runtime.grids.get(code).name
    assert [i for i in _ids(client, q=name) if i.startswith("syn-")] == in_grid
    community = code[:12]
    under = [f"syn-{i:05d}" for i in range(N) if grid_of(runtime.grids, i).startswith(community)]
    assert [i for i in _ids(client, grid=community) if i.startswith("syn-")] == under
    assert client.get("/api/v1/cameras", headers=KEY, params={"grid": "x1"}).status_code == 422
    assert client.get("/api/v1/cameras", headers=KEY, params={"limit": 0}).status_code == 422


def test_state_and_host_filters_read_published_health(shared_city, redis_client):
    """Writes health for five synthetic cameras (60 s TTL, the runtime's prefix): no other reader here filters on it."""
    client, runtime = shared_city.client, shared_city.runtime
    keys = runtime.camera_keys
    offline = [f"syn-{i:05d}" for i in (5, 500, 9999)]
    on_b = [f"syn-{i:05d}" for i in (6, 7)]
    for cid in offline:
        redis_client.set(keys.status(cid), json.dumps({"state": "offline", "worker": "w-a1", "host": "host-a"}), ex=60)
    for cid in on_b:
        redis_client.set(keys.status(cid), json.dumps({"state": "live", "worker": "w-b1", "host": "host-b"}), ex=60)
    assert _ids(client, state="offline") == offline
    assert _ids(client, host="host-b") == on_b and _ids(client, host="w-a1") == offline
    assert _ids(client, state="live", host="host-a") == []
    page = client.get("/api/v1/cameras", headers=KEY, params={"state": "offline", "q": "syn-005"}).json()
    assert [c["id"] for c in page["items"]] == ["syn-00500"] and page["items"][0]["health"]["detail"]["host"] == "host-a"


def test_a_grid_leader_pages_only_their_grids(shared_city):
    client, runtime = shared_city.client, shared_city.runtime
    mine = {g for g in runtime.grids.within("330199001001")}
    leader = bearer(login(client, "leader_qhb", PASSWORDS["leader_qhb"]))
    page = client.get("/api/v1/cameras", headers=leader, params={"limit": 1000}).json()
    expected = sum(1 for i in range(N) if grid_of(runtime.grids, i) in mine) + 1  # + the demo's cam-plaza
    assert page["total"] == expected
    assert all(c["grid_code"] in mine for c in page["items"])


def test_an_edited_camera_is_found_by_its_new_name(client, city):
    cam = client.get("/api/v1/cameras/syn-00042", headers=KEY).json()
    assert _ids(client, q="新名字") == []
    body = {k: cam[k] for k in ("id", "pose", "zones", "lines", "rules")} | {"name": "新名字", "source": {"url": "synthetic:crowd"}}
    assert client.put("/api/v1/cameras/syn-00042", headers=KEY, json=body).status_code == 200
    assert _ids(client, q="新名字") == ["syn-00042"]
    assert client.delete("/api/v1/cameras/syn-00042", headers=KEY).status_code == 204
    assert _ids(client, q="新名字") == []


def test_a_page_does_not_cost_the_whole_list(shared_city):
    client = shared_city.client
    client.get("/api/v1/cameras", headers=KEY)  # the catalog is built on the first call
    took = []
    for params in ({}, {"q": "syn-09"}, {"offset": 9000}, {"state": "live"}):
        start = time.perf_counter()
        assert client.get("/api/v1/cameras", headers=KEY, params=params).status_code == 200
        took.append(time.perf_counter() - start)
    # serialising all 10,000 cameras takes several seconds here; a page must not
    assert max(took) < 1.5, took


def test_health_reads_are_reused_for_one_second_only():
    from gateway.api.camera_query import HEALTH_CACHE_S, CameraCatalog

    now = [100.0]
    reads: list[list[str]] = []
    state = {"a": {"state": "live"}}

    def read(ids):
        reads.append(list(ids))
        return {i: state[i] for i in ids if i in state}

    catalog = CameraCatalog(grids=None, clock=lambda: now[0])
    assert catalog.health(["a", "b"], read) == {"a": {"state": "live"}}
    state["a"] = {"state": "offline"}
    now[0] += HEALTH_CACHE_S / 2
    assert catalog.health(["a", "b"], read) == {"a": {"state": "live"}} and len(reads) == 1  # within the second
    assert catalog.health(["a", "c"], read) == {"a": {"state": "offline"}} and len(reads) == 2  # a camera not read yet
    now[0] += HEALTH_CACHE_S
    state["a"] = {"state": "stalled"}
    assert catalog.health(["a", "c"], read) == {"a": {"state": "stalled"}} and len(reads) == 3
