"""Files looped as live, footage: clips with their fallback, generated scenes, frozen pictures, slow sinks."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from ingest.config import AnalysisConfig, SourceConfig
from ingest.video import SCENES, SourceUnavailableError
from ingest.video.source import SourceContext
from ingest.video.synthetic import SyntheticSource
from tests.fixtures.cameras import Recorder, camera
from tests.fixtures.media import FOOTAGE, footage, short_clip


@pytest.mark.timeout(60)
def test_footage_clip_plays_at_native_rate(make_manager, recorder: Recorder) -> None:
    footage("fall_indoor_office_urfd.mp4")
    manager = make_manager(footage_dir=str(FOOTAGE))
    manager.add(camera("office", "footage:fall_indoor_office_urfd.mp4", analysis={"fps": 5}))
    recorder.wait_frames("office", 3, 10)
    status = recorder.wait(lambda: (s := manager.status()["office"]).camera_fps > 0 and s, 10, "fps")
    recorder.wait(lambda: abs(manager.status()["office"].camera_fps - 30) < 4, 10, "camera fps ≈ 30 (native)")
    status = manager.status()["office"]
    assert (status.kind, status.codec, status.resolution) == ("file", "h264", (640, 480))


@pytest.mark.timeout(60)
def test_file_loops_as_a_live_stream_with_monotonic_time(make_manager, recorder: Recorder, tmp_path: Path) -> None:
    clip = short_clip("intersection_traffic_cctv.mp4", 1.0, tmp_path / "one_second.mp4", fps=10)
    manager = make_manager()
    manager.add(camera("loop", f"file:{clip}", analysis={"fps": 10, "width": 320}))
    frames = recorder.wait_frames("loop", 26, 15)  # 2.5 passes of a 1 s clip
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in zip(pts, pts[1:])), pts
    assert pts[-1] - pts[0] > 2.0
    status = manager.status()["loop"]
    assert status.state == "online" and status.reconnects == 0  # looping is not reconnecting


@pytest.mark.timeout(30)
def test_missing_footage_uses_the_fallback_scene(make_manager, recorder: Recorder, tmp_path: Path) -> None:
    manager = make_manager(footage_dir=str(tmp_path / "no-footage-here"))
    manager.start([
        camera("plaza", "footage:plaza_pedestrians_720p.avi", fallback="synthetic:crowd"),
        camera("lost", "footage:plaza_pedestrians_720p.avi"),  # no fallback: reported, not raised
    ])
    frames = recorder.wait_frames("plaza", 3, 10)
    assert frames[-1].width == 640
    status = manager.status()
    assert status["plaza"].kind == "synthetic"
    assert "fallback synthetic:crowd" in status["plaza"].reason
    assert status["lost"].state == "error" and "not found" in status["lost"].reason
    assert any(e.camera_id == "lost" and e.kind == "error" for e in recorder.events)
    with pytest.raises(SourceUnavailableError, match="footage clip"):
        manager.add(camera("lost2", "footage:nope.mp4"))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("scene", sorted(set(SCENES) - {"still"}))
def test_generated_scenes_move(scene: str) -> None:
    ctx = SourceContext(camera_id="s", source=SourceConfig(url=f"synthetic:{scene}?fps=60"),
                        analysis=AnalysisConfig(), stop=threading.Event())
    source = SyntheticSource(f"synthetic:{scene}?fps=60", ctx)
    info = source.open()
    assert (info.width, info.height) == (640, 360)
    pictures = []
    for picture in source.frames():
        pictures.append(picture.to_bgr())
        if len(pictures) == 12:
            ctx.stop.set()
    first, last = pictures[0].astype(np.int16), pictures[-1].astype(np.int16)
    changed = np.abs(first - last).max(axis=2) > 30
    changed[:30, :] = False  # ignore the clock overlay
    assert changed.mean() > 0.002, f"{scene}: only {changed.mean():.4%} of the picture changed"


@pytest.mark.timeout(30)
def test_frozen_picture_is_reported(make_manager, recorder: Recorder) -> None:
    manager = make_manager()
    manager.start([camera("frozen", "synthetic:still", analysis={"fps": 10}),
                   camera("moving", "synthetic:walker", analysis={"fps": 10})])
    event = recorder.wait_event("frozen", "frozen", 10)
    assert "identical picture" in event.reason
    assert manager.status()["frozen"].frozen
    recorder.wait_frames("moving", 15, 10)
    assert "frozen" not in recorder.kinds("moving")


@pytest.mark.timeout(30)
def test_slow_sink_skips_frames_instead_of_queueing(recorder: Recorder, tmp_path: Path) -> None:
    from ingest.config import IngestConfig
    from ingest.video import CameraManager

    release = threading.Event()
    seen: list[int] = []

    def slow_sink(frame) -> None:  # noqa: ANN001
        seen.append(frame.seq)
        release.wait(0.5)  # a detector that needs 0.5 s per frame

    manager = CameraManager(IngestConfig(), tmp_path, slow_sink, recorder.on_health)
    try:
        manager.add(camera("busy", "synthetic:traffic?fps=20", analysis={"fps": 10}))
        recorder.wait(lambda: manager.status()["busy"].skipped >= 8 and len(seen) >= 4, 15, "skipped frames")
        status = manager.status()["busy"]
        assert status.process_fps <= 3.0 and status.skipped_fps >= 5.0, status
        gaps = [b - a for a, b in zip(seen, seen[1:])]
        assert max(gaps) > 1  # the sink got the newest frame, not the next queued one
    finally:
        release.set()
        manager.stop()
