"""One way to reach the deployment's Redis: one server (``redis://``, ``rediss://``, ``unix://``) or a Redis Cluster
(``redis+cluster://[:password@]host:port[,host:port…]``, ``rediss+cluster://`` with TLS).

Why a scheme rather than a separate switch: the URL is the one setting every role, every worker process
(``alerts.publishing.OutboxFactory`` carries it across spawn) and the ``limits`` package already read, and
``limits`` spells a cluster the same way. Every key GridWatch writes carries the deployment's prefix as a hash
tag (``{gw}:…``), so the multi-key MULTI blocks, Lua scripts and multi-stream XREADs stay in one slot on a cluster.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import redis
from redis.cluster import ClusterNode, RedisCluster

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def hash_tag(prefix: str) -> str:
    """``gw`` → ``{gw}``: the part of a key Redis Cluster hashes, the same for every key of a deployment."""
    return "{" + prefix + "}"


def is_cluster(url: str) -> bool:
    return url.split("://", 1)[0] in CLUSTER_SCHEMES


def _cluster_parts(url: str) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    """(username, password, [(host, port)]) of a ``redis+cluster://`` URL; a clear ValueError for anything else."""
    rest = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    user = password = None
    if "@" in rest:
        auth, rest = rest.rsplit("@", 1)
        user, _, password = auth.partition(":")
        user, password = unquote(user) or None, unquote(password) or None
    nodes = []
    for part in filter(None, rest.split(",")):
        host, _, port = part.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"Redis Cluster URL: node {part!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    if not nodes:
        raise ValueError("Redis Cluster URL names no node (redis+cluster://host:port[,host:port…])")
    return user, password, nodes


def redis_nodes(url: str, default_port: int = 6379) -> list[tuple[str, int]]:
    """``(host, port)`` of every server the URL names (one for a plain URL)."""
    if is_cluster(url):
        return _cluster_parts(url)[2]
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return [(parts.hostname or "127.0.0.1", parts.port or default_port)]


def connect(url: str, **options: Any) -> redis.Redis:
    """A sync client for ``url``: ``redis.Redis`` for one server, ``RedisCluster`` for a cluster URL."""
    if not is_cluster(url):
        return redis.Redis.from_url(url, **options)
    user, password, nodes = _cluster_parts(url)
    return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes], username=user, password=password,
                        ssl=url.startswith("rediss+"), **options)


def connect_async(url: str, **options: Any) -> Any:
    """The asyncio client for ``url`` (the API's live WebSocket), cluster or not."""
    from redis import asyncio as aioredis

    if not is_cluster(url):
        return aioredis.from_url(url, **options)
    from redis.asyncio.cluster import ClusterNode as AsyncNode, RedisCluster as AsyncCluster

    user, password, nodes = _cluster_parts(url)
    return AsyncCluster(startup_nodes=[AsyncNode(h, p) for h, p in nodes], username=user, password=password,
                        ssl=url.startswith("rediss+"), **options)
