"""The SSRF guard and credential redaction (pure functions; no network beyond local DNS)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.video import InvalidSourceError, redact_url, validate_source_url
from ingest.video.urls import redact_text, url_scheme

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("url", [
    "rtsp://8.8.8.8:554/stream1",
    "rtsp://admin:secret@1.1.1.1/Streaming/Channels/102",
    "http://[2001:4860:4860::8888]/video.mjpg",
    "https://1.1.1.1/live/index.m3u8",
    "rtmp://8.8.4.4/live/cam",
    "footage:plaza_pedestrians_720p.avi",
    "synthetic:crowd",
    "synthetic:traffic?w=1280&h=720",
    "whip:",
])
def test_public_and_local_sources_pass(url: str) -> None:
    assert validate_source_url(url, allow_private=False) == url


@pytest.mark.parametrize("url, why", [
    ("rtsp://10.1.2.3/cam", "private"),
    ("rtsp://192.168.1.64:554/h264", "private"),
    ("rtsp://172.16.0.9/cam", "private"),
    ("http://[fc00::1]/cam", "private"),
    ("http://100.64.0.1/", "non-public"),               # carrier-grade NAT
])
def test_private_hosts_refused_unless_allowed(url: str, why: str) -> None:
    with pytest.raises(InvalidSourceError, match=why):
        validate_source_url(url, allow_private=False)
    assert validate_source_url(url, allow_private=True) == url   # the deprecated flag: every private range


@pytest.mark.parametrize("url, why", [
    ("rtsp://127.0.0.1:8554/cam", "loopback"),
    ("rtsp://localhost/cam", "loopback"),               # a DNS name, resolved and checked
    ("http://2130706433/x.jpg", "loopback"),            # 127.0.0.1 as an integer
    ("http://0x7f.1/x.jpg", "loopback"),                # hex/short form inet_aton accepts
    ("http://[::1]/x.jpg", "loopback"),
    ("http://[::ffff:127.0.0.1]/x.jpg", "loopback"),    # IPv4-mapped IPv6
    ("http://169.254.10.10/", "link-local"),
    ("http://0.0.0.0:8080/", "unspecified"),
])
def test_loopback_link_local_unspecified_refused_even_when_private_allowed(url: str, why: str, monkeypatch) -> None:
    monkeypatch.delenv("GRIDWATCH_TEST_ONLY_LOOPBACK_CAMERAS", raising=False)
    for allow in (False, True):
        with pytest.raises(InvalidSourceError, match=why):
            validate_source_url(url, allow_private=allow)


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://100.100.100.200/latest/meta-data/",          # Alibaba Cloud
    "http://[::ffff:169.254.169.254]/",
])
def test_cloud_metadata_refused_even_when_private_allowed(url: str) -> None:
    for allow in (False, True):
        with pytest.raises(InvalidSourceError, match="metadata"):
            validate_source_url(url, allow_private=allow)


@pytest.mark.parametrize("url, match", [
    ("gopher://8.8.8.8/", "unsupported source scheme"),
    ("ftp://8.8.8.8/cam.mp4", "unsupported source scheme"),
    ("javascript:alert(1)", "unsupported source scheme"),
    ("", "empty"),
    ("rtsp://", "no host"),
    ("rtsp://8.8.8.8/a b", "whitespace"),
    ("http://8.8.8.8\\@127.0.0.1/", "backslash"),
    ("http://a@b@8.8.8.8/", "more than one '@'"),
    ("footage:../../etc/passwd", "plain file name"),
    ("synthetic:../x", "scene name"),
    ("rtsp://no-such-host.invalid/cam", "cannot resolve"),
])
def test_malformed_urls_refused(url: str, match: str) -> None:
    with pytest.raises(InvalidSourceError, match=match):
        validate_source_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["/etc/passwd", "file:///var/video/cam.mp4", "clips/cam.mp4"])
def test_local_files_need_private_permission(url: str) -> None:
    assert url_scheme(url) == "file"
    with pytest.raises(InvalidSourceError, match="local files"):
        validate_source_url(url, allow_private=False)
    assert validate_source_url(url, allow_private=True) == url


def test_redaction_removes_passwords_and_secret_query_values() -> None:
    assert redact_url("rtsp://admin:Hik12345@10.0.0.5:554/ch1") == "rtsp://admin:***@10.0.0.5:554/ch1"
    assert redact_url("http://cam/snap.jpg?user=admin&password=x1&token=abc&res=hd") == (
        "http://cam/snap.jpg?user=admin&password=***&token=***&res=hd"
    )
    assert redact_url("rtsp://10.0.0.5/ch1") == "rtsp://10.0.0.5/ch1"
    text = redact_text("Connection refused: rtsp://u:p4ss@h/x and rtsps://a:b@c/d", None)
    assert "p4ss" not in text and ":b@" not in text


@given(
    user=st.text(alphabet=st.characters(min_codepoint=48, max_codepoint=122, blacklist_characters="@:/?#[]\\"), min_size=1, max_size=12),
    password=st.text(alphabet=st.characters(min_codepoint=48, max_codepoint=122, blacklist_characters="@:/?#[]\\%"), min_size=4, max_size=16),
)
def test_redacted_url_never_contains_the_password(user: str, password: str) -> None:
    url = f"rtsp://{user}:{password}@192.0.2.1:554/live"
    red = redact_url(url)
    assert f":{password}@" not in red
    assert "***" in red
