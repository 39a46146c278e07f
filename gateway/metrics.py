"""Prometheus metrics: HTTP traffic counted as it happens, the rest read from the runtime at scrape time.

Reading at scrape time (a custom collector) keeps the numbers the same ones ``/status`` shows and costs
nothing between scrapes. Each app has its own registry so several apps (tests) never collide.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.api.parts import ApiRuntime

log = logging.getLogger(__name__)


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _camera_rows(status: dict) -> Iterable[tuple[str, dict]]:
    """``/status``'s cameras: id → the row the video role published (``CameraStatus.to_dict()`` + rates)."""
    cams = status.get("cameras") or {}
    return [(str(k), v) for k, v in cams.items() if isinstance(v, dict)]


# The detector's latency as ``detectors.inference.InferenceWorker.stats`` reports it, and the quantile label it gets.
LATENCY_QUANTILES = (("inference_ms_p50", "0.5"), ("inference_ms_p99", "0.99"))


def _detector_stats(engine: dict) -> dict:
    """The detector's figures in one video engine's published stats: the in-process engine has them at the top
    (its pipeline's ``InferenceWorker``), the worker-pool engine under ``detector`` (its detector process)."""
    det = engine.get("detector")
    return det if isinstance(det, dict) else engine


class RuntimeCollector(Collector):
    """Per-camera fps, skipped fps, inference latency, stream/queue depths and ticket counts."""

    CAMERA_FIELDS = {
        "camera_fps": ("gridwatch_camera_fps", "frames per second decoded from the camera"),
        "process_fps": ("gridwatch_camera_process_fps", "frames per second analysed"),
        "detection_fps": ("gridwatch_camera_detection_fps", "frames per second sent to the object detector"),
        "skipped_fps": ("gridwatch_camera_skipped_fps", "frames per second dropped to keep up (not analysed)"),
    }

    def __init__(self, runtime: ApiRuntime):
        self.runtime = runtime

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        rt = self.runtime
        try:
            status = rt.status()
        except Exception:  # a scrape must never fail because one part is down
            log.exception("status() failed during a metrics scrape")
            status = {}
        families: dict[str, GaugeMetricFamily] = {}
        for cam_id, row in _camera_rows(status):
            for field, (name, doc) in self.CAMERA_FIELDS.items():
                value = _num(row.get(field))
                if value is None:
                    continue
                families.setdefault(name, GaugeMetricFamily(name, doc, labels=["camera"])).add_metric([cam_id], value)
            up = row.get("state")
            if up is not None:
                fam = families.setdefault("gridwatch_camera_up", GaugeMetricFamily("gridwatch_camera_up", "1 when the camera delivers frames", labels=["camera"]))
                fam.add_metric([cam_id], 1.0 if up == "online" else 0.0)
        yield from families.values()

        det = _detector_stats(status.get("pipeline") or {})
        lat = GaugeMetricFamily("gridwatch_inference_latency_seconds", "object-detector latency per batch", labels=["quantile"])
        have = False
        for key, q in LATENCY_QUANTILES:
            v = _num(det.get(key))
            if v is not None:
                lat.add_metric([q], v / 1000.0)
                have = True
        if have:
            yield lat

        depth = GaugeMetricFamily("gridwatch_queue_depth", "entries in a Redis stream / pending in a consumer group", labels=["queue"])
        for name, value in queue_depths(rt).items():
            depth.add_metric([name], value)
        yield depth

        yield from pool_metrics(status.get("pool") or {})

        tickets = GaugeMetricFamily("gridwatch_tickets", "tickets by status", labels=["status"])
        for st, n in ticket_counts(rt).items():
            tickets.add_metric([st], n)
        yield tickets


def pool_metrics(pool: dict) -> Iterator[Metric]:
    """The video pool as /status shows it: live members and the anomalies intake fenced out (alerts.fencing)."""
    if not isinstance(pool, dict) or "members" not in pool:
        return
    members = GaugeMetricFamily("gridwatch_pool_members", "live members of the video pool")
    members.add_metric([], float(len(pool["members"])))
    yield members
    fenced = GaugeMetricFamily("gridwatch_pool_fenced", "anomalies rejected at intake from a superseded camera owner",
                               labels=["camera"])
    for camera, n in (pool.get("fenced") or {}).items():
        fenced.add_metric([camera], float(n))
    yield fenced


def queue_depths(rt: ApiRuntime) -> dict[str, float]:
    """Length of the anomaly, event and dead-letter streams and the intake group's pending count."""
    keys, client = rt.keys, rt.redis
    out: dict[str, float] = {}
    try:
        pipe = client.pipeline(transaction=False)
        for name in ("anomalies", "events", "deadletter"):
            pipe.xlen(getattr(keys, name))
        for name, n in zip(("anomalies", "events", "deadletter"), pipe.execute()):
            out[name] = float(n)
        try:
            for group in client.xinfo_groups(keys.anomalies):
                gname = group.get("name") or group.get(b"name")
                gname = gname.decode() if isinstance(gname, bytes) else str(gname)
                out[f"anomalies.{gname}.pending"] = float(group.get("pending") or group.get(b"pending") or 0)
                lag = group.get("lag") if "lag" in group else group.get(b"lag")
                if lag is not None:
                    out[f"anomalies.{gname}.lag"] = float(lag)
        except Exception:  # no group yet
            pass
    except Exception:
        log.debug("queue depths unavailable", exc_info=True)
    return out


def ticket_counts(rt: ApiRuntime) -> dict[str, float]:
    store = rt.store
    if store is None:
        return {}
    try:
        from sqlalchemy import func, select

        from alerts.models import Ticket

        with store.read() as s:
            return {str(st): float(n) for st, n in s.execute(select(Ticket.status, func.count()).group_by(Ticket.status))}
    except Exception:
        log.debug("ticket counts unavailable", exc_info=True)
        return {}


class Metrics:
    """The app's registry: request counters/latency plus the runtime collector."""

    def __init__(self, runtime: Any):
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("gridwatch_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("gridwatch_http_request_seconds", "HTTP request latency", ["route"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.live_clients = Counter("gridwatch_live_messages", "messages sent on /live", registry=self.registry)
        self.registry.register(RuntimeCollector(runtime))

    def observe(self, method: str, route: str, status: int, started: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(time.perf_counter() - started)
