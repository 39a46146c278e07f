"""A real 3-master Redis Cluster on loopback ports the test picks, created with ``redis-cli --cluster create``
and removed afterwards (servers stopped, their folder deleted with the test's tmp dir)."""
from __future__ import annotations

import random
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.support import wait_for


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_ports(count: int) -> list[int]:
    """Ports whose cluster bus port (+10000) is free too, so both stay below 65536."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 29999)
        if port not in ports and _free(port) and _free(port + 10000):
            ports.append(port)
    return ports


class RedisCluster3:
    """Three ``redis-server --cluster-enabled yes`` masters; ``url`` is GridWatch's ``redis+cluster://`` URL."""

    def __init__(self, root: Path):
        self.root = root
        self.ports = _cluster_ports(3)
        self.procs: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def _cli(self, *args: str, port: int | None = None, timeout: float = 30) -> str:
        argv = ["redis-cli"] + (["-p", str(port)] if port else []) + list(args)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True).stdout

    def start(self) -> None:
        for port in self.ports:
            folder = self.root / str(port)
            folder.mkdir(parents=True)
            self.procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(folder / "nodes.conf"), "--cluster-node-timeout", "5000",
                 "--dir", str(folder), "--save", "", "--appendonly", "no", "--daemonize", "no",
                 "--logfile", str(folder / "redis.log")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in self.ports:
            wait_for(lambda p=port: not _free(p) and self._cli("ping", port=p).strip() == "PONG", 10,
                     what=f"redis-server on {port}")
        self._cli("--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports], "--cluster-replicas", "0",
                  "--cluster-yes", timeout=60)
        for port in self.ports:
            wait_for(lambda p=port: "cluster_state:ok" in self._cli("cluster", "info", port=p), 30, interval=0.2,
                     what=f"cluster state ok on {port}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisCluster3]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server / redis-cli are not installed")
    cluster = RedisCluster3(tmp_path / "cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
