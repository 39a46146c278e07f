"""A real S3-compatible server for the evidence-store tests: moto's server (PyPI ``moto[s3]``), on a free port."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

ACCESS_KEY, SECRET_KEY = "gridwatch-test", "gridwatch-test-secret"


@dataclass
class S3Server:
    endpoint: str
    server: object

    def bucket(self) -> str:
        """A new bucket of this test's own."""
        import boto3

        name = f"gw-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                     aws_secret_access_key=SECRET_KEY).create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The credentials the store reads from the environment (as in production: never in the deployment file)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def _start() -> S3Server:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return S3Server(f"http://{host}:{port}", server)


@pytest.fixture
def s3_server(s3_env) -> Iterator[S3Server]:
    server = _start()
    try:
        yield server
    finally:
        server.stop()
