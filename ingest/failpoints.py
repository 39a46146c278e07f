"""Fail points: named places where a test can make the process die with SIGKILL, as a power cut would.

``failpoint("press.after_claim")`` does nothing unless the environment variable ``GRIDWATCH_FAILPOINT``
names that point when the process starts; then the process kills itself there (no cleanup, no
``finally``, no flush: exactly what ``kill -9`` or the OOM killer does). The variable is read once, at
import, so an unset fail point costs one test of an empty frozenset per call.

    GRIDWATCH_FAILPOINT=press.after_claim            # die the first time the point is reached
    GRIDWATCH_FAILPOINT=press.after_claim@40         # die the 40th time (in the middle of a load)
    GRIDWATCH_FAILPOINT=intake.before_xack,notify.after_send@3   # several points

The points are listed in docs/RELIABILITY.md with the test that kills the process at each one.
Why a hand-made one: the kill must happen inside the real process at an exact step of a write; a
library that raises exceptions there would test error handling, not a crash.
"""
from __future__ import annotations

import os
import signal
import threading

ENV = "GRIDWATCH_FAILPOINT"


def _parse(spec: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, nth = part.partition("@")
        points[name.strip()] = max(1, int(nth)) if nth.strip().isdigit() else 1
    return points


_ARMED: dict[str, int] = _parse(os.environ.get(ENV, ""))
_HITS: dict[str, int] = {}
_LOCK = threading.Lock()


def failpoint(name: str) -> None:
    """SIGKILL this process here when ``GRIDWATCH_FAILPOINT`` arms ``name`` (on its n-th hit); else nothing."""
    if not _ARMED or name not in _ARMED:
        return
    with _LOCK:
        _HITS[name] = hits = _HITS.get(name, 0) + 1
    if hits >= _ARMED[name]:
        os.kill(os.getpid(), signal.SIGKILL)


def armed() -> dict[str, int]:
    """The points armed in this process and on which hit each fires (for logs and tests)."""
    return dict(_ARMED)
