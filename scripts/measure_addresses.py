"""Score address matchers on tests/channels/data/addresses.jsonl (what callers say → the place a person picks).

    .venv/bin/python scripts/measure_addresses.py [label=path/to/places.py ...]

Without arguments it scores ``alerts/channels/places.py``; each ``label=path`` scores another version of that
module (e.g. the hand-written one: ``git show 3a1293b:alerts/channels/places.py > /tmp/places_hand.py``), so the
kept-library matcher can be compared with what it replaced. Prints right / wrong place / missed and µs per address.
"""
from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.config import load_deployment  # noqa: E402


def _module(label: str, path: Path):
    spec = importlib.util.spec_from_file_location(f"places_{label}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def score(label: str, path: Path, rows: list[dict], devices: list) -> None:
    gazetteer = _module(label, path).Gazetteer.load(REPO / "config" / "places.yaml", devices)
    right, wrong, missed = 0, [], []
    start = time.perf_counter()
    for row in rows:
        hit = gazetteer.geocode(row["text"])
        name = hit.place.name if hit else None
        if (name in row["places"]) if name else not row["places"]:
            right += 1
        else:
            (wrong if name else missed).append((row["text"], name))
    per = (time.perf_counter() - start) / len(rows) * 1e6
    print(f"{label:14s} right {right}/{len(rows)}  wrong place {len(wrong)}  missed {len(missed)}  {per:.0f} µs/address")
    for text, name in wrong + missed:
        print(f"    {text} → {name}")


def main(argv: list[str]) -> None:
    rows = [json.loads(line) for line in (REPO / "tests/channels/data/addresses.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    devices = load_deployment(REPO / "config" / "demo.yaml").devices
    for label, path in [("current", REPO / "alerts/channels/places.py"), *(a.split("=", 1) for a in argv)]:
        score(label, Path(path), rows, devices)


if __name__ == "__main__":
    main(sys.argv[1:])
