"""The camera's own compressed packets, kept for evidence clips: a short ring per source, and a remux to MP4.

Why: Frigate records the camera's stream rather than re-encoding what it decoded. An evidence clip cut from the
camera's H.264/H.265 packets costs a copy instead of an encode (no libx264 on the analysis host's cores), keeps the
camera's full resolution and quality, and is the picture the camera really sent. The decoder thread
(``PyAVSource``) offers every demuxed packet; the ring keeps them only once an evidence recorder has asked for
``keep(seconds)``, back to the keyframe before that window, so a clip can start on a keyframe ``pre_s`` before
an event. Sources without packets (synthetic, MJPEG, HTTP snapshots, WHIP) have no ring and their clips are
encoded from decoded frames as before (``detectors.evidence``).

Packets are stored in Annex B form with the parameter sets in front of each keyframe (``*_mp4toannexb``), so a
clip needs no codec extradata from a stream that may have been closed meanwhile: the MP4 muxer builds its
``avcC``/``hvcC`` from the first keyframe.
"""
from __future__ import annotations

import io
import re
import threading
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

ANNEXB_FILTERS = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}
MAX_RING_BYTES = 48 * 1024 * 1024  # a camera whose keyframes never come cannot grow the ring past this
MP4_TIME_BASE = Fraction(1, 90000)
_H264_SPS = re.compile(rb"\x00\x00\x01[\x27\x47\x67]")


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """What an MP4 of this stream's packets needs to know (the parameter sets travel in the keyframes)."""

    codec: str  # "h264" | "hevc"
    width: int
    height: int
    extradata: bytes = b""  # Annex B parameter sets, put in front of a keyframe that lacks them


@dataclass(frozen=True, slots=True)
class StreamPacket:
    """One compressed packet: its bytes, its stream times (seconds, monotonic per camera) and when it arrived."""

    data: bytes
    pts: float
    dts: float
    key: bool
    at: float  # wall clock (time.time()) when it was demuxed, comparable to Frame.captured_at


@dataclass(frozen=True, slots=True)
class PacketWindow:
    """Packets from a keyframe on, of one connection (``generation``), with the last one's sequence number."""

    fmt: StreamFormat
    generation: int
    packets: list[StreamPacket]
    last_seq: int


class PacketRing:
    """The last ``keep_s`` seconds of one camera's packets (plus back to a keyframe); thread-safe.

    The decoder thread calls ``restart`` on each (re)connect and ``add`` per packet; recorders call ``keep``,
    ``window`` and ``after``. A reconnect starts a new generation: a clip collecting across it ends there.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._packets: deque[tuple[int, StreamPacket]] = deque()
        self._keys: deque[tuple[int, float]] = deque()  # (seq, at) of the keyframes in the ring
        self._bytes = 0
        self._seq = 0
        self._keep_s = 0.0
        self._fmt: StreamFormat | None = None
        self.generation = 0
        self.dropped = 0  # packets refused because the ring was at MAX_RING_BYTES without a keyframe to cut at

    @property
    def wanted(self) -> bool:
        """Whether anyone asked for packets (a source skips the copy otherwise)."""
        return self._keep_s > 0 and self._fmt is not None

    @property
    def fmt(self) -> StreamFormat | None:
        return self._fmt

    @property
    def ready(self) -> bool:
        """Whether a clip can be cut now (a keyframe is in the ring)."""
        return self._fmt is not None and bool(self._keys)

    def keep(self, seconds: float) -> None:
        """Keep at least ``seconds`` of packets from now on (the largest request wins)."""
        with self._lock:
            self._keep_s = max(self._keep_s, float(seconds))

    def restart(self, fmt: StreamFormat | None) -> None:
        """A new connection: forget the old packets; ``fmt`` None for a codec no MP4 clip can carry."""
        with self._lock:
            self._packets.clear()
            self._keys.clear()
            self._bytes = 0
            self._fmt = fmt
            self.generation += 1

    def add(self, packet: StreamPacket) -> None:
        with self._lock:
            if self._fmt is None or self._keep_s <= 0:
                return
            if not self._packets and not packet.key:
                return  # a window must start on a keyframe
            if not packet.key and self._bytes + len(packet.data) > MAX_RING_BYTES and len(self._keys) < 2:
                self.dropped += 1  # one GOP larger than the cap: keep what there is until the next keyframe
                return
            if self._fmt.extradata and packet.key and self._fmt.codec == "h264" and not _H264_SPS.search(packet.data[:512]):
                packet = StreamPacket(self._fmt.extradata + packet.data, packet.pts, packet.dts, True, packet.at)
            self._seq += 1
            self._packets.append((self._seq, packet))
            self._bytes += len(packet.data)
            if packet.key:
                self._keys.append((self._seq, packet.at))
            self._trim(packet.at - self._keep_s)

    def _trim(self, cutoff: float) -> None:
        """Drop whole GOPs older than ``cutoff``: the oldest packet kept is a keyframe at or before it."""
        keys, packets = self._keys, self._packets
        while len(keys) >= 2 and (keys[1][1] <= cutoff or self._bytes > MAX_RING_BYTES):
            keys.popleft()
            while packets and packets[0][0] < keys[0][0]:
                self._bytes -= len(packets.popleft()[1].data)

    def window(self, start_at: float, end_at: float) -> PacketWindow | None:
        """Packets from the last keyframe at or before ``start_at`` (else the oldest) up to ``end_at``; None if none."""
        with self._lock:
            if self._fmt is None or not self._packets:
                return None
            items = list(self._packets)
            first = 0
            for i, (_, p) in enumerate(items):
                if p.at > start_at:
                    break
                if p.key:
                    first = i
            chosen = [(s, p) for s, p in items[first:] if p.at <= end_at]
            if not chosen:
                return None
            return PacketWindow(self._fmt, self.generation, [p for _, p in chosen], chosen[-1][0])

    def after(self, seq: int, generation: int) -> tuple[list[StreamPacket], int] | None:
        """Packets newer than ``seq`` and the new last sequence number; None when the connection changed since."""
        with self._lock:
            if generation != self.generation:
                return None
            new = [(s, p) for s, p in self._packets if s > seq]
            return [p for _, p in new], (new[-1][0] if new else seq)


def remux_mp4(fmt: StreamFormat, packets: list[StreamPacket]) -> bytes:
    """An MP4 of ``packets`` (starting on a keyframe) without decoding or encoding anything. ValueError if empty."""
    import av

    if not packets or not packets[0].key:
        raise ValueError("a clip must start on a keyframe")
    buf = io.BytesIO()
    base = min(p.dts for p in packets[:8])
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_mux_stream(fmt.codec, width=fmt.width, height=fmt.height)
        stream.time_base = MP4_TIME_BASE
        last_dts = -1
        for p in packets:
            packet = av.Packet(p.data)
            packet.stream = stream
            packet.time_base = MP4_TIME_BASE
            dts = max(last_dts + 1, round((p.dts - base) * 90000))
            packet.dts, packet.pts = dts, max(dts, round((p.pts - base) * 90000))
            packet.is_keyframe = p.key
            last_dts = dts
            out.mux(packet)
    return buf.getvalue()
