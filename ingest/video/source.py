"""The contract every source type fulfils, built-in or plugged in through the ``gridwatch.sources`` group.

A Source is one camera's connection factory: the camera worker calls ``open`` (connect, learn the
stream), iterates ``frames`` until the stream ends or fails, calls ``close``, waits a backoff and
starts again. Keeping reconnection and health out of the sources means a plugin author writes only
"connect and yield pictures", and every source type gets the same backoff, stall/offline detection,
fps counting and pacing.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.config import AnalysisConfig, SourceConfig
from ingest.video.packets import PacketRing
from ingest.video.picture import Picture
from ingest.video.urls import SourcePolicy


@dataclass
class SourceContext:
    """What a source may know about its camera. ``stop`` is set when the camera is removed: check it often."""

    camera_id: str
    source: SourceConfig
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    stop: threading.Event = field(default_factory=threading.Event)
    allow_private: SourcePolicy | bool = False  # a bool is the deprecated ingest.allow_private_sources
    base_dir: Path = Path(".")
    footage_dir: Path = Path(".")
    realtime: bool = True  # pace files at their native rate; probing turns it off


@dataclass
class StreamInfo:
    """What ``open`` learned about the stream; unknown values stay None (a source may learn them later)."""

    codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    kind: str = "unknown"


class Source(ABC):
    """One camera's source. Construct cheaply (no I/O); do the I/O in ``open``/``frames``.

    Raise :class:`ingest.video.errors.SourceError` (or a subclass) with a readable reason on failure;
    anything else is reported as an unexpected error. Returning from ``frames`` means end of stream.
    """

    kind: str = "unknown"
    live: bool = True  # False for sources that loop themselves (files); EOF is then an error
    # The stream's own compressed packets for evidence clips (``ingest.video.packets``); None: clips are encoded.
    packets: PacketRing | None = None

    def __init__(self, url: str, ctx: SourceContext):
        self.url = url
        self.ctx = ctx

    @abstractmethod
    def open(self) -> StreamInfo:
        """Connect; return what is known about the stream. Must give up within ``source.open_timeout_s``."""

    @abstractmethod
    def frames(self) -> Iterator[Picture]:
        """Yield pictures as they arrive, newest last; return at end of stream; stop soon after ``ctx.stop``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection; called after every attempt, also after errors. Must not raise."""
