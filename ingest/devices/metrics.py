"""Prometheus counters of device ingest, shared by the MQTT path and the HTTPS alarm endpoint.

Rejections carry their reason as a label, so a dashboard shows at a glance whether bad input is
a broken firmware (``malformed_json``), a misconfigured box (``timestamp_out_of_window``) or an
attack (``bad_signature``, ``replayed_nonce``, ``topic_device_mismatch``).
"""
from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES = Counter("gridwatch_device_messages", "MQTT messages received from devices", ["channel"])
READINGS = Counter("gridwatch_device_readings", "sensor readings accepted")
REJECTS = Counter("gridwatch_device_rejects", "device input refused", ["reason"])
ALARMS = Counter("gridwatch_alarm_presses", "one-key alarm presses and cancels handled", ["kind", "status"])
ACK_SECONDS = Histogram(
    "gridwatch_alarm_ack_seconds", "receipt of a press to its ack being sent",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
