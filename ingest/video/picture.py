"""A decoded (or still-encoded) picture as a source yields it, converted to BGR only when someone needs it.

Cameras deliver 15–30 fps but the detectors want ~5 fps at 640 px: converting every frame to a
full-size BGR array would waste most of the decode budget. A Picture keeps the decoder's own frame
(or the JPEG bytes of an MJPEG part) and scales/converts on demand — once per analysis frame, and for
``CameraManager.latest`` only when a snapshot is asked for.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import threading

import cv2
import numpy as np

if TYPE_CHECKING:
    import av


def scaled_size(width: int, height: int, target_width: int | None) -> tuple[int, int]:
    """Size for ``target_width`` keeping the aspect ratio; never upscales; even dimensions for YUV."""
    if not target_width or target_width >= width:
        return width, height
    new_h = max(2, int(round(height * target_width / width / 2.0)) * 2)
    return max(2, target_width - target_width % 2), new_h


class Picture:
    """One picture of a stream. ``pts`` is stream time in seconds (monotonic per camera), or None."""

    __slots__ = ("pts", "key_frame", "_av", "_array", "_jpeg", "_size", "_lock")

    def __init__(
        self,
        *,
        pts: float | None,
        av_frame: av.VideoFrame | None = None,
        array: np.ndarray | None = None,
        jpeg: bytes | None = None,
        key_frame: bool | None = None,
    ):
        self.pts = pts
        self.key_frame = key_frame
        self._av = av_frame
        self._array = array
        self._jpeg = jpeg
        self._size: tuple[int, int] | None = None
        self._lock = threading.Lock()  # the decoder thread and a snapshot request may convert at once
        if av_frame is not None:
            self._size = (int(av_frame.width), int(av_frame.height))
        elif array is not None:
            self._size = (int(array.shape[1]), int(array.shape[0]))

    def _decode_jpeg(self) -> np.ndarray:
        assert self._jpeg is not None
        image = cv2.imdecode(np.frombuffer(self._jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"undecodable JPEG ({len(self._jpeg)} bytes)")
        self._array, self._jpeg = image, None
        self._size = (int(image.shape[1]), int(image.shape[0]))
        return image

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the full picture; decodes a JPEG part if needed (ValueError when corrupt)."""
        if self._size is None:
            with self._lock:
                if self._size is None:
                    self._decode_jpeg()
        assert self._size is not None
        return self._size

    def to_bgr(self, width: int | None = None) -> np.ndarray:
        """BGR uint8 H×W×3, scaled down to ``width`` (aspect kept) when given. Raises ValueError on corrupt data."""
        with self._lock:
            return self._to_bgr(width)

    def _to_bgr(self, width: int | None) -> np.ndarray:
        if self._av is not None:
            w, h = scaled_size(self._av.width, self._av.height, width)
            try:
                return self._av.to_ndarray(format="bgr24", width=w, height=h)
            except Exception as exc:  # noqa: BLE001 - FFmpeg's swscale reports bad frames many ways
                raise ValueError(f"cannot convert frame: {exc}") from None
        image = self._array if self._array is not None else self._decode_jpeg()
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        w, h = scaled_size(image.shape[1], image.shape[0], width)
        if (w, h) != (image.shape[1], image.shape[0]):
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        return image
