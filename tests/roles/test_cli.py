"""The run command's role flags: bad values are refused with a clear message before anything starts, and
``--video-workers`` reaches the engine factory through its one switch."""
from __future__ import annotations

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


def test_video_workers_choose_the_engine(tmp_path: Path) -> None:
    from alerts.publishing import OutboxFactory
    from detectors import video_role
    from detectors.inprocess import InProcessVideo
    from detectors.worker_pool import WorkerPoolVideo
    from gateway.config import load_deployment

    dep = load_deployment()
    dep.detection.model.path = None
    kw = dict(publish=lambda a: None, on_health=None, evidence_dir=tmp_path, sources=True)
    assert isinstance(video_role.make_engine(dep, 0, **kw), InProcessVideo)
    pool = video_role.make_engine(dep, 3, publish_factory=OutboxFactory("redis://127.0.0.1:6379/0", "gwtest-cli"), **kw)
    assert isinstance(pool, WorkerPoolVideo) and pool.n_workers == 3
    pool.stop()
    with pytest.raises(ValueError, match="publish_factory"):
        video_role.make_engine(dep, 2, **kw)
