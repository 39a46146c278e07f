"""URL hygiene for camera sources: the SSRF guard and credential redaction.

Camera URLs arrive over the REST API from integrators, so GridWatch would otherwise fetch any URL
an attacker names from inside the command-centre network: the cloud metadata service, the Redis on
localhost, an intranet admin page. ``validate_source_url`` refuses such targets unless the deployment
explicitly allows private sources (test rigs, NVRs on the LAN). Credentials embedded in camera URLs
(``rtsp://admin:pass@…`` is how most cameras are addressed) must never reach logs, status pages or
API answers, hence ``redact_url``/``redact_text``.
"""
from __future__ import annotations

import ipaddress
import re
import socket
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


def validate_source_url(url: str, *, allow_private: bool) -> str:
    """Check a camera URL before GridWatch connects to it; return it (stripped) or raise InvalidSourceError.

    Accepted: ``rtsp(s)://``, ``rtmp(s)://``, ``http(s)://`` to public hosts; ``footage:NAME``,
    ``synthetic:SCENE``, ``whip:`` and schemes registered by source plugins. Local files (``file:`` or a
    plain path) and loopback/link-local/private/non-public hosts need ``allow_private``. Host names are
    resolved and *every* address is checked, so a name pointing inside the network is refused too.
    Cloud metadata hosts are refused always. The check runs again before every reconnect, which
    narrows (but cannot close) the DNS-rebinding window; see docs/INTEGRATORS-video.md.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidSourceError("empty source URL")
    url = url.strip()
    if len(url) > 4096:
        raise InvalidSourceError("source URL longer than 4096 characters")
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in url) or " " in url:
        raise InvalidSourceError("source URL contains whitespace, control characters or backslashes")
    scheme = url_scheme(url)
    if scheme == "file":
        if not allow_private:
            raise InvalidSourceError("local files are refused as sources unless ingest.allow_private_sources is set")
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
        why = _refusal(address)
        if why and not allow_private:
            shown = host if host == str(address) else f"{host} ({address})"
            raise InvalidSourceError(
                f"host {shown} is a {why} address; set ingest.allow_private_sources to allow it"
            )
    return url


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
