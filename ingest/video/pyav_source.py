"""Sources decoded by FFmpeg through PyAV: RTSP/RTSPS (TCP or UDP), RTMP, HLS and other HTTP streams, files.

PyAV releases the GIL while demuxing, decoding and scaling, so one thread per camera scales across
cores. Open options are tuned for a fast first frame: FFmpeg's defaults probe up to 5 s of stream
before returning, while an RTSP camera announces its codec in the SDP. ``fflags nobuffer`` is
deliberately *not* set: it discards the packets read while probing — which hold the first keyframe —
so the first picture would wait a whole GOP (2–4 s on typical cameras) longer.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote, urlsplit

import av
import av.bitstream
import av.error

from ingest.video.errors import SourceError, SourceUnavailableError, UnsupportedSourceError
from ingest.video.packets import ANNEXB_FILTERS, PacketRing, StreamFormat, StreamPacket
from ingest.video.picture import Picture
from ingest.video.source import Source, SourceContext, StreamInfo
from ingest.video.urls import redact_text, url_scheme

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_DECODE_ERRORS = 50


def _us(seconds: float) -> str:
    return str(int(seconds * 1_000_000))


def ffmpeg_options(url: str, ctx: SourceContext) -> dict[str, str]:
    """FFmpeg demuxer/protocol options for a source URL (low-latency open, timeouts, protocol limits)."""
    scheme = url_scheme(url)
    src = ctx.source
    opts: dict[str, str] = {"probesize": "500000", "analyzeduration": "1000000"}
    if scheme in ("rtsp", "rtsps"):
        # The SDP names the codec (and usually carries SPS/PPS): probing past the first keyframe only
        # costs time — 1 s at FFmpeg's defaults vs 0.08 s with these (measured on the test server).
        opts.update(
            probesize="32768",
            analyzeduration="500000",
            rtsp_transport=src.transport,
            rtsp_flags="prefer_tcp" if src.transport == "udp" else "",
            timeout=_us(src.read_timeout_s),  # socket I/O timeout of the RTSP connection
            max_delay="500000",
            reorder_queue_size="64" if src.transport == "udp" else "0",
        )
        opts = {k: v for k, v in opts.items() if v != ""}
        if src.transport == "udp":
            opts["buffer_size"] = str(4 * 1024 * 1024)
    elif scheme in ("http", "https"):
        opts.update(
            rw_timeout=_us(src.read_timeout_s),
            # An HLS playlist must not make FFmpeg read local files or speak other protocols.
            protocol_whitelist="http,https,tcp,tls,crypto,hls",
            user_agent="GridWatch",
        )
    elif scheme in ("rtmp", "rtmps"):
        opts.update(rw_timeout=_us(src.read_timeout_s))
    elif scheme == "file":
        opts["protocol_whitelist"] = "file"
    return opts


def local_path(url: str, base_dir: Path) -> Path:
    """The file a ``file:`` URL or plain path names, relative paths taken from the deployment's folder."""
    if url_scheme(url) == "file" and url.lower().startswith("file:"):
        parts = urlsplit(url)
        text = unquote(parts.path if parts.netloc in ("", "localhost") else f"//{parts.netloc}{parts.path}")
        if not parts.path and not parts.netloc:
            text = unquote(url[5:])
    else:
        text = url
    path = Path(text).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


class PyAVSource(Source):
    """RTSP, RTMP, HLS/HTTP streams and local files, demuxed and decoded by PyAV.

    Files are looped and paced at their native frame rate so they behave like a live camera; network
    streams are paced too when they arrive faster than real time (an HLS VOD playlist).
    """

    def __init__(self, url: str, ctx: SourceContext):
        super().__init__(url, ctx)
        self.scheme = url_scheme(url)
        self.is_file = self.scheme == "file"
        self.kind = {"rtsp": "rtsp", "rtsps": "rtsp", "rtmp": "rtmp", "rtmps": "rtmp", "file": "file"}.get(
            self.scheme, "hls" if ".m3u8" in url.lower() else "http-stream"
        )
        self.live = not self.is_file
        self._container: av.container.InputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._offset = 0.0  # stream-time offset added at each loop of a file
        self._last_pts = 0.0
        self.packets = PacketRing()  # the camera's own packets, for evidence clips (ingest.video.packets)
        self._annexb: av.bitstream.BitStreamFilterContext | None = None

    def _target(self) -> str:
        if self.is_file:
            path = local_path(self.url, self.ctx.base_dir)
            if not path.is_file():
                raise SourceUnavailableError(f"file not found: {path}")
            return str(path)
        return self.url

    def _error(self, exc: BaseException, doing: str, elapsed_s: float | None = None,
               limit_s: float | None = None) -> SourceError:
        """A readable, redacted reason from an FFmpeg error (which would otherwise embed the full URL)."""
        detail = getattr(exc, "strerror", None) or str(exc)
        if elapsed_s is not None and limit_s is not None and elapsed_s >= limit_s * 0.9:
            text = f"{doing}: no usable answer within {limit_s:g}s (timed out; last error: {detail})"
        elif isinstance(exc, (av.error.ExitError, TimeoutError)) or "Immediate exit" in detail:
            text = f"{doing}: timed out"
        elif isinstance(exc, av.error.InvalidDataError):
            text = f"{doing}: the peer sent data FFmpeg cannot parse as a stream ({detail})"
        else:
            text = f"{doing}: {detail}"
        return SourceError(redact_text(text, self.url))

    def open(self) -> StreamInfo:
        target = self._target()
        src = self.ctx.source
        started = time.monotonic()
        try:
            self._container = av.open(
                target,
                options=ffmpeg_options(self.url, self.ctx),
                timeout=(src.open_timeout_s, src.read_timeout_s),
            )
        except (av.error.FFmpegError, OSError) as exc:  # PyAV maps some FFmpeg errors to OSError subclasses
            raise self._error(exc, "cannot open stream", time.monotonic() - started, src.open_timeout_s) from None
        streams = self._container.streams.video
        if not streams:
            found = ", ".join(f"{s.type} {getattr(s.codec_context, 'name', '?')}" for s in self._container.streams) or "none"
            self.close()
            raise UnsupportedSourceError(f"no video stream in source (streams: {found})")
        stream = streams[0]
        ctx = stream.codec_context
        if ctx is None or not getattr(ctx, "name", None):
            self.close()
            raise UnsupportedSourceError("the video codec of this stream has no decoder in GridWatch's FFmpeg")
        if self.ctx.analysis.keyframes_only:
            ctx.skip_frame = "NONKEY"
        stream.thread_type = "SLICE"  # frame threading adds a frame of latency per thread
        self._stream = stream
        self._start_packets(stream)
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        if fps is not None and not (0.5 <= fps <= 240):
            fps = None
        return StreamInfo(codec=ctx.name, width=ctx.width or None, height=ctx.height or None, fps=fps, kind=self.kind)

    def _start_packets(self, stream: av.video.stream.VideoStream) -> None:
        """A new connection for the packet ring: its format, and the filter that makes its packets Annex B."""
        ctx = stream.codec_context
        name = ANNEXB_FILTERS.get(ctx.name)
        self._annexb = None
        if name is None or not ctx.width or not ctx.height:
            self.packets.restart(None)  # no MP4 clip from these packets: clips are encoded from frames
            return
        extradata = bytes(ctx.extradata or b"")
        annexb = extradata if extradata.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")) else b""
        try:
            self._annexb = av.bitstream.BitStreamFilterContext(name, stream)
        except (av.error.FFmpegError, ValueError) as exc:
            log.debug("%s: no %s filter (%s); clips will be encoded", self.kind, name, exc)
            self.packets.restart(None)
            return
        self.packets.restart(StreamFormat(ctx.name, int(ctx.width), int(ctx.height), annexb))

    def _keep_packet(self, packet: av.Packet, time_base: Fraction | None) -> None:
        """Offer a demuxed (and already decoded) packet to the ring, as Annex B, with times in seconds."""
        if self._annexb is None or time_base is None or (packet.pts is None and packet.dts is None):
            return
        pts = packet.pts if packet.pts is not None else packet.dts
        dts = packet.dts if packet.dts is not None else packet.pts
        key, at = bool(packet.is_keyframe), time.time()
        try:
            filtered = self._annexb.filter(packet)
        except av.error.FFmpegError:
            return  # a packet the filter cannot parse is no use to a clip either
        for out in filtered:
            self.packets.add(StreamPacket(bytes(out), float(pts * time_base) + self._offset,
                                          float(dts * time_base) + self._offset, key, at))

    def _seek_start(self) -> None:
        assert self._container is not None and self._stream is not None
        try:
            self._container.seek(0, stream=self._stream)
        except av.error.FFmpegError:
            # Some containers cannot seek; reopening is always possible for files.
            self.close()
            self.open()

    def frames(self) -> Iterator[Picture]:
        assert self._container is not None and self._stream is not None
        stop = self.ctx.stop
        fps_guess = float(self._stream.average_rate or self._stream.guessed_rate or 25)
        frame_dur = 1.0 / fps_guess if fps_guess > 0 else 0.04
        pace = self.ctx.realtime and self.kind in ("file", "hls", "http-stream")
        wall0: float | None = None
        stream_t0 = 0.0
        decode_errors = 0
        produced_this_pass = 0
        while not stop.is_set():
            container, stream = self._container, self._stream
            if container is None or stream is None:
                return
            try:
                for packet in container.demux(stream):
                    if stop.is_set():
                        return
                    if packet.size == 0 and packet.dts is None:
                        continue  # the flush packet at EOF
                    try:
                        decoded = packet.decode()
                        decode_errors = 0
                    except av.error.FFmpegError as exc:
                        decode_errors += 1  # one corrupt packet (lost RTP, mid-GOP start) is normal
                        if decode_errors >= MAX_CONSECUTIVE_DECODE_ERRORS:
                            raise self._error(exc, f"{decode_errors} consecutive undecodable packets") from None
                        continue
                    if self.packets.wanted:
                        self._keep_packet(packet, stream.time_base)
                    for frame in decoded:
                        t = frame.time
                        t = self._last_pts + frame_dur if t is None else float(t) + self._offset
                        if t <= self._last_pts and produced_this_pass:
                            t = self._last_pts + frame_dur * 0.5  # keep stream time monotonic
                        self._last_pts = t
                        produced_this_pass += 1
                        if pace:
                            now = time.monotonic()
                            behind = wall0 is None or (t - stream_t0) < (now - wall0) - 2.0
                            if behind or (t - stream_t0) - (now - wall0) > 5.0:
                                wall0, stream_t0 = now, t  # (re)anchor: never burst, never wait on a pts jump
                            ahead = (t - stream_t0) - (time.monotonic() - wall0)
                            while ahead > 0.002:
                                if stop.wait(min(ahead, 0.5)):
                                    return
                                ahead = (t - stream_t0) - (time.monotonic() - wall0)
                        yield Picture(pts=t, av_frame=frame, key_frame=bool(frame.key_frame))
            except SourceError:
                raise
            except av.error.EOFError:
                pass
            except (av.error.FFmpegError, OSError) as exc:
                raise self._error(exc, "stream failed") from None
            if not self.is_file:
                return  # end of a network stream: the worker reconnects
            if produced_this_pass == 0:
                raise UnsupportedSourceError("the file holds no decodable video frame")
            # The next pass restarts near the stream's start time: shift it to just after the last picture.
            start = stream.start_time
            start_s = float(start * stream.time_base) if start is not None and stream.time_base else 0.0
            self._offset = self._last_pts + frame_dur - start_s
            produced_this_pass = 0
            self._seek_start()

    def close(self) -> None:
        container, self._container, self._stream = self._container, None, None
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail; nothing to do
                log.debug("closing %s failed", self.kind, exc_info=True)

