"""Synthetic cameras for control-plane tests and benchmarks: thousands of cameras spread over the base grids.

The sources are ``synthetic:`` scenes and nothing starts them here (the runtime is built with
``sources=False``): the control plane — listing, filtering, routing — is what is measured, not video.
"""
from __future__ import annotations

from typing import Any

from gateway.config import Camera


def synthetic_cameras(grids: Any, n: int, prefix: str = "syn") -> list[Camera]:
    """``n`` cameras ``{prefix}-00000`` …, camera ``i`` standing in base grid ``i % len(base grids)`` (a point inside it)."""
    base = sorted(grids.level("grid"), key=lambda g: g.code)
    points = [g.geometry.representative_point() for g in base]
    out = []
    for i in range(n):
        p = points[i % len(points)]
        out.append(Camera.model_validate({
            "id": f"{prefix}-{i:05d}", "name": f"合成摄像机 {i} 号", "source": {"url": "synthetic:crowd"},
            "pose": {"position": {"lon": p.x, "lat": p.y}, "bearing_deg": (i * 37) % 360, "height_m": 6, "fov_deg": 70}}))
    return out


def grid_of(grids: Any, i: int) -> str:
    """The base grid code camera ``i`` of ``synthetic_cameras`` stands in (what a test expects)."""
    return sorted(g.code for g in grids.level("grid"))[i % len(grids.level("grid"))]
