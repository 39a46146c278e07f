"""``gridwatch simulate`` (ingest.simulator.main) against the real broker and a running MqttIngest with
the rule engine; and presses over HTTP to a real ASGI endpoint that calls ``handle_press``."""
from __future__ import annotations

import json
import threading

import pytest

from detectors.sensor_rules import SensorRuleEngine
from ingest.devices import DeviceRegistry, MqttIngest, PressLedger, RedisNonceStore, handle_press
from ingest.simulator import main, simulated_devices

from .conftest import MQTT_URL, free_port, poll

pytestmark = pytest.mark.timeout(90)


def test_simulator_drives_sensors_and_boxes(capsys, mqtt_cfg, dead_letters, redis_client, stream_prefix):
    registry = DeviceRegistry(simulated_devices(6, 3, seed="t-seed"))
    anomalies = []
    engine = SensorRuleEngine(registry, anomalies.append)
    cases = iter(range(1, 1000))
    ing = MqttIngest(MQTT_URL, mqtt_cfg, registry, engine.on_reading, lambda p: f"QS-{next(cases)}", dead_letters,
                     nonce_store=RedisNonceStore(redis_client, stream_prefix), ledger=PressLedger(redis_client, stream_prefix))
    ing.start()
    try:
        rc = main(["--mqtt", MQTT_URL, "--topic-prefix", mqtt_cfg.topic_prefix, "--sensors", "6", "--boxes", "3",
                   "--seed", "t-seed", "--rate", "10", "--duration", "2", "--cross-thresholds", "--presses", "6", "--json"])
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert rc == 0
        assert report["telemetry_sent"] == report["telemetry_acked"] == 120 and report["telemetry_crossing"] > 0
        assert report["presses_sent"] == report["presses_acked"] == 6 and report["ack_statuses"] == {"received": 6}
        poll(lambda: ing.stats()["telemetry"] >= 120, what="all telemetry ingested")
        kinds = {a.kind for a in anomalies if a.state == "firing"}
        assert {"smoke_alarm", "gas_leak", "manhole_tilt", "fence_breach"} <= kinds
        assert ing.stats()["rejected"] == 0 and not dead_letters.reasons()
    finally:
        ing.stop()


def test_simulator_presses_over_http(capsys, redis_client, stream_prefix, dead_letters):
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    registry = DeviceRegistry(simulated_devices(0, 4, seed="h-seed"))
    nonces, ledger = RedisNonceStore(redis_client, stream_prefix), PressLedger(redis_client, stream_prefix)

    async def alarm(request):  # what the gateway mounts: raw body and headers into handle_press
        outcome = handle_press(registry, await request.body(), request.headers, nonce_store=nonces, ledger=ledger,
                               on_alarm=lambda p: f"QS-{p.press_id[:6]}", on_reject=dead_letters)
        return JSONResponse(outcome.body, status_code=outcome.http_status)

    app = Starlette(routes=[Route("/api/v1/alarms", alarm, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        poll(lambda: server.started, what="HTTP server up")
        rc = main(["--mqtt", MQTT_URL, "--sensors", "0", "--boxes", "4", "--seed", "h-seed", "--duration", "0",
                   "--presses", "8", "--http", f"http://127.0.0.1:{port}/api/v1/alarms", "--json"])
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert rc == 0 and report["presses_acked"] == 8 and report["ack_statuses"] == {"received": 8}
        assert report["ack_p99_ms"] < 1000
    finally:
        server.should_exit = True
        thread.join(10)
