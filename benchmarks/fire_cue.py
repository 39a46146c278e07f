"""Frame-level precision/recall of the classical fire/smoke cue (detectors/fire.py) on the shared clips.

    .venv/bin/python benchmarks/fire_cue.py [--rate 5]

The rule's alerts are rate-limited by its cooldown, so alert counts say little; this scores every analysed frame:
a frame where the cue fires is a true positive inside the MANIFEST's fire/smoke window, else a false positive.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from detectors.config import MotionConfig  # noqa: E402
from detectors.fire import FireSmokeDetector  # noqa: E402
from detectors.motion import MotionDetector  # noqa: E402
from detectors.replay import read_clip  # noqa: E402

FOOTAGE = REPO.parent / "shared" / "footage"
# clip, fps, first positive frame (None = no fire at all), frames known negative before it
CLIPS = [("building_fire_smoke_hoodcam.mp4", 29.97, 86), ("house_fire_black_smoke_phone.mp4", 29.97, 0),
         ("plaza_pedestrians_720p.avi", 25, None), ("intersection_traffic_cctv.mp4", 30, None),
         ("campus_pedestrians_pets2009.avi", 10, None), ("town_centre_pedestrians_1080p.mp4", 25, None),
         ("fall_indoor_office_urfd.mp4", 30, None)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rate", type=float, default=5.0)
    args = ap.parse_args()
    tp = fp = fn = neg_frames = 0
    print("| clip | analysed frames | positive frames | cue frames | first cue frame |")
    print("|---|---|---|---|---|")
    for name, fps, start in CLIPS:
        motion, cue = MotionDetector(MotionConfig()), FireSmokeDetector()
        n = pos = hits = 0
        first = None
        for rf in read_clip(FOOTAGE / name, "x", fps, args.rate):
            fired = cue.update(motion.update(rf.frame.image).small, rf.frame.captured_at) is not None
            positive = start is not None and rf.index >= start
            n, pos, hits = n + 1, pos + positive, hits + fired
            if fired and first is None:
                first = rf.index
            tp += fired and positive
            fp += fired and not positive
            fn += positive and not fired
            neg_frames += not positive
        print(f"| {name} | {n} | {pos} | {hits} | {first if first is not None else '—'} |")
    precision = tp / (tp + fp) if tp + fp else float("nan")
    print(f"\nframe-level precision {precision:.3f}, recall {tp / (tp + fn):.3f} "
          f"(tp {tp}, fp {fp}, fn {fn}, negative frames {neg_frames}) at {args.rate} fps")


if __name__ == "__main__":
    main()
