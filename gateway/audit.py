"""The audit trail of state-changing requests: who did what to which target, and when.

Ticket transitions are also in the case store's history; this log covers everything else (logins,
camera and device changes, alarm presses) and every ticket action once more with the caller's identity,
as one JSON line per action in ``{run_dir}/audit.jsonl`` so it can be shipped and grepped.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger("gridwatch.audit")


class AuditLog:
    """Append-only JSON-lines file plus the most recent records in memory for the admin page."""

    def __init__(self, path: Path, keep: int = 1000):
        self.path = path
        self._lock = threading.Lock()
        self._recent: deque[dict] = deque(maxlen=keep)
        path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, who: str, action: str, target: str, **details: Any) -> dict:
        entry = {"at": datetime.now(timezone.utc).isoformat(), "who": who, "action": action, "target": target}
        if details:
            entry["details"] = details
        line = json.dumps(entry, ensure_ascii=False, default=str)
        with self._lock:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            self._recent.append(entry)
        log.info("%s %s %s", who, action, target)
        return entry

    def recent(self, limit: int = 100) -> list[dict]:
        with self._lock:
            return list(self._recent)[-limit:][::-1]
