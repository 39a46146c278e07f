"""GridWatch on a real 3-master Redis Cluster (``services.redis_url: redis+cluster://…``): anomalies on the stream
become tickets through the intake role, tickets reach the grid's duty queue and are signed for (the MULTI that
acknowledges the entry with its ``:entries`` hash), a signed HTTPS alarm press goes through the press stream's
Lua script, ledger and filer to its case number — and every key GridWatch wrote carries the deployment's hash tag,
so all of them sit in one slot (the multi-key operations above would be refused across slots).
"""
from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "gateway"))
from gw_support import build_test_runtime, make_deployment  # noqa: E402
from tests.alerts.helpers import anomaly  # noqa: E402
from tests.support import wait_for  # noqa: E402

# a part's thread dying on a command the cluster refuses (e.g. PUBLISH in a pipeline) fails the test
pytestmark = [pytest.mark.timeout(90), pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")]
GRID = "330199001001001"  # 清河北社区第1网格, where the helpers' PLAZA point lies


def _tickets(rt) -> int:  # noqa: ANN001
    return rt.cases.list_tickets(limit=100).total


def test_intake_duty_queues_and_presses_run_on_a_three_master_cluster(tmp_path, redis_cluster):
    from fastapi.testclient import TestClient

    from alerts.queues import DutyQueue
    from alerts.streams import StreamKeys, publish_anomaly
    from gateway.app import create_app
    from ingest.devices.signing import signed_headers
    from ingest.redis_connect import connect

    dep = make_deployment(tmp_path)
    dep.services.redis_url = redis_cluster.url
    dep.alerts.confirm_sources = []  # camera tickets go straight to the grid's duty queue
    dep.detection.model.path = None
    client = connect(redis_cluster.url)
    assert isinstance(client, RedisCluster) and len(client.get_primaries()) == 3
    keys = StreamKeys(dep.services.stream_prefix)
    rt = build_test_runtime(dep, roles=["api", "intake", "devices"])
    try:
        rt.start()
        # Intake: anomalies on the cluster's stream → tickets in SQL → the grid's duty queue, each entry acked.
        for i in range(5):
            publish_anomaly(client, keys, anomaly(source_id=f"cam-cluster-{i}", zone=f"z{i}",
                                                  at=(120.105 + i * 0.004, 30.276)))
        wait_for(lambda: _tickets(rt) >= 5, 30, interval=0.2, what="intake filing the 5 anomalies from the cluster")
        wait_for(lambda: client.xpending(keys.anomalies, "intake")["pending"] == 0, 10, what="every anomaly acknowledged")

        queue = DutyQueue(client, keys, GRID, f"page-{uuid.uuid4().hex[:6]}", store=rt.store)
        entries = wait_for(lambda: queue.read(count=10, block_ms=200), 10, what="the grid's duty queue entries")
        signed = queue.sign(entries[0], rt.cases, "worker_qh1")
        assert signed["status"] == "signed" and rt.cases.get_ticket(entries[0].ticket_id)["status"] == "signed"
        assert queue.pending_count() == len(entries) - 1  # acked with the sign-for, the others still pending

        # A one-key alarm over HTTPS: nonce, press stream + ledger (one Lua script), filer, case number.
        with TestClient(create_app(rt)) as api:
            cases = []
            for device in ("stb-0001", "stb-0002"):
                body = json.dumps({"device": device, "press_id": f"p-{uuid.uuid4().hex[:8]}", "kind": "press",
                                   "at": time.time()}).encode()
                r = api.post("/api/v1/alarms/press", content=body, headers=signed_headers(device, f"demo-{device}-secret", body))
                assert r.status_code == 200 and r.json()["case"], r.text
                cases.append(r.json()["case"])
        assert len(set(cases)) == 2 and rt.press_filer.filed == 2  # the filer filed both and lives on

        # Every key of the deployment, on whichever master it lives, hashes to the tag's one slot.
        names = [k.decode() for k in client.scan_iter(match="*" + dep.services.stream_prefix + "*",
                                                       target_nodes=RedisCluster.ALL_NODES)]
        assert {keys.anomalies, keys.events, keys.duty(GRID)} <= set(names)
        assert {client.keyslot(n) for n in names} == {client.keyslot(keys.tag)}, sorted(names)
    finally:
        rt.stop()
        client.close()
