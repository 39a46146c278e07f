"""CPU of an evidence clip: remuxing the camera's H.264 packets vs encoding decoded frames (the baseline).

Why: the encoded clip (libx264 ``ultrafast``, one thread, analysis frames at ``evidence.fps`` and ``max_width``)
was the only way until clips were cut from the camera's own packets (``ingest.video.packets``). This times both
on the same shared footage in one run, with the code GridWatch runs:

* **encode** (baseline, still used for sources without packets): ``detectors.evidence.write_mp4`` of the clip's
  frames — (pre_s + post_s) × fps frames at max_width, as ``ClipWriter`` encodes them.
* **remux**: the ring's upkeep for every packet the camera sends (Annex B filter, copy, ``PacketRing.add``),
  measured separately as a share of one core per camera since it runs whether or not a clip is cut, plus per
  clip the two remuxes ``EvidenceRecorder`` makes (the part up to the event at once, the whole clip at the end).

CPU is ``time.process_time`` (all threads). Decoding is not counted: the analysis decodes the stream either way.

    .venv/bin/python benchmarks/bench_clips.py                  # both footage files, 5 clips each (~30 s)
    .venv/bin/python benchmarks/bench_clips.py --clips 10 --pre 5 --post 10 --footage town_centre_pedestrians_1080p.mp4
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import av.bitstream

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from detectors.evidence import write_mp4  # noqa: E402
from ingest.video.packets import ANNEXB_FILTERS, PacketRing, PacketWindow, StreamFormat, StreamPacket, remux_mp4  # noqa: E402
from ingest.video.picture import scaled_size  # noqa: E402

FOOTAGE = REPO.parent / "shared" / "footage"
DEFAULT_FOOTAGE = ("intersection_traffic_cctv.mp4", "town_centre_pedestrians_1080p.mp4")


def ring_of(path: Path, seconds: float, pre: float, event: float) -> tuple[PacketWindow, list[StreamPacket], float]:
    """Demux ``seconds`` of the file (looped) through the ring as a camera would: (the ring's window at ``event``,
    every packet, the ring's upkeep in CPU seconds).

    ``at`` is the packet's stream time, so the ring's windows are in stream seconds. Only the ring's own work is
    timed (the filter, the copy, ``add``), not the demuxing the decoder does anyway.
    """
    keep_s = pre + 1.0  # as EvidenceRecorder asks (KEEP_MARGIN_S)
    ring, packets, upkeep, offset, window = PacketRing(), [], 0.0, 0.0, None
    ring.keep(keep_s)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        ctx = s.codec_context
        ring.restart(StreamFormat(ctx.name, ctx.width, ctx.height))
        bsf = av.bitstream.BitStreamFilterContext(ANNEXB_FILTERS[ctx.name], s)
        tb = s.time_base
        while True:
            last = offset
            for p in c.demux(s):
                if p.dts is None:
                    continue
                t0 = time.process_time()
                pts, dts, key = float(p.pts * tb) + offset, float(p.dts * tb) + offset, bool(p.is_keyframe)
                for out in bsf.filter(p):
                    sp = StreamPacket(bytes(out), pts, dts, key, pts)
                    ring.add(sp)
                    packets.append(sp)
                upkeep += time.process_time() - t0
                last = max(last, pts)
                if window is None and pts >= event:
                    window = ring.window(event - pre, event)
                if pts >= seconds:
                    assert window is not None
                    return window, packets, upkeep
            offset = last + 1.0 / float(s.average_rate or 25)
            c.seek(0, stream=s)


def frames_of(path: Path, seconds: float, fps: float, width: int) -> list[tuple[float, "av.VideoFrame"]]:
    """The analysis frames the encoded clip is made of: ``fps`` per second at ``width`` (looped)."""
    out, offset, next_t = [], 0.0, 0.0
    while True:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            last = 0.0
            for f in c.decode(s):
                t = float(f.time) + offset
                last = t
                if t + 1e-6 >= next_t:
                    w, h = scaled_size(f.width, f.height, width)
                    out.append((t, f.to_ndarray(format="bgr24", width=w, height=h)))
                    next_t += 1.0 / fps
                if t >= seconds:
                    return out
            offset = last + 1.0 / float(s.average_rate or 25)


def bench(name: str, clips: int, pre: float, post: float, fps: float, width: int) -> list[dict]:
    path = FOOTAGE / name
    span = pre + post
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        size, cam_fps = (s.codec_context.width, s.codec_context.height), float(s.average_rate or 25)
    event = pre + 2.5  # a keyframe before pre_s is in the ring
    window, packets, upkeep = ring_of(path, event + post + 0.5, pre, event)
    frames = frames_of(path, span, fps, width)
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-clips-"))
    # baseline: encode
    cpu, nbytes = 0.0, 0
    for i in range(clips):
        target = tmp / f"enc-{i}.mp4"
        t0 = time.process_time()
        write_mp4(target, frames)
        cpu += time.process_time() - t0
        nbytes += target.stat().st_size
        target.unlink()
    enc_size = frames[0][1].shape[1], frames[0][1].shape[0]
    rows.append(dict(footage=name, way="encode (baseline)", res=f"{enc_size[0]}x{enc_size[1]}", fps=fps,
                     ms=1000 * cpu / clips, upkeep=0.0, mb=nbytes / clips / 1e6))
    # remux: the pre-event part at the event, the whole clip at its end
    cpu, nbytes = 0.0, 0
    for _ in range(clips):
        t0 = time.process_time()
        remux_mp4(window.fmt, window.packets)
        first = window.packets[0].at
        whole = remux_mp4(window.fmt, [p for p in packets if first <= p.at <= event + post])
        cpu += time.process_time() - t0
        nbytes += len(whole)
    stream_s = packets[-1].pts - packets[0].pts
    rows.append(dict(footage=name, way="remux (camera packets)", res=f"{size[0]}x{size[1]}", fps=cam_fps,
                     ms=1000 * cpu / clips, upkeep=100 * upkeep / stream_s, mb=nbytes / clips / 1e6))
    os.rmdir(tmp)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--footage", nargs="*", default=list(DEFAULT_FOOTAGE))
    ap.add_argument("--clips", type=int, default=5)
    ap.add_argument("--pre", type=float, default=5.0, help="evidence.pre_s")
    ap.add_argument("--post", type=float, default=10.0, help="evidence.post_s")
    ap.add_argument("--fps", type=float, default=5.0, help="evidence.fps (encoded clips)")
    ap.add_argument("--width", type=int, default=640, help="evidence.max_width (encoded clips)")
    a = ap.parse_args()
    rows = [r for name in a.footage for r in bench(name, a.clips, a.pre, a.post, a.fps, a.width)]
    print(f"clips of {a.pre:g}+{a.post:g} s, {a.clips} per row; load average {os.getloadavg()[0]:.1f}")
    print(f"| footage | clip | resolution | fps | CPU ms per clip | ring upkeep, % of a core per camera | MB per clip |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['footage']} | {r['way']} | {r['res']} | {r['fps']:g} | {r['ms']:.1f} | {r['upkeep']:.2f} | {r['mb']:.2f} |")
    for name in a.footage:
        enc, rem = [r for r in rows if r["footage"] == name]
        print(f"{name}: remux uses {enc['ms'] / max(rem['ms'], 1e-3):.0f}x less CPU per clip than encoding")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
