"""The classical fire cue's hold, on drawn frames (pure logic, milliseconds): a flame keeps its clock through frames
where it is missing, a smoke plume against a flame halves its hold, a whole view changing does not.

The real-clip check of the same (the e-scooter fire within 5 s) is tests/detectors/test_footage.py."""
from __future__ import annotations

import numpy as np
import pytest

from detectors.fire import FireSmokeDetector

W, H, RATE = 320, 180, 5.0
BRIGHT, DIM = (20, 130, 250), (10, 70, 190)  # BGR: both fire-coloured, 40+ grey levels apart (a flicker)


def _background() -> np.ndarray:
    rng = np.random.default_rng(7)  # a textured scene (tarmac, walls): smoke is smoother than it
    return np.clip(100 + rng.normal(0, 25, (H, W, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)


def _flame(img: np.ndarray, i: int, x: int, y: int, size: int) -> None:
    img[y:y + size, x:x + size] = BRIGHT if i % 2 else DIM


def _first_alert(frames) -> tuple[float, str, tuple] | None:
    """Feed (time, image) pairs; the time, kind and box of the first cue."""
    det = FireSmokeDetector()
    for now, img in frames:
        cue = det.update(img, now)
        if cue is not None:
            return now, cue.kind, cue.box
    return None


def _scene(n: int, draw) -> list[tuple[float, np.ndarray]]:
    """``n`` analysed frames at 5/s: 5 of bare background (the detector learns it), then ``draw(img, i)``."""
    bg = _background()
    out = []
    for i in range(n):
        img = bg.copy()
        if i >= 5:
            draw(img, i - 5)
        out.append((i / RATE, img))
    return out


@pytest.mark.timeout(10)
def test_a_flame_alone_is_held_two_seconds():
    hit = _first_alert(_scene(30, lambda img, i: _flame(img, i, 40, 100, 12)))
    assert hit is not None and hit[1] == "fire"
    assert 1 + 2.0 <= hit[0] <= 1 + 2.8, hit  # the flame from t = 1 s; 2 s held, the flicker needs a few frames


@pytest.mark.timeout(10)
def test_a_frame_without_the_flame_does_not_restart_its_clock():
    """For two frames the flame is missing (a spliced or corrupt frame, a passer-by in front) and the largest
    fire-like region is a smaller one elsewhere (orange text, a lamp): the flame keeps its clock and its track."""
    def flame_and_lamp(img, i):
        if i not in (8, 9):
            _flame(img, i, 40, 100, 16)
        _flame(img, i, 240, 40, 10)
    hit = _first_alert(_scene(30, flame_and_lamp))
    alone = _first_alert(_scene(30, lambda img, i: _flame(img, i, 40, 100, 16)))
    assert hit is not None and hit[1] == "fire" and hit[2][0] < 0.5, hit  # the flame's box, not the lamp's
    assert hit[0] == alone[0], (hit, alone)  # as if it had never been missing


@pytest.mark.timeout(10)
def test_a_flame_with_a_smoke_plume_against_it_is_held_one_second():
    def flame_and_plume(img, i):
        _flame(img, i, 40, 100, 12)
        img[40:100, 30:100] = 200  # a pale, smooth plume right above the flame
    hit = _first_alert(_scene(30, flame_and_plume))
    assert hit is not None and hit[1] == "fire"
    assert hit[0] <= 1 + 1.8, hit  # 1 s held (half of 2 s), well before the 2 s a flame alone needs


@pytest.mark.timeout(10)
def test_the_whole_view_changing_is_no_plume():
    def flame_and_cut(img, i):
        img[:] = 200  # the whole picture turns pale and smooth (a cut, an IR switch): "smoke" everywhere
        _flame(img, i, 40, 100, 12)
    hit = _first_alert(_scene(30, flame_and_cut))
    alone = _first_alert(_scene(30, lambda img, i: _flame(img, i, 40, 100, 12)))
    assert hit is not None and hit[1] == "fire" and hit[0] == alone[0], (hit, alone)  # the flame's full 2 s
