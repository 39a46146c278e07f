"""WebRTC/WHIP ingest: an aiortc publisher sends real footage; frames reach the same sink."""
from __future__ import annotations

import asyncio

import pytest

from ingest.video import InvalidSourceError, UnknownCameraError, WhipIngest
from tests.fixtures.cameras import Recorder, camera
from tests.fixtures.media import short_clip


@pytest.mark.timeout(90)
def test_whip_publisher_frames_reach_the_sink(make_manager, recorder: Recorder, tmp_path) -> None:  # noqa: ANN001
    from aiortc import RTCPeerConnection
    from aiortc.contrib.media import MediaPlayer

    clip = short_clip("fall_indoor_office_urfd.mp4", 5.0, tmp_path / "office.mp4", 320, 240, 15)
    manager = make_manager()
    manager.start([camera("phone", "whip:"), camera("cam", "synthetic:walker")])
    ingest = WhipIngest(manager)

    async def publish() -> None:
        player = MediaPlayer(str(clip), loop=True)
        pc = RTCPeerConnection()
        pc.addTrack(player.video)
        await pc.setLocalDescription(await pc.createOffer())
        with pytest.raises(InvalidSourceError, match="not a whip"):
            await ingest.offer("cam", pc.localDescription.sdp)
        with pytest.raises(UnknownCameraError):
            await ingest.offer("ghost", pc.localDescription.sdp)
        with pytest.raises(InvalidSourceError, match="SDP"):
            await ingest.offer("phone", "GET / HTTP/1.1")
        answer = await ingest.offer("phone", pc.localDescription.sdp)
        assert answer.startswith("v=0") and "a=recvonly" in answer
        from aiortc import RTCSessionDescription
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        assert ingest.active == ["phone"]
        await asyncio.to_thread(recorder.wait_frames, "phone", 5, 30)
        await pc.close()
        player.video.stop()
        await ingest.aclose()

    asyncio.run(publish())
    frames = recorder.frames["phone"]
    assert (frames[-1].width, frames[-1].height) == (320, 240)
    assert frames[-1].image.std() > 10  # real picture content survived VP8 encode/decode
    assert manager.status()["phone"].kind == "whip"
    assert recorder.count("cam") > 0

