"""`gridwatch run` starts a local Redis / Mosquitto when the configured localhost port has no listener."""
from __future__ import annotations


import paho.mqtt.client as mqtt
import pytest
import redis

from gateway.local_services import ServiceError, ensure_services, is_listening
from tests.support import free_port



@pytest.mark.timeout(60)
def test_starts_redis_and_mosquitto_on_free_ports_and_stops_them(tmp_path):
    rport, mport = free_port(), free_port()
    services = ensure_services(f"redis://127.0.0.1:{rport}/0", f"mqtt://127.0.0.1:{mport}", tmp_path)
    try:
        assert set(services.procs) == {"redis", "mosquitto"}
        client = redis.Redis(port=rport)
        client.xadd("probe", {"a": "1"})
        assert client.xlen("probe") == 1
        mq = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        assert mq.connect("127.0.0.1", mport) == mqtt.MQTT_ERR_SUCCESS
        mq.disconnect()
        assert (tmp_path / "redis" / "appendonlydir").exists()  # AOF on: its data survives a restart
        # the durability docs/RELIABILITY.md states (and the fault tests run at): AOF, fsync every second
        assert client.config_get("append*") == {"appendonly": "yes", "appendfsync": "everysec",
                                                "appendfilename": "appendonly.aof", "appenddirname": "appendonlydir"}
        client.close()
    finally:
        services.stop()
    assert not is_listening("127.0.0.1", rport) and not is_listening("127.0.0.1", mport)


@pytest.mark.timeout(30)
def test_uses_running_services_without_starting_anything(tmp_path):
    services = ensure_services("redis://127.0.0.1:6379/0", "mqtt://127.0.0.1:1883", tmp_path)
    assert services.procs == {}


@pytest.mark.timeout(30)
def test_missing_binary_says_which_package_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("gateway.local_services.Path.exists", lambda self: False)
    with pytest.raises(ServiceError, match="apt-get install redis-server"):
        ensure_services(f"redis://127.0.0.1:{free_port()}/0", "mqtt://127.0.0.1:1883", tmp_path)
