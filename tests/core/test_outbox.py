"""Anomalies published while Redis is down wait in the outbox and arrive, in order, when it is back."""
from __future__ import annotations

import subprocess

import pytest
import redis

from alerts.streams import AnomalyOutbox, StreamKeys
from ingest.anomaly import Anomaly
from gateway.local_services import wait_listening
from ingest.geo import GeoPoint
from tests.support import free_port



@pytest.mark.timeout(60)
def test_outbox_holds_anomalies_through_a_redis_outage(tmp_path):
    port = free_port()
    start = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path), "--appendonly", "yes", "--appendfsync", "always"]
    server = subprocess.Popen(start, stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
    keys = StreamKeys("outbox")
    outbox = AnomalyOutbox(client, keys)
    made = [Anomaly(kind="motion", source="camera", source_id=f"cam-{i}", location=GeoPoint(lon=120.1, lat=30.26)) for i in range(6)]
    try:
        wait_listening("127.0.0.1", port, proc=server)
        outbox.publish(made[0])
        server.kill()
        server.wait()
        for anomaly in made[1:]:
            outbox.publish(anomaly)
        assert len(outbox) == 5 and outbox.flush() == 0
        server = subprocess.Popen(start, stdout=subprocess.DEVNULL)
        wait_listening("127.0.0.1", port, proc=server)
        assert outbox.flush() == 5 and len(outbox) == 0
        arrived = [Anomaly.from_stream(fields).id for _, fields in client.xrange(keys.anomalies)]
        assert arrived == [a.id for a in made]
    finally:
        server.kill()
        server.wait()
