"""The run command's role flags: bad values are refused with a clear message before anything starts, and
``--video-workers`` reaches the engine factory through its one switch."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize(("args", "message"), [
    (["--roles", "api,camera"], "unknown role(s) camera; choose from api,intake,sla,notify,devices,video"),
    (["--roles", ","], "unknown role(s) (none given)"),
    (["--devices-partition", "2/2"], "--devices-partition '2/2': need 0 <= i < n"),
    (["--devices-partition", "x"], "expected i/n"),
])
def test_bad_role_flags_are_refused_clearly(args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "run", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_parse_roles_keeps_the_canonical_order() -> None:
    from gateway.runtime import ROLES, parse_roles

    assert parse_roles(None) == ROLES
    assert parse_roles("video, api") == ("api", "video")


def test_video_workers_select_the_multi_process_engine_through_the_switch(tmp_path: Path, monkeypatch, caplog) -> None:
    from detectors import video_role
    from detectors.inprocess import InProcessVideo
    from gateway.config import load_deployment

    dep = load_deployment()
    dep.detection.model.path = None
    kw = dict(publish=lambda a: None, on_health=None, evidence_dir=tmp_path, sources=False)
    with caplog.at_level(logging.WARNING, logger="detectors.video_role"):
        assert isinstance(video_role.make_engine(dep, 0, **kw), InProcessVideo)
        assert not caplog.records
        kw["sources"] = True
        assert isinstance(video_role.make_engine(dep, 3, **kw), InProcessVideo)  # no multi-process engine in this build
        assert "--video-workers 3 asked for" in caplog.text

    made: list[int] = []

    class Pool:  # stands in for the multi-process engine: only the factory's choice is under test
        def __init__(self, deployment, *, workers, publish, on_health, evidence_dir):  # noqa: ANN001
            made.append(workers)

    monkeypatch.setattr(video_role, "MULTI_PROCESS_ENGINE", Pool)
    assert isinstance(video_role.make_engine(dep, 3, **kw), Pool) and made == [3]
    assert isinstance(video_role.make_engine(dep, 0, **kw), InProcessVideo)
