"""Per-camera health: the events other parts react to, the status the console shows, and fps counting.

Rates follow Frigate's vocabulary: *camera fps* is what the camera delivers (decoded pictures),
*process fps* what reached the detectors' sink, *skipped fps* analysis frames dropped because the
sink had not taken the previous one yet (a slow consumer). Decimating 25 fps down to the analysis
rate is not skipping and is not counted as such.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

HealthKind = Literal["online", "offline", "stalled", "frozen", "resolution_changed", "error"]
CameraState = Literal["starting", "online", "stalled", "offline", "error"]


@dataclass(frozen=True)
class HealthEvent:
    """Something about a camera's health changed; ``offline`` becomes a 设备离线 anomaly downstream."""

    camera_id: str
    kind: HealthKind
    reason: str
    at: float  # time.time()


@dataclass
class CameraStatus:
    """A snapshot of one camera for the console and the API (URL redacted)."""

    camera_id: str
    state: CameraState
    reason: str = ""
    source: str = ""
    kind: str = ""
    codec: str | None = None
    resolution: tuple[int, int] | None = None
    camera_fps: float = 0.0
    process_fps: float = 0.0
    skipped_fps: float = 0.0
    frames: int = 0  # frames handed to the sink
    decoded: int = 0  # pictures decoded (camera side)
    skipped: int = 0
    reconnects: int = 0
    last_frame_at: float | None = None
    frozen: bool = False
    analysis_size: tuple[int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (tuples become lists)."""
        data = asdict(self)
        for key in ("resolution", "analysis_size"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data


class RateMeter:
    """Events per second over a sliding window, from counters sampled by the watchdog (cheap for the hot path)."""

    def __init__(self, window_s: float = 5.0):
        self.window_s = window_s
        self._samples: deque[tuple[float, tuple[int, ...]]] = deque()
        self._lock = threading.Lock()

    def sample(self, counts: tuple[int, ...], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._samples.append((now, counts))
            while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
                self._samples.popleft()

    def rates(self) -> tuple[float, ...]:
        with self._lock:
            if len(self._samples) < 2:
                return ()
            (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        dt = t1 - t0
        if dt <= 0:
            return ()
        return tuple(round((b - a) / dt, 2) for a, b in zip(c0, c1, strict=True))
