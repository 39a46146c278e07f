"""The names the runtime imports: ``from detectors.video import VideoPipeline, health_anomaly``."""
from detectors.health import health_anomaly
from detectors.pipeline import VideoPipeline

__all__ = ["VideoPipeline", "health_anomaly"]
