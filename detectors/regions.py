"""Where to run the object model: motion boxes clustered into model-sized square regions, or a full-frame pass.

Why (after Frigate): a 320×320 crop of a 640-wide frame keeps small objects at native scale and costs a quarter
of a full 640 pass; when motion is everywhere, a few overlapping square tiles cover the frame instead.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from detectors.detection import Box

PAD_VALUE = 114


def _square_around(box: Box, side: float, w: int, h: int) -> tuple[int, int, int, int]:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    sw, sh = min(side, w), min(side, h)
    x1 = int(round(min(max(cx - sw / 2, 0), w - sw)))
    y1 = int(round(min(max(cy - sh / 2, 0), h - sh)))
    return x1, y1, int(round(x1 + sw)), int(round(y1 + sh))


def full_frame_regions(w: int, h: int, size: int, tiles: bool = True) -> list[tuple[int, int, int, int]]:
    """The whole frame: one letterboxed pass, or (``tiles``, frame much wider than the model) overlapping square
    tiles of side min(w, h) that keep small objects nearer native scale at the cost of one model call per tile."""
    if not tiles or max(w, h) <= 1.25 * size:
        return [(0, 0, w, h)]
    side = min(w, h)
    n = math.ceil(max(w, h) / side)
    if w >= h:
        xs = np.linspace(0, w - side, n).round().astype(int)
        return [(int(x), 0, int(x) + side, h) for x in xs]
    ys = np.linspace(0, h - side, n).round().astype(int)
    return [(0, int(y), w, int(y) + side) for y in ys]


def plan_regions(
    boxes: list[Box], w: int, h: int, size: int, max_regions: int = 4, full_fraction: float = 0.6,
    tiles: bool = False,
) -> tuple[list[tuple[int, int, int, int]], bool]:
    """Cluster boxes (frame pixels) into square regions at least ``size`` wide; returns (regions, is_full_frame).

    When motion covers most of the frame (``full_fraction``, or more than ``max_regions`` regions) the answer is
    one letterboxed full-frame pass (``tiles=False``, the default): at imgsz 320 a 640x360 frame would otherwise
    be two tiles, i.e. twice the detector work for a frame that moves everywhere — the case that saturates a CPU.
    """
    regions: list[tuple[int, int, int, int]] = []
    for box in sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1])):
        if any(r[0] <= box[0] and r[1] <= box[1] and r[2] >= box[2] and r[3] >= box[3] for r in regions):
            continue
        side = max(size, 1.2 * max(box[2] - box[0], box[3] - box[1]))
        regions.append(_square_around(box, side, w, h))
        if len(regions) > max_regions:
            return full_frame_regions(w, h, size, tiles), True
    if not regions:
        return [], False
    cover = np.zeros((max(1, h // 8), max(1, w // 8)), np.uint8)
    for x1, y1, x2, y2 in regions:
        cover[y1 // 8 : max(y1 // 8 + 1, y2 // 8), x1 // 8 : max(x1 // 8 + 1, x2 // 8)] = 1
    if cover.mean() >= full_fraction:
        return full_frame_regions(w, h, size, tiles), True
    return regions, False


def crop_for_model(image: np.ndarray, region: tuple[int, int, int, int], size: int) -> tuple[np.ndarray, float]:
    """Cut ``region`` out, pad it square at the bottom/right and resize to size×size; returns (crop, scale).

    A model-space point (x, y) is ``(x * scale + region.x1, y * scale + region.y1)`` in the frame.
    """
    x1, y1, x2, y2 = region
    crop = image[y1:y2, x1:x2]
    ch, cw = crop.shape[:2]
    side = max(ch, cw)
    if ch != cw:
        crop = cv2.copyMakeBorder(crop, 0, side - ch, 0, side - cw, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    if side != size:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
    return np.ascontiguousarray(crop), side / size
