"""Image point → map point: through the camera's homography when it has ≥4 ground pairs, else its own position."""
from __future__ import annotations

import cv2
import numpy as np

from ingest.config import GeoPose
from ingest.geo import GeoPoint


class Geolocator:
    """``homography_points`` are (x_px, y_px, lon, lat) with lon/lat in the pose position's CRS.

    x/y values all ≤ 1 are taken as normalised image coordinates, otherwise as pixels of the analysed frame.
    """

    def __init__(self, pose: GeoPose):
        self.pose = pose
        self.crs = pose.position.crs
        self._h: np.ndarray | None = None
        self._normalised = False
        pts = pose.homography_points or []
        if len(pts) >= 4:
            arr = np.asarray(pts, np.float64)
            self._normalised = bool((arr[:, :2] <= 1.0).all())
            h, _ = cv2.findHomography(arr[:, :2], arr[:, 2:], 0)
            if h is None:
                raise ValueError("homography_points are degenerate (collinear or repeated)")
            self._h = h

    @property
    def has_homography(self) -> bool:
        return self._h is not None

    def locate(self, x: float | None, y: float | None, w: int, h: int) -> GeoPoint:
        """Map point of frame pixel (x, y) (an object's foot point); the camera position when unknown."""
        if self._h is None or x is None or y is None:
            return self.pose.position
        px = (x / w, y / h) if self._normalised else (x, y)
        lon, lat = cv2.perspectiveTransform(np.array([[px]], np.float64), self._h)[0, 0]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            return self.pose.position
        return GeoPoint(lon=float(lon), lat=float(lat), crs=self.crs)
