"""Small helpers every test area uses: wait for a condition with a deadline, pick a free local port."""
from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy (and return that); fail after ``timeout`` seconds.

    The way tests synchronise with the system under test: a bounded poll of an observable condition,
    never a fixed sleep.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        threading.Event().wait(interval)


def stop_process(proc: "subprocess.Popen", sig: int = signal.SIGTERM, grace_s: float = 30.0) -> None:
    """Ask a process the test started to stop (``sig``); SIGKILL it if it is still there after ``grace_s``."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Something accepts TCP connections on host:port now (the product's own check, ``gateway.local_services``)."""
    from gateway.local_services import is_listening

    return is_listening(host, port, timeout=0.3)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




REPO = Path(__file__).resolve().parents[1]
UPDATE_SCREENSHOTS_ENV = "GRIDWATCH_UPDATE_SCREENSHOTS"


def screenshot_dir(name: str = "") -> Path:
    """Where browser tests write screenshots: docs/screenshots only when ``GRIDWATCH_UPDATE_SCREENSHOTS=1``
    (refreshing the docs' pictures is asked for), else tests/artifacts/screenshots (git-ignored), so a test
    run never rewrites tracked files. ``name`` is a sub-folder under the artifacts (per test area)."""
    import os

    if os.environ.get(UPDATE_SCREENSHOTS_ENV) == "1":
        return REPO / "docs" / "screenshots"
    return REPO / "tests" / "artifacts" / "screenshots" / name if name else REPO / "tests" / "artifacts" / "screenshots"
