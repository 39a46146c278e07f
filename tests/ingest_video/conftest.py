"""Fixtures of the video-ingest tests: the real RTSP server and media helpers from tests/fixtures."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from ingest.config import IngestConfig
from ingest.video import CameraManager
from tests.fixtures.cameras import Recorder


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_manager(recorder: Recorder, tmp_path: Path) -> Iterator[Callable[..., CameraManager]]:
    """Build CameraManagers wired to ``recorder`` (private sources allowed: everything runs on 127.0.0.1)."""
    managers: list[CameraManager] = []

    def make(**ingest: object) -> CameraManager:
        config = IngestConfig.model_validate({"allow_private_sources": True, **ingest})
        manager = CameraManager(config, tmp_path, recorder.sink, recorder.on_health)
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.stop()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local test servers must not be reached through an HTTP proxy of the environment."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        if var in os.environ:
            monkeypatch.delenv(var)
