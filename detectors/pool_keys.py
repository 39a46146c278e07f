"""Key names of the video pool in Redis. All carry ``{prefix}`` as a Redis Cluster hash tag, so one slot holds
them and the pool's Lua scripts may touch several keys at once.

================================  ============================================================  =================
key                               value                                                         lifetime
================================  ============================================================  =================
``{p}:pool:member:{id}``          the member's random instance token (SET NX: one process per id) PX member TTL
``{p}:pool:members``              sorted set: member id → its heartbeat's expiry (server ms)      pruned each beat
``{p}:pool:info``                 hash: member id → JSON (host, pid, cameras held, joined_at)     pruned with members
``{p}:pool:lease:{camera}``       ``member|instance|fence`` of the camera's owner                 PX lease TTL
``{p}:pool:fence:{camera}``       the camera's fencing counter (INCR on every acquisition)        kept
``{p}:pool:grants:{camera}``      sorted set: fence → ``fence:granted_ms`` (server time), last 32 kept
``{p}:pool:fenced``               hash: camera → anomalies intake rejected as stale; ``_total``    kept
================================  ============================================================  =================
"""
from __future__ import annotations

from dataclasses import dataclass

from ingest.redis_connect import hash_tag


@dataclass(frozen=True)
class PoolKeys:
    """``prefix`` is the deployment's ``services.stream_prefix``."""

    prefix: str

    @property
    def tag(self) -> str:
        return hash_tag(self.prefix)

    def member(self, member_id: str) -> str:
        return f"{self.tag}:pool:member:{member_id}"

    @property
    def members(self) -> str:
        return f"{self.tag}:pool:members"

    @property
    def info(self) -> str:
        return f"{self.tag}:pool:info"

    def lease(self, camera_id: str) -> str:
        return f"{self.tag}:pool:lease:{camera_id}"

    def fence(self, camera_id: str) -> str:
        return f"{self.tag}:pool:fence:{camera_id}"

    def grants(self, camera_id: str) -> str:
        return f"{self.tag}:pool:grants:{camera_id}"

    @property
    def fenced(self) -> str:
        return f"{self.tag}:pool:fenced"
