"""The live view's boxes: what the video role publishes to Redis is drawn where the object is on the API's picture.

Real Redis, the real ``CameraStatePublisher`` and ``CameraStateReader``; the engine is a stand-in that hands out
one frame and its tracked boxes (what a VideoEngine gives the publisher), so the test needs no decoder or model.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import redis

from detectors.camera_state import CameraKeys, CameraStatePublisher, CameraStateReader
from detectors.engine import OverlayBox
from gateway.webrtc import render
from gw_support import REDIS_URL, drop_keys

pytestmark = pytest.mark.timeout(30)
W, H = 640, 360


@dataclass
class _Frame:
    image: np.ndarray
    seq: int = 1
    width: int = W
    height: int = H
    captured_at: float = 0.0


class _Engine:
    """One camera, a black frame and the boxes the tracker holds (analysis pixels)."""

    model_status = "loaded"

    def __init__(self, boxes: list[OverlayBox]):
        self.boxes = boxes

    def camera_status(self) -> dict[str, dict[str, Any]]:
        return {"cam-1": {"state": "online", "analysis_size": [W, H]}}

    def stats(self) -> dict[str, Any]:
        return {}

    def latest_frame(self, camera_id: str) -> _Frame:
        return _Frame(np.zeros((H, W, 3), np.uint8), captured_at=time.time())

    def overlay(self, camera_id: str) -> list[OverlayBox]:
        return self.boxes


@dataclass
class _Api:
    """What ``render`` reads of the API's runtime: the camera state in Redis."""

    camera_state: CameraStateReader


@pytest.fixture
def client():
    r = redis.Redis.from_url(REDIS_URL)
    prefix = f"gwtest-boxes-{uuid.uuid4().hex[:8]}"
    yield r, CameraKeys(prefix)
    drop_keys(r, prefix)
    r.close()


def _published(client, boxes: list[OverlayBox]) -> np.ndarray:
    r, keys = client
    pub = CameraStatePublisher(r, keys, _Engine(boxes), worker="test")
    pub.publish_status()
    pub.publish_pictures(time.monotonic())
    return render(_Api(CameraStateReader(r, keys)), "cam-1")


def _is_box_colour(pixel: np.ndarray) -> bool:
    """The first box is drawn amber, (0, 200, 255) in BGR; JPEG shifts colours a little."""
    return bool(np.all(np.abs(pixel.astype(int) - np.array([0, 200, 255])) < 60))


def test_a_box_is_drawn_where_the_object_is(client):
    img = _published(client, [OverlayBox((160.0, 90.0, 320.0, 180.0), "person", 0.9, 7)])
    assert img.shape[:2] == (H, W)
    assert _is_box_colour(img[90, 240]) and _is_box_colour(img[180, 240])  # top and bottom edges
    assert _is_box_colour(img[135, 160]) and _is_box_colour(img[135, 320])  # left and right edges
    assert not _is_box_colour(img[135, 240])  # the inside is the picture, not paint


def test_a_box_reaching_past_the_frame_edge_is_drawn_to_the_frame_scale(client):
    # a tracked object half out of the picture: its box ends past the right edge (x2 > width)
    img = _published(client, [OverlayBox((320.0, 180.0, 660.0, 330.0), "car", 0.8)])
    assert _is_box_colour(img[180, 480]) and _is_box_colour(img[330, 480])
