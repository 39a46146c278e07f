"""Three "hosts" as Linux network namespaces, made and removed by the test.

Layout (addresses chosen here, nothing else is touched):

    root namespace                                    namespace gwNNNNhI (I = 1..3)
      lo: 10.213.0.1/32  ← the services' address        unshare --uts: its own hostname
      veth gwNNNNrI: 10.213.I.1/30  ─────────────────── veth gwNNNNnI: 10.213.I.2/30
                                                        route 10.213.0.1/32 via 10.213.I.1

Services (the test's own redis-server and RTSP server) listen on 10.213.0.1 (and 127.0.0.1 for the test
itself), a root-namespace address every namespace reaches through its own veth — delivered locally by the root
namespace, no forwarding, no route out of the box. ``partition(i)`` takes namespace i's veth down (no packets
in or out), ``heal(i)`` brings it back with its route. ``close()`` removes every namespace, veth and the lo
address, also after a failure (veth peers go with their namespace).
"""
from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SERVICES_IP = "10.213.0.1"


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = (["ip", "netns", "exec", ns, "ip"] if ns else ["ip"]) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=check)


def available() -> str | None:
    """None when namespaces can be made here, else why not (the test is skipped)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=False)
    if probe.returncode != 0:
        return f"ip netns does not work here: {probe.stderr.strip()}"
    if subprocess.run(["which", "unshare"], capture_output=True, check=False).returncode != 0:
        return "unshare (util-linux) is missing"
    return None


@dataclass
class Host:
    index: int
    ns: str
    veth_root: str
    veth_ns: str
    hostname: str

    @property
    def root_ip(self) -> str:
        return f"10.213.{self.index}.1"

    @property
    def ip(self) -> str:
        return f"10.213.{self.index}.2"


@dataclass
class Hosts:
    """``Hosts(3)``: make them; ``spawn(i, argv)`` runs a process in namespace i under its own hostname."""

    count: int
    tag: str = field(default_factory=lambda: f"gw{os.getpid() % 10000:04d}")
    hosts: list[Host] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)
    _lo_added: bool = False

    def __post_init__(self) -> None:
        try:
            _ip("addr", "add", f"{SERVICES_IP}/32", "dev", "lo")
            self._lo_added = True
            for i in range(1, self.count + 1):
                host = Host(i, f"{self.tag}h{i}", f"{self.tag}r{i}", f"{self.tag}n{i}", f"{self.tag}-host{i}")
                self.hosts.append(host)
                _ip("netns", "add", host.ns)
                _ip("link", "add", host.veth_root, "type", "veth", "peer", "name", host.veth_ns)
                _ip("link", "set", host.veth_ns, "netns", host.ns)
                _ip("addr", "add", f"{host.root_ip}/30", "dev", host.veth_root)
                _ip("link", "set", host.veth_root, "up")
                _ip("link", "set", "lo", "up", ns=host.ns)
                _ip("addr", "add", f"{host.ip}/30", "dev", host.veth_ns, ns=host.ns)
                self.heal(i)
        except Exception:
            self.close()
            raise

    def host(self, i: int) -> Host:
        return self.hosts[i - 1]

    def spawn(self, i: int, argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
        h = self.host(i)
        shell = f"hostname {h.hostname} && exec " + " ".join(_quote(a) for a in argv)
        out = open(log, "ab")
        proc = subprocess.Popen(["ip", "netns", "exec", h.ns, "unshare", "--uts", "sh", "-c", shell],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        out.close()
        self.procs.append(proc)
        return proc

    def pids(self, i: int) -> list[int]:
        got = subprocess.run(["ip", "netns", "pids", self.host(i).ns], capture_output=True, text=True, timeout=10)
        return [int(p) for p in got.stdout.split()]

    def kill_all(self, i: int) -> list[int]:
        """SIGKILL every process of namespace i (a host losing power); returns the pids killed."""
        killed = []
        for _ in range(5):  # a process forking while we kill (multiprocessing spawn): go round again
            pids = self.pids(i)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
            for p in self.procs:
                if p.pid in pids:
                    p.wait(10)
        return killed

    def partition(self, i: int) -> None:
        """Namespace i can reach nothing (its veth is down)."""
        h = self.host(i)
        _ip("link", "set", h.veth_ns, "down", ns=h.ns)

    def heal(self, i: int) -> None:
        h = self.host(i)
        _ip("link", "set", h.veth_ns, "up", ns=h.ns)
        _ip("route", "replace", f"{SERVICES_IP}/32", "via", h.root_ip, "dev", h.veth_ns, ns=h.ns)

    def close(self) -> None:
        for i, _h in enumerate(self.hosts, start=1):
            try:
                self.kill_all(i)
            except Exception:  # noqa: BLE001 - remove the rest regardless
                pass
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        for h in self.hosts:
            _ip("link", "del", h.veth_root, check=False)  # its peer goes with it
            subprocess.run(["ip", "netns", "del", h.ns], capture_output=True, timeout=20, check=False)
        if self._lo_added:
            _ip("addr", "del", f"{SERVICES_IP}/32", "dev", "lo", check=False)
            self._lo_added = False


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


class TcpRelay:
    """Makes a loopback-only service of the root namespace (the machine's PostgreSQL) reachable on the services
    address: every connection to ``SERVICES_IP:port`` is piped to ``target``. Bytes are copied unchanged, so the
    namespaces talk to the real server; it stops with ``close()``."""

    def __init__(self, target: tuple[str, int]):
        import socket
        import threading

        self.target = target
        self._server = socket.create_server((SERVICES_IP, 0))
        self.port = self._server.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="tcp-relay", daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                inbound, _ = self._server.accept()
            except OSError:
                return  # closed
            try:
                outbound = socket.create_connection(self.target, timeout=10)
            except OSError:
                inbound.close()
                continue
            with self._lock:
                self._open += [inbound, outbound]
            for a, b in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(2)
                except OSError:
                    pass

    def close(self) -> None:
        self._server.close()
        with self._lock:
            for s in self._open:
                s.close()
