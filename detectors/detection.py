"""Detections on the video path: ``supervision.Detections`` in frame pixels, and how crops' rows become them.

Between processes (the detector process answering a video worker) a crop's detections travel as rows — an
n×6 float32 array ``x1, y1, x2, y2, score, class`` in crop pixels, a few hundred bytes to pickle. Everything that
reads them in a camera (the crop merge, the tracker, the rules' auxiliary models) takes ``sv.Detections`` —
named columns (``xyxy``, ``confidence``, ``class_id``), boolean indexing, ``Detections.merge`` — so no code
indexes columns by number.
"""
from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels

EMPTY_ROWS = np.zeros((0, 6), np.float32)


def from_rows(rows: np.ndarray | None, scale: float = 1.0, offset: tuple[float, float] = (0.0, 0.0),
              size: tuple[int, int] | None = None) -> sv.Detections:
    """A crop's rows as detections in frame pixels: scaled by ``scale``, moved by ``offset`` (the crop's corner)
    and clipped to ``size`` (frame width, height) when given."""
    rows = EMPTY_ROWS if rows is None or len(rows) == 0 else np.asarray(rows, np.float32).reshape(-1, 6)
    xyxy = rows[:, :4] * scale + np.array([offset[0], offset[1], offset[0], offset[1]], np.float32)
    if size is not None:
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, size[0])
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, size[1])
    return sv.Detections(xyxy=xyxy, confidence=rows[:, 4].copy(), class_id=rows[:, 5].astype(int))


def to_rows(dets: sv.Detections) -> np.ndarray:
    """The n×6 row form (for the wire and for ultralytics' tracker)."""
    if len(dets) == 0:
        return EMPTY_ROWS.copy()
    return np.column_stack([dets.xyxy, dets.confidence, dets.class_id]).astype(np.float32)


def merge_crops(dets: sv.Detections, iou: float = 0.5, contain: float = 0.8) -> sv.Detections:
    """Class-wise NMS over detections gathered from overlapping crops.

    Besides IoU (OpenCV's ``NMSBoxesBatched``) it drops a box mostly contained in a higher-scoring box of the same
    class: a crop edge cuts an object into a partial box that IoU alone would keep. Neither OpenCV nor
    supervision's ``with_nms`` has that containment test, so it stays here.
    """
    if len(dets) <= 1:
        return dets
    xyxy = dets.xyxy
    xywh = np.column_stack([xyxy[:, 0], xyxy[:, 1], xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]])
    keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), dets.confidence.tolist(), dets.class_id.astype(int).tolist(), 0.0, iou)
    dets = dets[np.asarray(keep, dtype=int).ravel()]
    dets = dets[np.argsort(-dets.confidence)]
    box, cls = dets.xyxy, dets.class_id
    area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
    kept: list[int] = []
    for i in range(len(dets)):
        inside = False
        for j in kept:
            if cls[j] != cls[i]:
                continue
            ix = max(0.0, min(box[i, 2], box[j, 2]) - max(box[i, 0], box[j, 0]))
            iy = max(0.0, min(box[i, 3], box[j, 3]) - max(box[i, 1], box[j, 1]))
            if area[i] > 0 and ix * iy / area[i] >= contain:
                inside = True
                break
        if not inside:
            kept.append(i)
    return dets[kept]
