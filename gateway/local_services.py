"""Start the Redis and MQTT brokers a deployment names when they run on this host and nobody is listening.

A fresh machine has neither; a command centre has both. So ``gridwatch run`` connects to what the
deployment file names and, only for a localhost URL with no listener, starts ``redis-server`` /
``mosquitto`` as child processes with their data in the run directory, and stops them on exit.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ingest.redis_connect import is_cluster, redis_nodes

log = logging.getLogger(__name__)

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
PACKAGE_OF = {"redis-server": "redis-server", "mosquitto": "mosquitto"}


class ServiceError(RuntimeError):
    """A service the deployment needs is not reachable and cannot be started here."""


def is_listening(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_listening(host: str, port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_listening(host, port, timeout=0.2):
            return
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"process exited with code {proc.returncode} before listening on {host}:{port}")
        time.sleep(0.05)  # polling a socket, not synchronising test steps
    raise ServiceError(f"nothing listening on {host}:{port} after {timeout:.0f} s")


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    """The server to check (and maybe start); for a Redis Cluster URL its first node, which is never started here."""
    if is_cluster(url):
        return redis_nodes(url)[0]
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _binary(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        raise ServiceError(f"{name} is not installed and nothing listens at the configured URL: install it with `sudo apt-get install {PACKAGE_OF[name]}` or point the deployment at a running server")
    return path


@dataclass
class LocalServices:
    """The child processes started for one run; ``stop()`` ends them."""

    run_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def ensure_redis(self, url: str) -> bool:
        where = self._to_start(url, 6379, "redis")
        if where is None:
            return False
        host, port, data = where
        cmd = [_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
               "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no", "--logfile", str(data / "redis.log")]
        self._spawn("redis", cmd, host, port)
        return True

    def ensure_mqtt(self, url: str) -> bool:
        where = self._to_start(url, 1883, "mosquitto")
        if where is None:
            return False
        host, port, data = where
        conf = data / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {data}/\n"
            f"log_dest file {data / 'mosquitto.log'}\nmax_queued_messages 0\n"
            # Started as root, mosquitto drops to user "mosquitto" and can no longer write the run dir.
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        self._spawn("mosquitto", [_binary("mosquitto"), "-c", str(conf)], host, port)
        return True

    def _to_start(self, url: str, default_port: int, name: str) -> tuple[str, int, Path] | None:
        """Host, port and data folder of a server to start here; None when one answers or the host is not local."""
        host, port = _host_port(url, default_port)
        if is_listening(host, port) or host not in LOCAL_HOSTS:
            return None
        data = self.run_dir / name
        data.mkdir(parents=True, exist_ok=True)
        return host, port, data

    def _spawn(self, name: str, cmd: list[str], host: str, port: int) -> None:
        log.info("starting %s on %s:%d (data in %s)", name, host, port, self.run_dir)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        self.procs[name] = proc
        try:
            wait_listening(host, port, proc=proc)
        except ServiceError as exc:
            err = proc.stderr.read().decode(errors="replace")[-500:] if proc.poll() is not None and proc.stderr else ""
            self.stop()
            raise ServiceError(f"could not start {name}: {exc} {err}".strip()) from None

    def stop(self) -> None:
        for name, proc in list(self.procs.items()):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            log.info("stopped %s", name)
        self.procs.clear()


def ensure_services(redis_url: str, mqtt_url: str, run_dir: Path, autostart: bool = True) -> LocalServices:
    """Make sure Redis and the MQTT broker answer, starting local ones if allowed; fail with what to do."""
    services = LocalServices(run_dir)
    for name, url, default, ensure in (("Redis", redis_url, 6379, services.ensure_redis), ("MQTT broker", mqtt_url, 1883, services.ensure_mqtt)):
        host, port = _host_port(url, default)
        if autostart and not is_cluster(url):  # a cluster is never started here
            ensure(url)
        if not is_listening(host, port):
            services.stop()
            raise ServiceError(f"{name} at {host}:{port} does not answer (services.autostart is off or the host is not local)")
    return services
