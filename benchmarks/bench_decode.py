"""Decode throughput of N concurrent RTSP cameras through CameraManager, next to plain FFmpeg on the same streams.

    .venv/bin/python benchmarks/bench_decode.py            # short mode: N = 1, 4, 8, 16; sub-stream and 720p
    .venv/bin/python benchmarks/bench_decode.py --full     # longer windows, N up to 32

A real GStreamer RTSP server (tests/fixtures/rtsp_server.py) streams real footage live: the sub-stream
profile is 640x360 @ 15 fps, the main profile 1280x720 @ 25 fps (H.264, GOP 2 s). Each camera gets its
own RTSP session. For every N the benchmark measures, in the same run and one after the other:

* CameraManager: N cameras, analysis at 5 fps / 640 px (so it also scales and converts to BGR);
* FFmpeg: N processes of ``ffmpeg -rtsp_transport tcp -i URL -f null -`` (FFmpeg's default threading).

Both are measured over the same steady-state window (after every stream delivered its first frame
and a warm-up): decoded frames per second (the streams are live, so "keeping up" means N × camera fps)
and CPU seconds (all threads / all processes; the RTSP server is not counted). Prints a markdown table;
raw numbers go to benchmarks/results/bench_decode.raw.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ingest.config import CameraConfig, IngestConfig  # noqa: E402
from ingest.video import CameraManager  # noqa: E402
from tests.fixtures.rtsp import RtspServer, rtsp_available  # noqa: E402
from tests.fixtures.media import transcoded  # noqa: E402

PROFILES = {
    "sub 640x360@15": ("campus_pedestrians_pets2009.avi", 640, 360, 15),
    "main 1280x720@25": ("plaza_pedestrians_720p.avi", 1280, 720, 25),
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Measure:
    fps: float
    cpu_s: float
    wall_s: float
    first_frame_s: float | None = None

    @property
    def cpu_pct(self) -> float:
        return 100.0 * self.cpu_s / self.wall_s

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.cpu_s / max(1e-9, self.fps * self.wall_s)


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _wait(predicate, timeout_s: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        threading.Event().wait(0.05)


def bench_manager(urls: list[str], warmup_s: float, window_s: float) -> Measure:
    delivered = [0]

    def sink(frame) -> None:  # noqa: ANN001
        delivered[0] += 1

    cams = [CameraConfig.model_validate({
        "id": f"bench-{i}", "name": f"bench {i}", "source": {"url": url, "transport": "tcp"},
        "pose": {"position": {"lon": 120.1, "lat": 30.2}}, "analysis": {"fps": 5, "width": 640},
    }) for i, url in enumerate(urls)]
    manager = CameraManager(IngestConfig(allow_private_sources=True), ROOT, sink)
    t0 = time.monotonic()
    manager.start(cams)
    try:
        _wait(lambda: all(s.decoded > 0 for s in manager.status().values()), 30, "every camera's first frame")
        first = time.monotonic() - t0
        threading.Event().wait(warmup_s)
        d0, c0, w0 = sum(s.decoded for s in manager.status().values()), time.process_time(), time.monotonic()
        threading.Event().wait(window_s)
        d1, c1, w1 = sum(s.decoded for s in manager.status().values()), time.process_time(), time.monotonic()
    finally:
        manager.stop()
    return Measure(fps=(d1 - d0) / (w1 - w0), cpu_s=c1 - c0, wall_s=w1 - w0, first_frame_s=first)


def bench_ffmpeg(urls: list[str], warmup_s: float, window_s: float) -> Measure:
    frames = [0] * len(urls)
    procs: list[subprocess.Popen] = []

    def read(i: int, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("frame="):
                frames[i] = int(line.split("=", 1)[1])

    t0 = time.monotonic()
    for i, url in enumerate(urls):
        proc = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-rtsp_transport", "tcp", "-i", url,
             "-f", "null", "-", "-progress", "pipe:1", "-stats_period", "0.25"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(proc)
        threading.Thread(target=read, args=(i, proc), daemon=True).start()
    try:
        _wait(lambda: all(f > 0 for f in frames), 40, "every ffmpeg's first frame")
        first = time.monotonic() - t0
        threading.Event().wait(warmup_s)
        f0, c0, w0 = sum(frames), sum(_proc_cpu(p.pid) for p in procs), time.monotonic()
        threading.Event().wait(window_s)
        f1, c1, w1 = sum(frames), sum(_proc_cpu(p.pid) for p in procs), time.monotonic()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    return Measure(fps=(f1 - f0) / (w1 - w0), cpu_s=c1 - c0, wall_s=w1 - w0, first_frame_s=first)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="longer windows and N up to 32")
    parser.add_argument("--counts", default=None, help="comma-separated N values (default 1,4,8,16)")
    parser.add_argument("--profiles", default="sub,main", help="sub, main or both")
    parser.add_argument("--window", type=float, default=None, help="measurement window in seconds")
    args = parser.parse_args()
    why = rtsp_available()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    counts = [int(n) for n in (args.counts or ("1,4,8,16,32" if args.full else "1,4,8,16")).split(",")]
    window = args.window or (15.0 if args.full else 4.0)
    warmup = 3.0 if args.full else 1.5
    settle = 3.0 if args.full else 1.5
    load_before = os.getloadavg()[0]
    wanted = [name for name in PROFILES if name.split()[0] in args.profiles.split(",")]
    clips = {name: transcoded(*PROFILES[name]) for name in wanted}
    server = RtspServer({f"p{i}": clip for i, clip in enumerate(clips.values())})
    server.start()
    rows = []
    try:
        for i, name in enumerate(wanted):
            camera_fps = PROFILES[name][3]
            for n in counts:
                urls = [server.url(f"p{i}")] * n
                cm = bench_manager(urls, warmup, window)
                threading.Event().wait(settle)  # let the server drop the sessions before the next run
                ff = bench_ffmpeg(urls, warmup, window)
                threading.Event().wait(settle)
                rows.append({"profile": name, "n": n, "expected_fps": n * camera_fps,
                             "manager": asdict(cm) | {"cpu_pct": cm.cpu_pct, "ms_per_frame": cm.ms_per_frame},
                             "ffmpeg": asdict(ff) | {"cpu_pct": ff.cpu_pct, "ms_per_frame": ff.ms_per_frame}})
                print(f"  {name} N={n}: manager {cm.fps:.0f} fps {cm.cpu_pct:.0f}% CPU | "
                      f"ffmpeg {ff.fps:.0f} fps {ff.cpu_pct:.0f}% CPU", file=sys.stderr, flush=True)
    finally:
        server.stop()
    print(f"\nDecode throughput, live RTSP (TCP) from GstRtspServer; {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}; window {window:g} s after {warmup:g} s warm-up; "
          f"1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after.\n"
          "CameraManager also scales/converts 5 fps to 640 px BGR for analysis. CPU% is of one core.\n")
    print("| profile | N | expected fps | CameraManager fps | CM CPU % | CM ms/frame | CM first frame s "
          "| ffmpeg fps | ffmpeg CPU % | ffmpeg ms/frame | fps ratio CM/ffmpeg | CPU/frame ratio CM/ffmpeg |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cm, ff = r["manager"], r["ffmpeg"]
        print(f"| {r['profile']} | {r['n']} | {r['expected_fps']} | {cm['fps']:.1f} | {cm['cpu_pct']:.0f} | "
              f"{cm['ms_per_frame']:.2f} | {cm['first_frame_s']:.2f} | {ff['fps']:.1f} | {ff['cpu_pct']:.0f} | "
              f"{ff['ms_per_frame']:.2f} | {cm['fps'] / max(ff['fps'], 1e-9):.2f} | "
              f"{cm['ms_per_frame'] / max(ff['ms_per_frame'], 1e-9):.2f} |")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_decode.raw.json").write_text(json.dumps({"window_s": window, "load_avg": [load_before, os.getloadavg()[0]], "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
