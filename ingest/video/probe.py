"""Probe a source before attaching it: codec, size, frame rate, GOP length and a snapshot, within a deadline.

Integrators probe a URL from the console to check credentials, reachability and the sub-stream's
resolution before saving a camera. The probe runs in a helper thread and returns what it learned by
the deadline, so a camera that never answers costs ``timeout_s`` and not a hung request.
Call it from a worker thread (``asyncio.to_thread``): it blocks.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2

from ingest.config import AnalysisConfig, SourceConfig
from ingest.video.errors import ProbeError, SourceError
from ingest.video.registry import source_factory
from ingest.video.resolve import resolve_source
from ingest.video.source import SourceContext
from ingest.video.urls import SourcePolicy, redact_text, redact_url, url_scheme


@dataclass(frozen=True)
class ProbeResult:
    url: str  # redacted
    kind: str
    codec: str | None
    width: int | None
    height: int | None
    fps: float | None
    keyframe_interval: int | None  # frames from one keyframe to the next
    keyframe_interval_s: float | None
    first_frame_s: float | None  # connect-to-first-picture latency
    snapshot_jpeg: bytes | None = field(repr=False, default=None)


def probe(
    url: str,
    *,
    allow_private: SourcePolicy | bool = False,
    timeout_s: float = 5.0,
    base_dir: Path | None = None,
    footage_dir: Path | None = None,
    transport: Literal["tcp", "udp"] = "tcp",
) -> ProbeResult:
    """Connect to ``url``, read until two keyframes (or ``timeout_s``) and describe the stream.

    Raises InvalidSourceError (refused URL), SourceUnavailableError (missing file) or ProbeError (no
    picture by the deadline, with the source's own reason when it gave one).
    """
    if url_scheme(url) == "whip":
        raise ProbeError("whip: sources have nothing to probe until a publisher connects")
    base = base_dir or Path.cwd()
    config = SourceConfig(url=url, transport=transport, open_timeout_s=timeout_s, read_timeout_s=timeout_s)
    resolved = resolve_source(config, base_dir=base, footage_dir=footage_dir or base, allow_private=allow_private)
    ctx = SourceContext(
        camera_id="probe", source=config, analysis=AnalysisConfig(), allow_private=allow_private,
        base_dir=base, footage_dir=footage_dir or base, realtime=False,
    )
    source = source_factory(url_scheme(resolved.url))(resolved.url, ctx)
    found: dict = {"error": None, "info": None, "pictures": 0, "keys": [], "first": None, "pts": []}
    started = time.monotonic()

    def run() -> None:
        try:
            found["info"] = source.open()
            for picture in source.frames():
                n = found["pictures"]
                if n == 0:
                    found["first"] = (picture, time.monotonic() - started)
                found["pictures"] = n + 1
                if picture.pts is not None and len(found["pts"]) < 64:
                    found["pts"].append(picture.pts)
                if picture.key_frame:
                    found["keys"].append((n, picture.pts))
                if len(found["keys"]) >= 2 or ctx.stop.is_set():
                    break  # every picture of MJPEG/snapshot/synthetic is a keyframe: two pictures suffice
        except SourceError as exc:
            found["error"] = exc.reason
        except Exception as exc:  # noqa: BLE001 - a probe reports, never raises foreign errors
            found["error"] = f"unexpected {type(exc).__name__}: {exc}"
        finally:
            source.close()

    thread = threading.Thread(target=run, name="gw-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    ctx.stop.set()
    thread.join(0.5)
    first = found["first"]
    if first is None:
        why = found["error"] or f"no picture within {timeout_s:g}s"
        raise ProbeError(redact_text(f"probe of {redact_url(url)} failed: {why}", url))
    picture, first_s = first
    image = picture.to_bgr(None)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    info = found["info"]
    fps = info.fps if info and info.fps else None
    pts = found["pts"]
    if fps is None and len(pts) >= 3 and pts[-1] > pts[0]:
        fps = round((len(pts) - 1) / (pts[-1] - pts[0]), 2)
    keys = found["keys"]
    gop = gop_s = None
    if len(keys) >= 2:
        gop = keys[1][0] - keys[0][0]
        if fps:
            gop_s = round(gop / fps, 3)
        elif keys[0][1] is not None and keys[1][1] is not None:
            gop_s = round(keys[1][1] - keys[0][1], 3)
    return ProbeResult(
        url=redact_url(url),
        kind=source.kind,
        codec=info.codec if info else None,
        width=int(image.shape[1]),
        height=int(image.shape[0]),
        fps=round(fps, 3) if fps else None,
        keyframe_interval=gop,
        keyframe_interval_s=gop_s,
        first_frame_s=round(first_s, 3),
        snapshot_jpeg=jpeg.tobytes() if ok else None,
    )
