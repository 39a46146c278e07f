"""Liveness and readiness of one GridWatch process, for Kubernetes probes and compose health checks.

*Live* means "restart me if not": the process answers and every loop of its roles is still running
(a loop that died with an exception is a process that does nothing — the supervisor or the kubelet
must restart it). A dependency being down is NOT a liveness failure: restarting every pod because
Redis is away only adds a restart storm to the outage.

*Ready* means "send me work / count me as up": the roles have started, are live, and the services
they use answer — Redis (every role), the SQL store (the roles that read or write tickets), the
MQTT broker (the devices role's ingest). Each check has a short timeout so a probe never hangs.

Answers say which checks fail by name only (``redis``, ``sql``, ``mqtt``, ``started``, ``loops``):
no URLs, versions, hosts or error texts, so the unauthenticated endpoints leak nothing.
``serve_probes`` answers them on a port of their own for the roles without the web app
(``gridwatch run --roles intake --health-port 8081``); the API process answers them on its own port too.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable

import redis
from sqlalchemy import text
from ingest.redis_connect import connect

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger("gridwatch.probes")

CHECK_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class ProbeResult:
    """One probe's answer: ok, or the names of the checks that failed."""

    failing: tuple[str, ...] = ()
    degraded: tuple[str, ...] = ()  # working, but less than configured (``detector``: running motion-only)

    @property
    def ok(self) -> bool:
        return not self.failing

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "ok"} if self.ok else {"status": "fail", "failing": list(self.failing)}
        if self.degraded:
            body["degraded"] = list(self.degraded)
        return body


class Probes:
    """The checks of one process's runtime (``gateway.runtime.Runtime``)."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        # its own client with short timeouts: a partitioned Redis must fail the probe, not hang it
        self._redis = connect(runtime.deployment.services.redis_url, socket_timeout=CHECK_TIMEOUT_S,
                              socket_connect_timeout=CHECK_TIMEOUT_S)  # one server or a Redis Cluster

    def live(self) -> ProbeResult:
        dead = [name for name, role in self.runtime.roles.items() if not role.alive()]
        if dead:
            log.warning("liveness: loops of role(s) %s have stopped", ", ".join(dead))
        return ProbeResult(("loops",) if dead else ())

    def ready(self) -> ProbeResult:
        failing = list(self.live().failing)
        if not self.runtime.started:
            failing.append("started")
        for name, check in self._checks():
            try:
                ok = check()
            except Exception as exc:  # any error of a dependency is "not ready", never a crash of the probe
                log.debug("readiness check %s failed: %s", name, exc)
                ok = False
            if not ok:
                failing.append(name)
        return ProbeResult(tuple(failing), self._degraded())

    def _degraded(self) -> tuple[str, ...]:
        video = self.runtime.video
        if video is None or not self.runtime.started:  # the model may still be loading
            return ()
        return ("detector",) if video.engine.model_status.startswith("motion-only") else ()

    def _checks(self) -> list[tuple[str, Callable[[], bool]]]:
        rt = self.runtime
        checks: list[tuple[str, Callable[[], bool]]] = [("redis", lambda: bool(self._redis.ping()))]
        if rt.store is not None:
            checks.append(("sql", self._sql))
        if rt.mqtt is not None:
            checks.append(("mqtt", lambda: bool(rt.mqtt.connected)))
        return checks

    def _sql(self) -> bool:
        with self.runtime.store.read() as session:
            session.execute(text("SELECT 1"))
        return True

    def close(self) -> None:
        self._redis.close()


def serve_probes(probes: Probes, host: str, port: int) -> ThreadingHTTPServer:
    """``GET /healthz`` (live) and ``GET /readyz`` (ready) on ``host:port`` in a daemon thread; 200 or 503."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            check = {"/healthz": probes.live, "/livez": probes.live, "/readyz": probes.ready}.get(path)
            if check is None:
                self._answer(404, {"status": "not found"})
                return
            result = check()
            self._answer(200 if result.ok else 503, result.body())

        def _answer(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:  # a probe every few seconds is not news
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health-probes", daemon=True).start()
    log.info("health probes on http://%s:%d/healthz and /readyz", host, server.server_address[1])
    return server
