"""HTTP cameras: MJPEG (multipart/x-mixed-replace), JPEG snapshot polling, and HLS/other streams via PyAV.

Which of these a URL is can only be told from the answer, so ``open`` sends one GET and looks at
the Content-Type. Redirects are followed by hand so that every hop passes the SSRF guard, and
Digest authentication (common on IP cameras) is tried when Basic is refused. The MJPEG parser is
written here rather than taken from a form-data library because cameras bend the multipart rules
(boundary with or without the leading ``--``, missing Content-Length, no closing boundary).

Why not PyAV's ``mpjpeg`` demuxer (measured, PyAV 18.1 / FFmpeg 8.1, 2026-12-01): fed the guarded httpx
stream as a file object it never sees the HTTP Content-Type, so without a per-part Content-Length it
splits at any ``\r\n--`` instead of the declared boundary: a JPEG body holding those four bytes came back
cut in two and the stream then failed with "Invalid data found when processing input"
(``tests/ingest_video/test_video_http.py::test_mjpeg_parser_keeps_a_body_that_holds_dashes``). Letting
FFmpeg fetch the URL itself would bypass the per-redirect SSRF guard and the Digest retry above.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import httpx

from ingest.video.errors import SourceError, UnsupportedSourceError
from ingest.video.picture import Picture
from ingest.video.pyav_source import PyAVSource
from ingest.video.source import Source, SourceContext, StreamInfo
from ingest.video.urls import redact_text, redact_url, validate_source_url

log = logging.getLogger(__name__)

MAX_PART_BYTES = 16 * 1024 * 1024
MAX_REDIRECTS = 5
_BOUNDARY_RE = re.compile(r'boundary="?([^";,]+)"?', re.I)


def _split_credentials(url: str) -> tuple[str, httpx.Auth | None, tuple[str, str] | None]:
    parts = urlsplit(url)
    if parts.username is None:
        return url, None, None
    user, password = unquote(parts.username), unquote(parts.password or "")
    netloc = parts.netloc.rpartition("@")[2]
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, httpx.BasicAuth(user, password), (user, password)


class MjpegParser:
    """Incremental multipart parser: feed bytes, get complete part bodies (JPEG images) back."""

    def __init__(self, boundary: str):
        boundary = boundary.strip()
        if boundary.startswith("--"):
            boundary = boundary[2:]  # some cameras put the dashes in the header too
        self.delimiter = b"--" + boundary.encode("latin-1")
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the bodies of the parts completed by them."""
        self.buffer += data
        parts: list[bytes] = []
        while True:
            body = self._next_part()
            if body is None:
                break
            parts.append(body)
        if len(self.buffer) > MAX_PART_BYTES:
            raise SourceError(f"MJPEG part larger than {MAX_PART_BYTES} bytes, or no multipart boundary in the stream")
        return parts

    def _next_part(self) -> bytes | None:
        buf = self.buffer
        start = buf.find(self.delimiter)
        if start < 0:
            return None
        header_start = start + len(self.delimiter)
        # headers end at the first blank line (CRLF CRLF; bare LF tolerated)
        end_crlf = buf.find(b"\r\n\r\n", header_start)
        end_lf = buf.find(b"\n\n", header_start)
        candidates = [(e, 4) for e in (end_crlf,) if e >= 0] + [(e, 2) for e in (end_lf,) if e >= 0]
        if not candidates:
            return None
        header_end, sep = min(candidates)
        headers = bytes(buf[header_start:header_end]).decode("latin-1", "replace")
        body_start = header_end + sep
        length = None
        for line in headers.splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    length = None
        if length is not None and 0 <= length <= MAX_PART_BYTES:
            if len(buf) < body_start + length:
                return None
            body = bytes(buf[body_start : body_start + length])
            del buf[: body_start + length]
            return body
        nxt = buf.find(self.delimiter, body_start)
        if nxt < 0:
            return None
        body = bytes(buf[body_start:nxt]).rstrip(b"\r\n")
        del buf[:nxt]
        return body


class HttpSource(Source):
    """An ``http(s)://`` camera: MJPEG, snapshot polling or (delegated to PyAV) HLS and other streams."""

    kind = "http"

    def __init__(self, url: str, ctx: SourceContext):
        super().__init__(url, ctx)
        self._client: httpx.Client | None = None
        self._response: httpx.Response | None = None
        self._inner: PyAVSource | None = None
        self._mode = "unknown"
        self._boundary = ""
        self._first: bytes | None = None
        self._final_url = url
        self._auth: httpx.Auth | None = None

    def _get(self, url: str, *, stream: bool) -> httpx.Response:
        """GET with manual, guarded redirects and a Digest retry; the caller closes the response."""
        assert self._client is not None
        for _ in range(MAX_REDIRECTS + 1):
            bare, basic, creds = _split_credentials(url)
            auth = self._auth or basic
            request = self._client.build_request("GET", bare)
            response = self._client.send(request, auth=auth, stream=True)
            if response.status_code == 401 and creds and "digest" in response.headers.get("www-authenticate", "").lower():
                response.close()
                self._auth = httpx.DigestAuth(*creds)
                response = self._client.send(self._client.build_request("GET", bare), auth=self._auth, stream=True)
            if response.is_redirect:
                location = response.headers.get("location", "")
                response.close()
                url = validate_source_url(urljoin(url, location), allow_private=self.ctx.allow_private)
                continue
            if response.status_code >= 400:
                response.close()
                raise SourceError(f"HTTP {response.status_code} {response.reason_phrase} from {redact_url(url)}")
            self._final_url = url
            if not stream:
                response.read()
            return response
        raise SourceError(f"more than {MAX_REDIRECTS} redirects from {redact_url(self.url)}")

    def open(self) -> StreamInfo:
        src = self.ctx.source
        if ".m3u8" in urlsplit(self.url).path.lower():
            return self._delegate(self.url)
        self._client = httpx.Client(
            timeout=httpx.Timeout(src.open_timeout_s, read=src.read_timeout_s),
            follow_redirects=False,
            headers={"User-Agent": "GridWatch"},
        )
        try:
            response = self._get(self.url, stream=True)
        except httpx.HTTPError as exc:
            self.close()
            raise SourceError(redact_text(f"cannot connect: {type(exc).__name__}: {exc}", self.url)) from None
        except SourceError:
            self.close()
            raise
        ctype = response.headers.get("content-type", "").lower()
        if ctype.startswith("multipart/"):
            match = _BOUNDARY_RE.search(response.headers.get("content-type", ""))
            if not match:
                response.close()
                self.close()
                raise UnsupportedSourceError("multipart answer without a boundary parameter")
            self._mode, self._boundary, self._response = "mjpeg", match.group(1), response
            self.kind = "mjpeg"
            return StreamInfo(codec="mjpeg", kind="mjpeg")
        if ctype.startswith("image/"):
            try:
                self._first = response.read()
            except httpx.HTTPError as exc:
                raise SourceError(redact_text(f"snapshot read failed: {exc}", self.url)) from None
            finally:
                response.close()
            self._mode, self.kind = "snapshot", "snapshot"
            return StreamInfo(codec=ctype.split(";")[0].split("/", 1)[1], kind="snapshot")
        response.close()
        if ctype.startswith(("text/html", "text/plain", "application/json")):
            self.close()
            raise UnsupportedSourceError(f"the URL answers {ctype.split(';')[0]}, not a video stream or image")
        final = self._final_url
        self._close_http()
        return self._delegate(final)  # HLS (mpegurl), MPEG-TS, FLV …: let FFmpeg try

    def _delegate(self, url: str) -> StreamInfo:
        self._inner = PyAVSource(url, self.ctx)
        self._mode = "pyav"
        info = self._inner.open()
        self.kind = self._inner.kind
        return info

    def frames(self) -> Iterator[Picture]:
        if self._mode == "pyav":
            assert self._inner is not None
            yield from self._inner.frames()
        elif self._mode == "mjpeg":
            yield from self._mjpeg_frames()
        elif self._mode == "snapshot":
            yield from self._snapshot_frames()

    def _mjpeg_frames(self) -> Iterator[Picture]:
        assert self._response is not None
        parser = MjpegParser(self._boundary)
        t0 = time.monotonic()
        try:
            for chunk in self._response.iter_raw(65536):
                if self.ctx.stop.is_set():
                    return
                for body in parser.feed(chunk):
                    if body[:2] != b"\xff\xd8":
                        continue  # not a JPEG part (some cameras interleave text parts)
                    yield Picture(pts=time.monotonic() - t0, jpeg=body, key_frame=True)
        except httpx.HTTPError as exc:
            raise SourceError(redact_text(f"MJPEG stream failed: {type(exc).__name__}: {exc}", self.url)) from None

    def _snapshot_frames(self) -> Iterator[Picture]:
        interval = self.ctx.source.snapshot_interval_s
        t0 = time.monotonic()
        body = self._first
        next_at = t0
        while not self.ctx.stop.is_set():
            if body:
                yield Picture(pts=time.monotonic() - t0, jpeg=body, key_frame=True)
            next_at = max(next_at + interval, time.monotonic())
            if self.ctx.stop.wait(max(0.0, next_at - time.monotonic())):
                return
            try:
                response = self._get(self._final_url, stream=False)
                body = response.content
                response.close()
            except httpx.HTTPError as exc:
                raise SourceError(redact_text(f"snapshot request failed: {type(exc).__name__}: {exc}", self.url)) from None

    def _close_http(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            try:
                response.close()
            except Exception:  # noqa: BLE001
                pass
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def close(self) -> None:
        self._close_http()
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()
