"""Motion, object detection, tracking and rules over video and sensor readings; produces Anomalies."""
