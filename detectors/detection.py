"""Value types of the video path: a detection in frame pixels, and the geometry helpers that map crops back."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels


@dataclass(frozen=True, slots=True)
class Detection:
    """One object the detector saw in one frame (``label`` is the model's class name)."""

    box: Box
    score: float
    label: str


def nms_merge(dets: np.ndarray, iou: float = 0.5, contain: float = 0.8) -> np.ndarray:
    """Class-wise NMS over detections gathered from overlapping crops (rows: x1,y1,x2,y2,score,cls).

    Besides IoU it drops a box mostly contained in a higher-scoring box of the same class: a crop edge cuts an
    object into a partial box that IoU alone would keep.
    """
    if len(dets) <= 1:
        return dets
    boxes = dets[:, :4]
    xywh = np.column_stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]])
    keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), dets[:, 4].tolist(), dets[:, 5].astype(int).tolist(), 0.0, iou)
    dets = dets[np.asarray(keep, dtype=int).ravel()]
    dets = dets[np.argsort(-dets[:, 4])]
    kept: list[int] = []
    area = (dets[:, 2] - dets[:, 0]) * (dets[:, 3] - dets[:, 1])
    for i in range(len(dets)):
        drop = False
        for j in kept:
            if dets[j, 5] != dets[i, 5]:
                continue
            ix = max(0.0, min(dets[i, 2], dets[j, 2]) - max(dets[i, 0], dets[j, 0]))
            iy = max(0.0, min(dets[i, 3], dets[j, 3]) - max(dets[i, 1], dets[j, 1]))
            if area[i] > 0 and ix * iy / area[i] >= contain:
                drop = True
                break
        if not drop:
            kept.append(i)
    return dets[kept]
