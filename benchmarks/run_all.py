"""Run every GridWatch benchmark, short (CI smoke, < 2 min) or full, and write the results as markdown + PNG plots.

Why one runner: the figures in docs/BENCHMARKS.md must come from one command on one machine state, with the
load average next to every table (a busy machine depresses every figure).

    .venv/bin/python benchmarks/run_all.py --short                 # CI smoke: streams 1,4,8 (640x360) + the others
    .venv/bin/python benchmarks/run_all.py --full                  # the sweep to 100+ streams, 640x360 and 720p
    .venv/bin/python benchmarks/run_all.py --full --device cuda    # detector on the GPU (onnxruntime-gpu)

Writes ``<out>/<mode>.md``, ``<out>/<mode>.json`` and ``<out>/<mode>-*.png`` (default out: benchmarks/results).
The video sweeps run in ``bench_streams.py`` (a subprocess per profile, so CPU and memory are those of the run);
the other benchmarks — bench_devices, bench_decode, bench_intake, bench_batching, accuracy — are their owners'
scripts, run as they are when present. A script may write machine-readable figures to the file named by the
environment variable ``GRIDWATCH_BENCH_JSON``; run_all reads it and checks the targets it knows.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PY = sys.executable

# Sweeps per run mode and stream profile: stream counts per benchmark mode; "stop" ends a sweep at its first failure.
PLANS: dict[str, list[dict[str, Any]]] = {
    "short": [{"profile": "sub", "gridwatch": "1,4,8", "motiononly": "8", "naive": "1,4", "decode": "1,4,8",
               "stop": False}],
    "full": [
        {"profile": "sub", "gridwatch": "1,2,4,8,16,24,32,48,64,80,100,128", "motiononly": "8,16,32,64,100,128,160",
         "naive": "1,2,4,8,16", "decode": "1,4,16,32,64,100,128,160,200", "stop": True},
        {"profile": "720p", "gridwatch": "1,2,4,8,16,32,64", "motiononly": "8,16,32,64",
         "naive": "1,2,4,8", "decode": "1,4,8,16,32,64,100", "stop": True},
    ],
}
TIMING = {"short": {"warmup": 1.5, "measure": 3.0}, "full": {"warmup": 5.0, "measure": 15.0}}

# The other engineers' benchmarks, with their arguments per mode (None: not run in that mode). An argument is
# passed only if the script's --help names it; "{json}" becomes the file run_all reads figures from.
OTHERS: list[tuple[str, dict[str, list[str] | None]]] = [
    ("bench_devices.py", {"short": ["--messages", "20000", "--seconds", "3", "--json", "{json}"],
                          "full": ["--json", "{json}"]}),
    ("bench_decode.py", {"short": ["--counts", "1,4", "--profiles", "sub", "--window", "3"], "full": ["--full"]}),
    ("bench_intake.py", {"short": ["--points", "20000", "--anomalies", "300"], "full": []}),
    ("bench_batching.py", {"short": ["--imgsz", "320", "--rounds", "2"], "full": []}),
    ("accuracy.py", {"short": None, "full": ["--json", "{json}"]}),
]
OTHER_TIMEOUT_S = {"short": 30, "full": 1200}

TARGETS = {
    "streams_640x360": 64,  # concurrent sub-streams analysed at 5 fps
    "over_naive": 10.0,  # × the naive baseline's sustained count
    "over_decode": 0.70,  # of the decode limit
    "sensor_msgs_per_s": 20_000,
    "alarm_ack_p99_ms": 300,
}


@dataclass
class OtherResult:
    script: str
    status: str  # ok, absent, failed, timed out
    seconds: float
    output: str
    figures: dict[str, Any]


def git_rev() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True,
                               timeout=10, check=False).stdout.strip()
        return f"{out}{'+dirty' if dirty else ''}" if out else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_streams(mode: str, out: Path, device: str, stamp: str) -> list[dict[str, Any]]:
    results = []
    for plan in PLANS[mode]:
        profile, stop = plan["profile"], plan["stop"]
        path = out / f"{mode}-streams-{profile}.json"
        cmd = [PY, str(HERE / "bench_streams.py"), "--mode", "all", "--profile", profile, "--n", plan["gridwatch"],
               "--motion-n", plan["motiononly"], "--naive-n", plan["naive"], "--decode-n", plan["decode"],
               "--device", device, "--warmup", str(TIMING[mode]["warmup"]),
               "--measure", str(TIMING[mode]["measure"]), "--json", str(path)]
        if not stop:
            cmd.append("--no-stop")
        print(f"[{stamp}] streams {profile}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=REPO, timeout=3600, check=False)
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            data = {"unavailable": f"bench_streams exited {proc.returncode} without a result"}
        shown = [a for i, a in enumerate(cmd[2:]) if a != "--json" and (i == 0 or cmd[2:][i - 1] != "--json")]
        data["command"] = "benchmarks/bench_streams.py " + " ".join(shown)
        data["wall_s"] = round(time.monotonic() - t0, 1)
        data["profile"] = profile
        results.append(data)
    return results


def run_other(script: str, extra: dict[str, list[str] | None], mode: str, out: Path) -> OtherResult:
    path = HERE / script
    if not path.is_file():
        return OtherResult(script, "absent", 0.0, f"{script} is not in benchmarks/ yet", {})
    wanted = extra.get(mode, [])
    if wanted is None:
        return OtherResult(script, f"not run in {mode} mode", 0.0, "", {})
    fig_path = out / f"{mode}-{Path(script).stem}.json"
    wanted = [str(fig_path) if a == "{json}" else a for a in wanted]
    args: list[str] = []
    if wanted:
        try:
            helptext = subprocess.run([PY, str(path), "--help"], cwd=REPO, capture_output=True, text=True, timeout=60,
                                      check=False).stdout
        except subprocess.TimeoutExpired:
            helptext = ""
        i = 0
        while i < len(wanted):  # keep a flag (and its value) only if the script knows it
            flag = wanted[i]
            takes_value = i + 1 < len(wanted) and not wanted[i + 1].startswith("--")
            if flag in helptext:
                args += wanted[i:i + 1 + takes_value]
            i += 1 + takes_value
    fig_path.unlink(missing_ok=True)
    env = dict(os.environ, GRIDWATCH_BENCH_JSON=str(fig_path), PYTHONPATH=str(REPO))
    t0 = time.monotonic()
    print(f"  other: {script} {' '.join(args)}", flush=True)
    try:
        proc = subprocess.run([PY, str(path), *args], cwd=REPO, capture_output=True, text=True, env=env,
                              timeout=OTHER_TIMEOUT_S[mode], check=False)
        status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
        text = proc.stdout + (("\n" + proc.stderr[-3000:]) if proc.returncode else "")
    except subprocess.TimeoutExpired as exc:
        status = f"timed out after {OTHER_TIMEOUT_S[mode]} s"
        text = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    figures: dict[str, Any] = {}
    if fig_path.is_file():
        try:
            figures = json.loads(fig_path.read_text(encoding="utf-8"))
        except ValueError:
            figures = {}
    return OtherResult(script, status, round(time.monotonic() - t0, 1), text.strip()[-6000:],
                       {**figures, "command": f"benchmarks/{script} {' '.join(args)}".strip()})


# ---------------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------------
def _f(v: Any, nd: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


COLUMNS = [
    ("mode", "mode"), ("N", "n"), ("camera fps", "camera_fps"), ("process fps", "process_fps"),
    ("skipped fps", "skipped_fps"), ("skipped %", "skipped_pct"), ("det. calls/s", "detect_calls_per_s"),
    ("det. images/s", "detect_images_per_s"), ("batch", "batch_mean"),
    ("ms/image", ("extra", "inference_ms_per_image")),
    ("detector busy %", ("extra", "detector_busy_pct")),
    ("CPU GW %", ("cpu", "cpu_gw_pct")), ("CPU RTSP server %", ("cpu", "cpu_server_pct")),
    ("CPU total %", ("cpu", "cpu_total_pct")), ("RSS MB", ("cpu", "rss_mb")),
    ("frame→anomaly p50/p99 ms", ("pair", "frame_to_anomaly_p50_ms", "frame_to_anomaly_p99_ms")),
    ("anomaly→ticket p50/p99 ms", ("pair", "anomaly_to_ticket_p50_ms", "anomaly_to_ticket_p99_ms")),
    ("frame→ticket p99 ms", "frame_to_ticket_p99_ms"), ("tickets/anomalies", ("pair", "tickets", "anomalies")),
    ("load 1m", "loadavg_1m"), ("sustained", "sustained"),
]


def _cell(step: dict[str, Any], key: Any) -> str:
    if isinstance(key, str):
        return _f(step.get(key))
    if key[0] in ("cpu", "extra"):
        return _f(step.get(key[0], {}).get(key[1]))
    a, b = step.get(key[1]), step.get(key[2])
    return "–" if a is None and b is None else f"{_f(a, 0)} / {_f(b, 0)}"


def streams_table(data: dict[str, Any]) -> str:
    rows = ["| " + " | ".join(c[0] for c in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    order = {"gridwatch": 0, "motiononly": 1, "naive": 2, "decode": 3}
    for s in sorted(data.get("steps", []), key=lambda s: (order.get(s["mode"], 9), s["n"])):
        cells = [_cell(s, c[1]) for c in COLUMNS]
        if not s.get("sustained") and s.get("why_not"):
            cells[-1] = f"no: {s['why_not']}"
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot_streams(data: dict[str, Any], path: Path, title: str) -> bool:
    """process fps, CPU and p99 latency against N; False when matplotlib is missing or there is nothing to plot."""
    steps = data.get("steps", [])
    if not steps:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    styles = {"gridwatch": ("GridWatch", "o-"), "motiononly": ("GridWatch, no object rules", "d-."),
              "naive": ("naive baseline", "s--"), "decode": ("decode only", "^:")}
    for mode, (label, style) in styles.items():
        ss = sorted((s for s in steps if s["mode"] == mode), key=lambda s: s["n"])
        if not ss:
            continue
        ns = [s["n"] for s in ss]
        if mode == "decode":
            axes[0].plot(ns, [s["camera_fps"] / max(s["due_fps"] / 5.0 / max(s["n"], 1), 1) for s in ss], style,
                         label=f"{label} (decoded/3)")
        else:
            axes[0].plot(ns, [s["process_fps"] for s in ss], style, label=label)
        axes[1].plot(ns, [s["cpu"].get("cpu_total_pct", 0) for s in ss], style, label=label)
        if mode == "gridwatch":
            axes[2].plot(ns, [s.get("frame_to_ticket_p99_ms") or 0 for s in ss], style, label="frame→ticket p99")
            axes[2].plot(ns, [s.get("frame_to_anomaly_p99_ms") or 0 for s in ss], "x-", label="frame→anomaly p99")
        elif mode == "motiononly":
            axes[2].plot(ns, [s.get("frame_to_ticket_p99_ms") or 0 for s in ss], style,
                         label="frame→ticket p99, no object rules")
        elif mode == "naive":
            axes[2].plot(ns, [s.get("analysis_lag_p99_ms") or 0 for s in ss], style, label="naive predict p99")
    top = max(s["n"] for s in steps)
    axes[0].plot([1, top], [5, 5 * top], color="grey", lw=0.8, label="N × 5 fps (target)")
    axes[0].set(title="analysed frames/s", xlabel="streams N", ylabel="frames/s")
    axes[1].axhline(200, color="grey", lw=0.8)
    axes[1].set(title="CPU % (process + RTSP server; 200 = 2 cores)", xlabel="streams N", ylabel="%")
    axes[2].axhline(2000, color="grey", lw=0.8)
    axes[2].set(title="latency p99", xlabel="streams N", ylabel="ms")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def targets(streams: list[dict[str, Any]], others: list[OtherResult]) -> list[tuple[str, str, str, str]]:
    rows = []
    sub = next((d for d in streams if d.get("profile") == "sub" and "summary" in d), None)
    if sub:
        s = sub["summary"]
        cap = "" if s["gridwatch_sustained"] < s["gridwatch_max_tested"] else " (largest N tried)"
        rows.append(("concurrent 640x360 streams at 5 fps", f"≥ {TARGETS['streams_640x360']}",
                     f"{s['gridwatch_sustained']}{cap}", _ok(s["gridwatch_sustained"] >= TARGETS["streams_640x360"])))
        if "gridwatch_over_naive" in s:
            rows.append(("GridWatch / naive (sustained streams)", f"≥ {TARGETS['over_naive']:.0f}×",
                         f"{s['gridwatch_over_naive']}× ({s['gridwatch_sustained']} / {s['naive_sustained']})",
                         _ok(s["gridwatch_over_naive"] >= TARGETS["over_naive"])))
        else:
            rows.append(("GridWatch / naive (sustained streams)", "≥ 10×",
                         f"naive sustained 0 streams (GridWatch {s['gridwatch_sustained']})", "n/a"))
        if "gridwatch_over_decode" in s:
            rows.append(("GridWatch / decode limit", f"≥ {TARGETS['over_decode']:.0%}",
                         f"{s['gridwatch_over_decode']:.0%} ({s['gridwatch_sustained']} / {s['decode_sustained']}"
                         f"{'+' if s['decode_sustained'] >= s['decode_max_tested'] else ''})",
                         _ok(s["gridwatch_over_decode"] >= TARGETS["over_decode"])))
    dev = next((o for o in others if o.script == "bench_devices.py"), None)
    figs = device_figures(dev.figures) if dev else {}
    msgs = figs.get("sensor_msgs_per_s")
    rows.append(("sensor msgs/s through decoding + rules", f"≥ {TARGETS['sensor_msgs_per_s']:,}",
                 _f(msgs, 0) if msgs is not None else f"see bench_devices output ({dev.status if dev else 'absent'})",
                 _ok(msgs >= TARGETS["sensor_msgs_per_s"]) if msgs is not None else "?"))
    ack = figs.get("alarm_ack_p99_ms")
    rows.append(("alarm p99 press→ack (1,000 presses in 1 s)", f"< {TARGETS['alarm_ack_p99_ms']} ms",
                 _f(ack) if ack is not None else f"see bench_devices output ({dev.status if dev else 'absent'})",
                 _ok(ack < TARGETS["alarm_ack_p99_ms"]) if ack is not None else "?"))
    return rows


def device_figures(raw: dict[str, Any]) -> dict[str, Any]:
    """The two targeted figures from bench_devices' JSON (its own layout, or flat keys)."""
    out = {k: raw[k] for k in ("sensor_msgs_per_s", "alarm_ack_p99_ms") if k in raw}
    try:
        out.setdefault("sensor_msgs_per_s", raw["telemetry"]["max"]["ingest_msg_s"])
    except (KeyError, TypeError):
        pass
    try:
        out.setdefault("alarm_ack_p99_ms", raw["presses"]["p99_ms"])
    except (KeyError, TypeError):
        pass
    return out


def _ok(flag: bool) -> str:
    return "met" if flag else "MISSED"


def write_report(mode: str, out: Path, streams: list[dict[str, Any]], others: list[OtherResult],
                 meta: dict[str, Any]) -> Path:
    lines = [f"# GridWatch benchmarks — {mode} run", "",
             f"Taken {meta['date']} on `{meta['host']}` (git {meta['git']}), command: `{meta['command']}` "
             f"({meta['wall_s']:.0f} s in all).", ""]
    m = next((d.get("machine") for d in streams if d.get("machine")), None)
    if m:
        lines += [f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM; Python {m['python']}, onnxruntime "
                  f"{m['onnxruntime']} ({', '.join(m['ort_providers'])}).", ""]
    lines += [f"**Load average** at start {meta['load_start']}, at end {meta['load_end']} (1, 5, 15 min). "
              "Anything above ~0.5 means other work shared the 2 cores and every figure below is depressed.", ""]
    lines += ["## Targets", "", "| what | target | measured | |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets(streams, others)]
    lines.append("")
    for d in streams:
        prof = d.get("profile", "?")
        size = "640x360 @ 15 fps (sub-stream)" if prof == "sub" else "1280x720 @ 15 fps (main stream)"
        lines += [f"## Video streams: {size}", ""]
        if "unavailable" in d:
            lines += [f"Not run: {d['unavailable']}", ""]
            continue
        lines += [f"Command: `{d.get('command', '')}` ({d.get('wall_s', 0):.0f} s). Device: `{d.get('device')}`. "
                  f"Each step: {d.get('warmup_s')} s warm-up after every stream delivers, then {d.get('measure_s')} s "
                  "measured.", "",
                  streams_table(d), ""]
        s = d.get("summary", {})
        decode_capped = bool(s.get("decode_sustained")) and s.get("decode_sustained") == s.get("decode_max_tested")
        lines += [f"Largest N sustained (skipped < 1 %, analysed ≥ 97 % of N × 5 fps, p99 frame→ticket < 2 s): "
                  f"**GridWatch {s.get('gridwatch_sustained')}**, GridWatch without object rules "
                  f"{s.get('motiononly_sustained')}, naive {s.get('naive_sustained')}, "
                  f"decode-only {s.get('decode_sustained')}"
                  f"{' (or more: the largest N tried)' if decode_capped else ''}.",
                  ""]
        idle = d.get("server_idle", {})
        lines += ["The RTSP server (GStreamer, one pipeline per client) runs on the same 2 cores as GridWatch: its CPU "
                  f"is the *CPU RTSP server* column (idle: {idle.get('cpu_server_pct', 0)} %) and is included in "
                  "*CPU total*. A real deployment does not pay it.", ""]
        png = out / f"{mode}-streams-{prof}.png"
        if plot_streams(d, png, f"{mode} run, {size}, device {d.get('device')}, load {meta['load_start']}"):
            lines += [f"![{prof}]({png.name})", ""]
    lines += ["## Other benchmarks", ""]
    for o in others:
        lines += [f"### {o.script} — {o.status}" + (f" ({o.seconds:.0f} s)" if o.seconds else ""), ""]
        if o.figures.get("command") and o.status not in ("absent",) and not o.status.startswith("not run"):
            lines += [f"Command: `{o.figures['command']}`", ""]
        if o.output:
            lines += ["```", o.output, "```", ""]
    path = out / f"{mode}.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--short", action="store_const", dest="mode", const="short", help="CI smoke run (default)")
    g.add_argument("--full", action="store_const", dest="mode", const="full", help="the whole sweep")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--device", default="cpu", help="detector device: cpu, cuda, cuda:0")
    ap.add_argument("--only", choices=["streams", "others"], help="run only the video sweeps or only the other scripts")
    args = ap.parse_args(argv)
    mode = args.mode or "short"
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    load_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    streams = run_streams(mode, out, args.device, stamp) if args.only != "others" else []
    others = [run_other(s, e, mode, out) for s, e in OTHERS] if args.only != "streams" else []
    meta = {"date": stamp, "host": os.uname().nodename, "git": git_rev(), "wall_s": time.monotonic() - t0,
            "command": "benchmarks/run_all.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "load_start": load_start, "load_end": ", ".join(f"{x:.2f}" for x in os.getloadavg())}
    report = write_report(mode, out, streams, others, meta)
    (out / f"{mode}.json").write_text(json.dumps({"meta": meta, "streams": streams,
                                                  "others": [o.__dict__ for o in others]}, indent=1, default=str),
                                      encoding="utf-8")
    print(f"wrote {report} ({meta['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
