"""The object model behind one interface, loaded through ultralytics whatever its format (.pt, ONNX, TFLite,
OpenVINO, Triton URL), with a loud, explicit status when it cannot be loaded.

Why a wrapper: the pipeline must keep running motion-only on a machine without the model file (no internet to
download weights), and the ONNX path needs the batch preparation of ``detectors.onnx_prepare``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from detectors.onnx_prepare import prepare_onnx

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """~/.cache/gridwatch/models, or $GRIDWATCH_CACHE/models."""
    root = os.environ.get("GRIDWATCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gridwatch")
    return Path(root) / "models"


def _is_url(path: str) -> bool:
    return "://" in path


class ObjectModel:
    """A detector that takes a list of size×size BGR crops and returns, per crop, rows x1,y1,x2,y2,score,cls."""

    def __init__(
        self,
        path: str | None,
        base_dir: Path,
        imgsz: int = 640,
        confidence: float = 0.25,
        classes: list[str] | None = None,
        device: str = "cpu",
        max_batch: int = 8,
        prepare: bool = True,
        cache_dir: Path | None = None,
        name: str = "objects",
    ):
        self.name = name
        self.imgsz = imgsz
        self.confidence = confidence
        self.device = device
        self.max_batch = max_batch
        self.names: dict[int, str] = {}
        self.class_ids: list[int] | None = None
        self._model = None
        self.loaded = False
        self.file: str | None = None
        if not path:
            self.status = f"{name}: no model configured"
            return
        resolved = path if _is_url(path) else str((Path(base_dir) / os.path.expanduser(path)).resolve())
        if not _is_url(resolved) and not Path(resolved).exists():
            self.status = f"model file not found: {resolved}"
            return
        try:
            self._load(resolved, prepare, cache_dir or default_cache_dir(), classes)
        except Exception as exc:  # a broken file, a missing runtime, an unreachable Triton server
            self.status = f"model failed to load: {resolved}: {type(exc).__name__}: {exc}"
            self._model = None
            self.loaded = False

    def _load(self, resolved: str, prepare: bool, cache_dir: Path, classes: list[str] | None) -> None:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        from ultralytics import YOLO

        load_path, how = resolved, "ultralytics"
        if prepare and resolved.lower().endswith(".onnx"):
            try:
                load_path = str(prepare_onnx(Path(resolved), cache_dir, self.imgsz, self.max_batch))
                how = "onnxruntime, batched"
            except Exception as exc:
                log.warning("cannot prepare %s for batching (%s); using it as is, one call per image", resolved, exc)
                how = "onnxruntime, batch 1"
        self._model = YOLO(load_path, task="detect")
        self.names = {int(k): str(v) for k, v in self._model.names.items()}
        if classes:
            wanted = {c.lower() for c in classes}
            self.class_ids = sorted(i for i, n in self.names.items() if n.lower() in wanted)
            missing = wanted - {self.names[i].lower() for i in self.class_ids}
            if missing:
                log.warning("%s: classes not in the model: %s", self.name, sorted(missing))
        blank = np.full((self.imgsz, self.imgsz, 3), 114, np.uint8)
        self._predict([blank])  # fail here, at start, rather than in the loop
        self.loaded = True
        self.file = Path(resolved).name if not _is_url(resolved) else resolved
        self.status = f"{self.file} loaded ({how}, {self.imgsz})"

    def _predict(self, images: list[np.ndarray]) -> list[np.ndarray]:
        results = self._model.predict(
            images, imgsz=self.imgsz, conf=self.confidence, classes=self.class_ids, device=self.device,
            verbose=False, batch=max(len(images), 1),
        )
        return [r.boxes.data.cpu().numpy().astype(np.float32) if r.boxes is not None else np.zeros((0, 6), np.float32)
                for r in results]

    def predict(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """One model call for the whole list (all images must be imgsz×imgsz)."""
        if not self.loaded or not images:
            return [np.zeros((0, 6), np.float32) for _ in images]
        return self._predict(images)
