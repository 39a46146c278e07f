"""SSRF through camera URLs: the API never connects to loopback, link-local, metadata or private addresses it
was not allowed to, whatever spelling or DNS name points there, and a redirect cannot launder one.

A TCP listener on 127.0.0.1 counts connections: a refused URL must be refused before any connection.
The gateway engineer's ``tests/ingest_video/test_video_urls.py`` checks the URL validator itself; this
checks the REST surface (probe and attach) an integrator or an attacker with a stolen key would use.
"""
from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Iterator

import pytest

from gw_support import INTEGRATOR_KEY

pytestmark = pytest.mark.timeout(120)
KEY = {"X-API-Key": INTEGRATOR_KEY}


class Listener:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.accepted += 1
                conn.close()
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._th.join(2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


def _targets(port: int) -> list[str]:
    return [
        f"rtsp://127.0.0.1:{port}/live", f"http://127.0.0.1:{port}/mjpeg", f"rtsp://localhost:{port}/x",
        f"rtsp://127.1:{port}/x", f"rtsp://2130706433:{port}/x", f"rtsp://0x7f000001:{port}/x", f"rtsp://0.0.0.0:{port}/x",
        f"rtsp://[::1]:{port}/x", f"rtsp://[::ffff:127.0.0.1]:{port}/x", f"http://user:pw@127.0.0.1:{port}/x",
        "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/latest/meta-data/", "http://100.100.100.200/",
        "http://metadata.google.internal/computeMetadata/v1/", "rtsp://10.0.0.5/live", "rtsp://192.168.1.10/live",
        "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "dict://127.0.0.1:6379/info",
        f"rtsp://127.0.0.1:{port}@evil.example/x",
    ]


@pytest.fixture
def no_test_loopback(monkeypatch):
    """Production rules: without the suite's test-only loopback switch (tests/conftest.py)."""
    monkeypatch.delenv("GRIDWATCH_TEST_ONLY_LOOPBACK_CAMERAS", raising=False)


def test_probe_refuses_internal_targets_without_connecting(client, runtime, listener, no_test_loopback):
    assert runtime.deployment.ingest.allow_private_sources is False and runtime.deployment.ingest.camera_networks == []
    bad = []
    for url in _targets(listener.port):
        r = client.post("/api/v1/cameras/probe", json={"url": url, "timeout_s": 2}, headers=KEY)
        if r.status_code not in (400, 422) or "internal error" in r.text:
            bad.append(f"{url}: {r.status_code} {r.text[:120]}")
    assert bad == []
    assert listener.accepted == 0, f"{listener.accepted} connection(s) reached the loopback listener"


def test_attaching_a_camera_with_an_internal_url_is_refused(client, runtime, listener, no_test_loopback):
    pose = {"position": {"lon": 120.105, "lat": 30.276}, "bearing_deg": 0, "height_m": 5, "fov_deg": 90}
    bad = []
    for i, url in enumerate(_targets(listener.port)):
        body = {"id": f"cam-ssrf-{i}", "name": "ssrf", "source": {"url": url}, "pose": pose}
        r = client.post("/api/v1/cameras", json=body, headers=KEY)
        if r.status_code not in (400, 422):
            bad.append(f"{url}: {r.status_code} {r.text[:120]}")
    assert bad == []
    assert listener.accepted == 0


class _Redirect(BaseHTTPRequestHandler):
    target = "http://169.254.169.254/latest/meta-data/"

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(302)
        self.send_header("Location", self.target)
        self.end_headers()

    def log_message(self, *_a) -> None:  # noqa: ANN002
        pass


def test_a_redirect_to_the_metadata_address_is_not_followed(client, runtime):
    """Even where private sources are allowed (an on-prem rig), a redirect to cloud metadata is refused."""
    server = HTTPServer(("127.0.0.1", 0), _Redirect)
    th = threading.Thread(target=server.serve_forever, daemon=True)
    th.start()
    runtime.deployment.ingest.allow_private_sources = True
    try:
        r = client.post("/api/v1/cameras/probe", json={"url": f"http://127.0.0.1:{server.server_port}/snap.jpg", "timeout_s": 3},
                        headers=KEY)
        assert r.status_code in (400, 422), r.text
        assert "169.254" in r.text or "metadata" in r.text.lower() or "refus" in r.text.lower(), r.text
    finally:
        runtime.deployment.ingest.allow_private_sources = False
        server.shutdown()
        th.join(5)
