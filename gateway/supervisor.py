"""``gridwatch run`` as a supervisor: each role a child process, restarted with back-off, all stopped together.

Children are ``python -m gateway.cli run --roles <role> --child …`` (``ps`` shows the role by name).
Each child asks the kernel for SIGTERM when the supervisor dies (``PR_SET_PDEATHSIG``), so even a
SIGKILLed supervisor leaves no orphan; a clean stop (Ctrl-C, SIGTERM) sends SIGTERM to every child,
waits, then SIGKILLs what is left. A child that exits is started again after 1, 2, 4 … 30 s (back-off
reset once it has run a minute); each start and exit is logged and written to Redis
(``{prefix}:roles``), where ``/api/v1/status`` reads it.
"""
from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from ingest.redis_connect import connect
from ingest.backoff import Backoff

log = logging.getLogger("gridwatch.supervisor")

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
HEALTHY_AFTER_S = 60.0
STOP_GRACE_S = 15.0
BOARD_TTL_S = 30
STARTUP_WAIT_S = 300.0  # how long the start-up report waits for every role to answer ready
STARTUP_SETTLE_S = 20.0  # once every role answered: how long a not-ready one may take before it is reported degraded


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor thread that forked us goes away (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class RoleBoard:
    """The supervisors' record of their role processes in Redis: ``{prefix}:roles`` hash, one field per process."""

    def __init__(self, client: redis.Redis, tag: str):
        self.client, self.key = client, f"{tag}:roles"

    def write(self, name: str, state: dict[str, Any]) -> None:
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(self.key, name, json.dumps(state))
            pipe.expire(self.key, BOARD_TTL_S)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("role state not written: %s", exc)

    def read(self) -> dict[str, Any]:
        try:
            raw = self.client.hgetall(self.key)
        except redis.RedisError:
            return {}
        return {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}

    def clear(self) -> None:
        try:
            self.client.delete(self.key)
        except redis.RedisError:
            pass


@dataclass
class Child:
    """One role process the supervisor keeps alive."""

    name: str  # "video", "devices-0of2", …
    argv: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: Backoff = field(default_factory=lambda: Backoff(BACKOFF_FIRST_S, BACKOFF_MAX_S))
    next_start: float = 0.0
    last_exit: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def state(self, host: str) -> dict[str, Any]:
        running = self.proc is not None and self.proc.poll() is None
        return {"role": self.name.split("-")[0], "process": self.name, "state": "running" if running else "restarting",
                "pid": self.proc.pid if running and self.proc else None, "host": host, "restarts": self.restarts,
                "last_exit": self.last_exit, "started_at": self.started_at if running else None,
                "next_start_in_s": None if running else round(max(0.0, self.next_start - time.monotonic()), 1),
                "updated_at": time.time()}


class Supervisor:
    """Starts ``children`` and keeps them running until ``stop()`` (or SIGTERM / SIGINT in ``run()``)."""

    def __init__(self, children: list[Child], board: RoleBoard | None, *, env: dict[str, str] | None = None,
                 cwd: Path | None = None, report: "StartupReport | None" = None):
        self.children = children
        self.board = board
        self.report = report
        self.env = env
        self.cwd = cwd
        self.host = socket.gethostname()
        self._stop = threading.Event()

    def _spawn(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.argv, env=self.env, cwd=self.cwd, preexec_fn=_die_with_parent)
        child.started_at = time.time()
        log.info("role %s started (pid %d)", child.name, child.proc.pid)
        self._publish(child)

    def _publish(self, child: Child) -> None:
        if self.board is not None:
            self.board.write(child.name, child.state(self.host))

    def _reap(self, child: Child, now: float) -> None:
        code = child.proc.poll() if child.proc is not None else None
        if child.proc is None or code is None:
            return
        ran = time.time() - child.started_at
        if ran >= HEALTHY_AFTER_S:
            child.backoff.reset()
        child.last_exit = code
        child.restarts += 1
        delay = child.backoff.next_delay()
        child.next_start = now + delay
        log.warning("role %s (pid %d) exited with %s after %.1f s; restarting in %.0f s (restart %d)", child.name,
                    child.proc.pid, code, ran, delay, child.restarts)
        child.history.append({"exit": code, "ran_s": round(ran, 1), "at": time.time()})
        child.proc = None
        self._publish(child)

    def run(self) -> int:
        """Supervise until SIGTERM / SIGINT; then stop every child. Returns 0."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())
        for child in self.children:
            self._spawn(child)
        if self.report is not None:
            self.report.started(self.children)
            threading.Thread(target=self.report.follow, args=(self.children, self._stop), name="startup-report",
                             daemon=True).start()
        last_board = time.monotonic()
        while not self._stop.wait(0.2):
            now = time.monotonic()
            for child in self.children:
                self._reap(child, now)
                if child.proc is None and now >= child.next_start and not self._stop.is_set():
                    self._spawn(child)
            if now - last_board >= 5.0:
                for child in self.children:
                    self._publish(child)
                last_board = now
        self.stop_children()
        return 0

    def stop(self) -> None:
        self._stop.set()

    def stop_children(self) -> None:
        live = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for child in live:
            child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in live:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("role %s did not stop in %.0f s; killing it", child.name, STOP_GRACE_S)
                child.proc.kill()
                child.proc.wait(timeout=5)
            log.info("role %s stopped", child.name)
        if self.board is not None:
            self.board.clear()


def child_argv(config: Path, role: str, *, port: int | None = None, host: str | None = None,
               video_workers: int | None = None, partition: str | None = None, verbose: bool = False,
               health_port: int | None = None) -> list[str]:
    """The command line of one role process (what ``ps`` shows)."""
    argv = [sys.executable, "-m", "gateway.cli"] + (["-v"] if verbose else []) + [
        "run", "--child", "--roles", role, "--config", str(config)]
    if health_port is not None:
        argv += ["--health-port", str(health_port), "--health-host", "127.0.0.1"]
    if port is not None:
        argv += ["--port", str(port)]
    if host is not None:
        argv += ["--host", host]
    if video_workers is not None and role == "video":
        argv += ["--video-workers", str(video_workers)]
    if partition is not None:
        argv += ["--devices-partition", partition]
    return argv


def supervise(deployment: Any, config: Path, roles: tuple[str, ...], *, port: int | None = None, host: str | None = None,
              video_workers: int | None = None, devices_processes: int = 1, verbose: bool = False) -> int:
    """``gridwatch run`` without ``--child``: services up, shared state prepared once, each role a child."""
    from detectors.camera_state import CameraKeys
    from gateway.local_services import ensure_services

    services = ensure_services(deployment.services.redis_url, deployment.services.mqtt_url, deployment.run_dir,
                               autostart=deployment.services.autostart)
    try:
        _prepare_store(deployment)
        client = connect(deployment.services.redis_url)
        keys = CameraKeys(deployment.services.stream_prefix)
        # Camera, device and profile changes made through the API are rows of the SQL store: they outlive this run.
        children = []
        for role in roles:
            if role == "devices" and devices_processes > 1:
                children += [Child(f"devices-{i}of{devices_processes}",
                                   child_argv(config, role, partition=f"{i}/{devices_processes}", verbose=verbose,
                                              health_port=_free_port()))
                             for i in range(devices_processes)]
            else:
                children.append(Child(role, child_argv(config, role, port=port if role == "api" else None,
                                                       host=host if role == "api" else None, video_workers=video_workers,
                                                       verbose=verbose, health_port=_free_port())))
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if "api" in roles:
            from gateway.runtime import console_line

            print(console_line(deployment), flush=True)
        log.info("supervising %s", ", ".join(c.name for c in children))
        return Supervisor(children, RoleBoard(client, keys.tag), env=env, report=StartupReport()).run()
    finally:
        services.stop()


def _free_port() -> int:
    """A loopback port for a child's probes (the child binds it; nothing else on this host is expected to race)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _probe_port(child: Child) -> int | None:
    return int(child.argv[child.argv.index("--health-port") + 1]) if "--health-port" in child.argv else None


def _readyz(child: Child) -> dict[str, Any] | None:
    """The child's readiness answer (``gateway.probes``), or None while it does not answer yet."""
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{_probe_port(child)}/readyz", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None


class StartupReport:
    """Prints, once, what started: each role with its pid, then which became ready and which are degraded.

    It asks each child's ``/readyz`` (``gateway.probes``) until all answer ready or ``wait_s`` passes, so
    the operator reads one short summary instead of every library's start-up lines.
    """

    def __init__(self, wait_s: float = STARTUP_WAIT_S, settle_s: float = STARTUP_SETTLE_S, out: Any = None):
        self.wait_s, self.settle_s, self.out = wait_s, settle_s, out

    def _print(self, line: str) -> None:
        print(line, file=self.out or sys.stdout, flush=True)

    def started(self, children: list[Child]) -> None:
        self._print("started: " + ", ".join(f"{c.name} (pid {c.proc.pid})" for c in children if c.proc is not None))

    def follow(self, children: list[Child], stop: threading.Event) -> None:
        """Poll until every role is settled (``_settled``), summarise, then report late comers as they become
        ready, until ``wait_s``."""
        began = time.monotonic()
        probed = [c for c in children if _probe_port(c) is not None]
        answers: dict[str, dict[str, Any]] = {}
        failing_since: dict[str, float] = {}
        summarised = False
        while not stop.is_set() and time.monotonic() - began < self.wait_s:
            now = time.monotonic()
            for child in probed:
                if answers.get(child.name, {}).get("status") == "ok":
                    continue
                answer = _readyz(child)
                if answer is None:
                    continue
                if summarised and answer.get("status") == "ok":
                    self._print(f"ready after {now - began:.0f} s: {child.name}")
                answers[child.name] = answer
                if "started" not in answer.get("failing", ["started"]):
                    failing_since.setdefault(child.name, now)
            if not summarised and all(self._settled(c, answers.get(c.name), failing_since.get(c.name), now) for c in probed):
                self._summarise(children, answers, now - began)
                summarised = True
            if all(answers.get(c.name, {}).get("status") == "ok" for c in probed):
                return
            stop.wait(0.5)
        if not summarised and not stop.is_set():
            self._summarise(children, answers, time.monotonic() - began)

    def _settled(self, child: Child, answer: dict[str, Any] | None, failing_since: float | None, now: float) -> bool:
        """Ready; or it has exited since start (a crash at start-up is news at once); or it started but has
        failed a check for ``settle_s``. A role still starting is waited for (a slow import is not degraded)."""
        if answer is not None and answer.get("status") == "ok":
            return True
        if child.restarts > 0:
            return True
        return failing_since is not None and now - failing_since >= self.settle_s

    def _summarise(self, children: list[Child], answers: dict[str, dict[str, Any]], took: float) -> None:
        ready = [c.name for c in children if answers.get(c.name, {}).get("status") == "ok"]
        if ready:
            self._print(f"ready after {took:.0f} s: {', '.join(ready)}")
        for child in children:
            answer = answers.get(child.name)
            failing = ", ".join((answer or {}).get("failing", []))
            if child.restarts > 0 and not (answer and answer.get("status") == "ok"):
                self._print(f"DEGRADED: {child.name} exited ({child.last_exit}) and is restarting (restart {child.restarts})"
                            + (f"; its last readiness failed: {failing}" if failing else ""))
            elif answer is None:
                self._print(f"DEGRADED: {child.name} did not answer its readiness probe in {took:.0f} s")
            elif answer.get("status") != "ok":
                self._print(f"DEGRADED: {child.name} not ready — failing: {failing}")
            if answer and answer.get("degraded"):
                self._print(f"DEGRADED: {child.name} — {', '.join(answer['degraded'])}"
                            + (" (no detector model: motion-only)" if "detector" in answer["degraded"] else ""))


def _prepare_store(deployment: Any) -> None:
    """Create / migrate the SQL store and record the grids once, before several processes open it at once."""
    from alerts.grids import load_grid_file
    from alerts.store import open_store

    dep = deployment
    dep.run_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(dep.sql_url)
    store.sync_grids(load_grid_file(dep.resolve(dep.grids.file), version=dep.grids.version))
