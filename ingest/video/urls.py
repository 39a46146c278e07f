"""URL hygiene for camera sources: the SSRF guard and credential redaction.

Camera URLs arrive over the REST API from integrators, so GridWatch would otherwise fetch any URL
an attacker names from inside the command-centre network: the cloud metadata service, the Redis on
localhost, an intranet admin page. ``validate_source_url`` checks each URL against a
:class:`SourcePolicy`: public addresses are cameras; a private address is one only inside the
deployment's camera networks (``ingest.camera_networks``, CIDRs: the video private network);
loopback, link-local, cloud metadata and GridWatch's own services (Redis, SQL, broker, API) are
refused whatever the list says. Credentials embedded in camera URLs
(``rtsp://admin:pass@…`` is how most cameras are addressed) must never reach logs, status pages or
API answers, hence ``redact_url``/``redact_text``.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ingest.video.errors import InvalidSourceError

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https"})
"""Schemes whose URL names a host that GridWatch connects to."""

LOCAL_SCHEMES = frozenset({"footage", "synthetic", "whip"})
"""Schemes that never touch the network or arbitrary files."""

_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "rtmps": 443, "http": 80, "https": 443}

# Cloud instance-metadata endpoints: refused even when private sources are allowed, because no camera
# lives there and reaching them leaks cloud credentials (AWS/GCP/Azure/OpenStack, Alibaba, Tencent, ECS tasks).
METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal",
     "metadata.tencentyun.com", "metadata.azure.com"}
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "169.254.169.123")
)

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# What the deprecated ``ingest.allow_private_sources: true`` stands for: every private range a camera network uses.
PRIVATE_NETWORKS: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))

TEST_LOOPBACK_ENV = "GRIDWATCH_TEST_ONLY_LOOPBACK_CAMERAS"
"""Set to 1 by the test suite only (tests/conftest.py): its RTSP/HTTP fixtures serve footage on 127.0.0.1.
An environment variable of the process, so no deployment file and no API call can turn it on."""


@dataclass(frozen=True)
class SourcePolicy:
    """Which camera URLs GridWatch may connect to (built from the deployment by ``IngestConfig.source_policy``).

    ``camera_networks``: private networks cameras live on; ``allow_files``: local files as sources;
    ``own_services``: ``(address, port)`` of GridWatch's own Redis, SQL, broker and API, refused always.
    """

    camera_networks: tuple[IPNetwork, ...] = ()
    allow_files: bool = False
    own_services: frozenset[tuple[IPAddress, int]] = frozenset()

    @classmethod
    def of(cls, value: "SourcePolicy | bool") -> "SourcePolicy":
        """A policy; ``True``/``False`` are the old flag: every private network and files, or nothing private."""
        if isinstance(value, SourcePolicy):
            return value
        return cls(PRIVATE_NETWORKS, True) if value else cls()

    def in_camera_network(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.camera_networks)


def loopback_allowed_for_tests() -> bool:
    """True only in the test suite (``GRIDWATCH_TEST_ONLY_LOOPBACK_CAMERAS=1``), read at every check."""
    return os.environ.get(TEST_LOOPBACK_ENV) == "1"


def own_service_endpoints(urls: list[tuple[str, int]]) -> frozenset[tuple[IPAddress, int]]:
    """``(host, port)`` pairs of GridWatch's services → every address they resolve to, with the port.
    An unspecified bind address (``0.0.0.0``) stands for loopback and this host's own addresses."""
    out: set[tuple[IPAddress, int]] = set()
    for host, port in urls:
        host = (host or "").strip("[]").lower()
        if not host:
            continue
        names = [host]
        if host in ("0.0.0.0", "::"):
            names = ["127.0.0.1", "::1", socket.gethostname()]
        for name in names:
            try:
                infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError, OSError):
                continue
            for info in infos:
                out.add((ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]), port))
    return frozenset(out)


_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_FOOTAGE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}$")
_SENSITIVE_QUERY = re.compile(r"pass|pwd|token|secret|key|auth|sig|credential|session", re.I)
_USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/\s:@]*):(?P<pw>[^@\s/]*)@")


def url_scheme(url: str) -> str:
    """The lower-case scheme of a source URL; ``"file"`` for a plain path (``/a/b.mp4``, ``clips/x.mp4``)."""
    match = _SCHEME_RE.match(url)
    if not match or len(match.group(1)) == 1:  # "C:\\clip.mp4" is a Windows path, not a scheme
        return "file"
    return match.group(1).lower()


def _plugin_schemes() -> frozenset[str]:
    from ingest.video.registry import known_schemes  # late: the registry imports the sources

    return known_schemes()


def _refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is not a public camera address, or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is None and address.teredo:
            mapped = address.teredo[1]
        if mapped is not None:
            return _refusal(mapped)
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "non-public"
    return None


def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise InvalidSourceError(f"cannot resolve host {host!r}: {exc}") from None
    addresses = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]
        addresses.append(ipaddress.ip_address(text))
    if not addresses:
        raise InvalidSourceError(f"host {host!r} resolves to no address")
    return addresses


def validate_source_url(url: str, *, allow_private: "SourcePolicy | bool" = False) -> str:
    """Check a camera URL before GridWatch connects to it; return it (stripped) or raise InvalidSourceError.

    ``allow_private`` is the deployment's :class:`SourcePolicy` (a bool is the deprecated flag, see
    ``SourcePolicy.of``). Accepted: ``rtsp(s)://``, ``rtmp(s)://``, ``http(s)://`` to public hosts and to
    hosts inside the policy's camera networks; ``footage:NAME``, ``synthetic:SCENE``, ``whip:`` and schemes
    registered by source plugins; local files (``file:`` or a plain path) when the policy allows files.
    Refused whatever the policy says: loopback, link-local, unspecified, multicast, cloud metadata, and the
    address:port of GridWatch's own services. Host names are resolved and *every* address is checked, so a
    name pointing inside the network is refused too. The check runs again before every reconnect, which
    narrows (but cannot close) the DNS-rebinding window; see docs/INTEGRATORS-video.md.
    """
    policy = SourcePolicy.of(allow_private)
    if not isinstance(url, str) or not url.strip():
        raise InvalidSourceError("empty source URL")
    url = url.strip()
    if len(url) > 4096:
        raise InvalidSourceError("source URL longer than 4096 characters")
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in url) or " " in url:
        raise InvalidSourceError("source URL contains whitespace, control characters or backslashes")
    scheme = url_scheme(url)
    if scheme == "file":
        if not policy.allow_files:
            raise InvalidSourceError("local files are refused as sources unless ingest.allow_local_files is set")
        return url
    if scheme in LOCAL_SCHEMES:
        rest = url.split(":", 1)[1]
        if scheme == "footage" and not _FOOTAGE_NAME_RE.match(rest):
            raise InvalidSourceError("footage: takes a plain file name of the footage folder (no paths)")
        if scheme == "synthetic" and not re.match(r"^[a-z_]+(\?[A-Za-z0-9=&_.]*)?$", rest):
            raise InvalidSourceError("synthetic: takes a scene name, e.g. synthetic:crowd")
        return url
    if scheme not in NETWORK_SCHEMES and scheme not in _plugin_schemes():
        raise InvalidSourceError(f"unsupported source scheme {scheme!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidSourceError(f"malformed source URL: {redact_text(str(exc), url)}") from None
    host = parts.hostname
    if not host:
        if scheme in NETWORK_SCHEMES:
            raise InvalidSourceError(f"{scheme} URL names no host")
        return url  # a plugin scheme without a network location
    if parts.netloc.count("@") > 1:
        raise InvalidSourceError("source URL has more than one '@' in its authority")
    host = host.rstrip(".").lower()
    if host in METADATA_HOSTS or host.endswith(".metadata.google.internal"):
        raise InvalidSourceError(f"host {host} is a cloud metadata service")
    try:
        addresses = [ipaddress.ip_address(host.split("%", 1)[0])]
    except ValueError:
        addresses = _resolve(host, port or _DEFAULT_PORTS.get(scheme, 80))
    for address in addresses:
        if address in METADATA_ADDRESSES or (
            isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped in METADATA_ADDRESSES
        ):
            raise InvalidSourceError(f"host {host} is a cloud metadata service")
        shown = host if host == str(address) else f"{host} ({address})"
        target = _unmapped(address)
        if (target, port or _DEFAULT_PORTS.get(scheme, 80)) in policy.own_services:
            raise InvalidSourceError(f"host {shown} port {port or _DEFAULT_PORTS.get(scheme, 80)} is one of GridWatch's own services")
        why = _refusal(address)
        if why is None:
            continue
        if why == "loopback" and loopback_allowed_for_tests():
            continue
        if why in ("private", "non-public") and policy.in_camera_network(target):
            continue
        hint = ("; list its network in ingest.camera_networks to allow it" if why in ("private", "non-public")
                else " (refused whatever ingest.camera_networks says)")
        raise InvalidSourceError(f"host {shown} is a {why} address{hint}")
    return url


def _unmapped(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it stands for (so lists and service checks see one form)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def redact_url(url: str) -> str:
    """The URL with its password and secret-looking query values replaced by ``***``, for logs and answers."""
    if not isinstance(url, str):
        return "<not a URL>"
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"{userinfo}@{hostport}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, "***" if _SENSITIVE_QUERY.search(k) else v) for k, v in pairs], safe="*", quote_via=quote
            )
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return _USERINFO_RE.sub(r"\g<scheme>\g<user>:***@", url.split("?", 1)[0])


def redact_text(text: str, url: str | None = None) -> str:
    """Scrub a message (an FFmpeg or HTTP error) of the raw URL and of any ``user:password@`` in it."""
    if url:
        text = text.replace(url, redact_url(url))
    return _USERINFO_RE.sub(r"\g<scheme>\g<user>:***@", text)
