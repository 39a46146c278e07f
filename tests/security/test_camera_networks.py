"""Camera networks: private camera addresses are allowed only inside the deployment's ``ingest.camera_networks``
(CIDRs); loopback, link-local, cloud metadata and GridWatch's own Redis, SQL server, broker and API are refused
whatever the list says — in the validator, from the deployment file, and through the REST API.

The suite's test-only loopback switch (tests/conftest.py) is removed here, so these are the production rules.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from gateway.config import ConfigError, load_deployment, parse_deployment
from gw_support import INTEGRATOR_KEY
from ingest.config import IngestConfig
from ingest.video import InvalidSourceError, validate_source_url
from ingest.video.urls import SourcePolicy, own_service_endpoints

pytestmark = pytest.mark.timeout(60)
DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"
KEY = {"X-API-Key": INTEGRATOR_KEY}


@pytest.fixture(autouse=True)
def production_rules(monkeypatch):
    monkeypatch.delenv("GRIDWATCH_TEST_ONLY_LOOPBACK_CAMERAS", raising=False)


def _policy(*networks: str, services: list[tuple[str, int]] = ()) -> SourcePolicy:
    cfg = IngestConfig.model_validate({"camera_networks": list(networks)})
    cfg.set_own_services(own_service_endpoints(list(services)))
    return cfg.source_policy()


def test_a_private_camera_is_allowed_only_inside_a_listed_network():
    policy = _policy("10.20.0.0/16", "192.168.1.0/24")
    assert validate_source_url("rtsp://admin:pw@10.20.3.4:554/ch1", allow_private=policy)
    assert validate_source_url("rtsp://192.168.1.64/h264", allow_private=policy)
    for outside in ("rtsp://10.21.0.1/x", "rtsp://192.168.2.1/x", "rtsp://172.16.0.9/x"):
        with pytest.raises(InvalidSourceError, match="private address; list its network in ingest.camera_networks"):
            validate_source_url(outside, allow_private=policy)
    with pytest.raises(InvalidSourceError, match="private"):
        validate_source_url("rtsp://10.20.3.4/x", allow_private=_policy())   # an empty list allows no private host


@pytest.mark.parametrize("url, why", [
    ("rtsp://127.0.0.1:8554/cam", "loopback"), ("rtsp://localhost/cam", "loopback"),
    ("http://[::ffff:127.0.0.1]/x", "loopback"), ("http://169.254.10.10/", "link-local"),
    ("http://0.0.0.0:8080/", "unspecified"), ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://100.100.100.200/", "metadata"), ("http://[fd00:ec2::254]/", "metadata"),
])
def test_loopback_link_local_and_metadata_stay_refused_whatever_the_list_says(url, why):
    everything = _policy("0.0.0.0/0", "::/0", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10", "fd00::/8")
    with pytest.raises(InvalidSourceError, match=why):
        validate_source_url(url, allow_private=everything)


def test_gridwatchs_own_services_are_never_a_camera():
    policy = _policy("10.0.0.0/8", services=[("10.0.0.5", 6379), ("10.0.0.6", 5432), ("10.0.0.7", 1883),
                                             ("10.0.0.8", 8080)])
    for url in ("rtsp://10.0.0.5:6379/", "http://10.0.0.6:5432/", "rtsp://10.0.0.7:1883/x", "http://10.0.0.8:8080/api/v1",
                "http://[::ffff:10.0.0.5]:6379/"):
        with pytest.raises(InvalidSourceError, match="GridWatch's own services"):
            validate_source_url(url, allow_private=policy)
    assert validate_source_url("rtsp://10.0.0.5:554/ch1", allow_private=policy)  # another port of that host: a camera


def _deployment(tmp_path: Path, **ingest) -> Path:
    doc = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    doc["grids"]["file"] = str((DEMO.parent / doc["grids"]["file"]).resolve())
    doc["ingest"] = {**doc.get("ingest", {}), **ingest}
    doc["services"] = {**doc.get("services", {}), "redis_url": "redis://10.9.0.2:6379/0",
                       "sql_url": "postgresql+psycopg://gw@10.9.0.3/gw", "mqtt_url": "mqtt://10.9.0.4:1883"}
    doc["gateway"]["host"], doc["gateway"]["port"] = "10.9.0.5", 8443
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_the_deployment_file_lists_camera_networks_and_its_services_are_refused(tmp_path):
    dep = load_deployment(_deployment(tmp_path, camera_networks=["10.9.0.0/16"]))
    policy = dep.ingest.source_policy()
    assert validate_source_url("rtsp://10.9.8.7/ch1", allow_private=policy)
    for port, host in ((6379, "10.9.0.2"), (5432, "10.9.0.3"), (1883, "10.9.0.4"), (8443, "10.9.0.5")):
        with pytest.raises(InvalidSourceError, match="own services"):
            validate_source_url(f"rtsp://{host}:{port}/", allow_private=policy)


def test_a_bad_network_is_a_file_line_error(tmp_path):
    path = _deployment(tmp_path, camera_networks=["10.9.0.0/16", "10.300.0.0/16"])
    with pytest.raises(ConfigError) as err:
        parse_deployment(path.read_text(encoding="utf-8"), str(path), path.parent)
    [problem] = [str(p) for p in err.value.problems]
    line = next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "camera_networks" in text)
    assert problem.startswith(f"{path}:") and "ingest.camera_networks" in problem and "10.300.0.0/16" in problem
    assert int(problem.split(":")[1]) >= line, problem


def test_the_old_flag_is_accepted_with_a_deprecation_message_and_no_longer_opens_loopback(tmp_path, caplog):
    dep = load_deployment(_deployment(tmp_path, allow_private_sources=True))
    assert "ingest.allow_private_sources is deprecated" in caplog.text
    policy = dep.ingest.source_policy()
    assert validate_source_url("rtsp://192.168.1.64/h264", allow_private=policy)
    assert validate_source_url("/var/video/cam.mp4", allow_private=policy)       # it stood for local files too
    with pytest.raises(InvalidSourceError, match="loopback"):
        validate_source_url("rtsp://127.0.0.1:8554/cam", allow_private=policy)


def test_the_api_follows_the_camera_networks(client, runtime):
    """Probe over REST: a camera-network address passes the guard (then simply does not answer); the same address
    outside the list, the API's own port and the Redis the runtime uses are refused by the guard."""
    ingest = runtime.deployment.ingest
    original = copy.deepcopy(ingest.camera_networks)
    try:
        ingest.camera_networks = ["10.255.255.0/24"]
        r = client.post("/api/v1/cameras/probe", json={"url": "rtsp://10.255.255.1:554/x", "timeout_s": 1}, headers=KEY)
        assert "private address" not in r.text and "own services" not in r.text, r.text   # past the guard
        outside = client.post("/api/v1/cameras/probe", json={"url": "rtsp://10.255.254.1/x", "timeout_s": 1}, headers=KEY)
        assert outside.status_code == 422 and "camera_networks" in outside.text, outside.text
        ingest.camera_networks = ["127.0.0.0/8"]                                           # even listed: loopback
        redis_port = int(runtime.deployment.services.redis_url.rsplit(":", 1)[1].split("/")[0])
        own = client.post("/api/v1/cameras/probe", json={"url": f"rtsp://127.0.0.1:{redis_port}/", "timeout_s": 1},
                          headers=KEY)
        assert own.status_code == 422 and ("own services" in own.text or "loopback" in own.text), own.text
    finally:
        ingest.camera_networks = original
