"""Shared fixtures: the real footage and model from ../shared (skipped with a reason when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
FOOTAGE = SHARED / "footage"
MODEL = SHARED / "models" / "yolov8n_int8.onnx"

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(REPO / ".yolo"))


@pytest.fixture(scope="session")
def model_path() -> Path:
    if not MODEL.exists():
        pytest.skip(f"shared model absent: {MODEL}")
    return MODEL


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One prepared-model cache per test session (preparing the ONNX takes a few seconds)."""
    return tmp_path_factory.mktemp("gw-models")


def clip(name: str) -> Path:
    path = FOOTAGE / name
    if not path.exists():
        pytest.skip(f"shared footage absent: {path}")
    return path


@pytest.fixture
def make_pipeline(tmp_path, model_cache):
    """Build a started VideoPipeline collecting anomalies into a list; stopped at teardown."""
    from detectors.config import DetectionConfig
    from detectors.pipeline import VideoPipeline

    made = []

    def factory(detection: dict | None = None, model: Path | None = None, imgsz: int = 320):
        det = dict(detection or {})
        det.setdefault("model", {})
        det["model"] = {"path": str(model) if model else None, "imgsz": imgsz, "cache_dir": str(model_cache),
                        **det["model"]}
        got: list = []
        pipe = VideoPipeline(DetectionConfig.model_validate(det), REPO, tmp_path / "evidence", got.append)
        made.append(pipe)
        return pipe, got

    yield factory
    for pipe in made:
        pipe.stop()
