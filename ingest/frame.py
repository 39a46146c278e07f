"""The decoded picture that flows from a video source into the detectors."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ingest.video.packets import PacketRing


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame of one camera.

    ``captured_at`` is the wall-clock time (``time.time()``) at which the frame left the
    decoder; every latency GridWatch reports (frame → anomaly → ticket) starts from it.
    """

    camera_id: str
    seq: int
    pts: float
    captured_at: float
    image: np.ndarray  # BGR, uint8, H x W x 3
    packets: "PacketRing | None" = None  # the source's compressed packets, for evidence clips (same process only)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])
