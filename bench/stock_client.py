"""The stock baseline: a plain aiortc client with aiortc's and sounddevice's defaults (bench only).

`python bench/stock_client.py BASE_URL SECONDS`: mints a key (aiohttp), offers aiortc's own
`AudioStreamTrack` (silence) with the `oai-events` channel, posts the SDP to /calls, and plays
the answer's audio with a plain sounddevice OutputStream on the default device (the PulseAudio
sink rtc-voice plays into), writing each decoded frame as it comes, the way Semantic Kernel's
aiortc sample does. Default jitter buffer, default stream latency; the only change is gathering
ICE candidates on 127.0.0.1 so nothing leaves this machine. (aiortc's MediaRecorder cannot be
used here: PyAV's wheel bundles an ALSA without the PulseAudio plugin.)

`--until-session-created` (bench_connect.py): the same steps, but the client prints one JSON line
on stdout when `session.created` arrives on `oai-events`, with the wall-clock times
(`time.time()`) its key request started and ended, and exits at once (SECONDS is ignored).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp
import aioice.ice
import sounddevice
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError


async def play(track: MediaStreamTrack, stream: sounddevice.OutputStream) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels))  # type: ignore[attr-defined]
        await loop.run_in_executor(None, stream.write, pcm)


async def main(base_url: str, seconds: float, until_session_created: bool = False) -> int:
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(AudioStreamTrack())
    channel = pc.createDataChannel("oai-events")
    remote = asyncio.get_running_loop().create_future()
    created = asyncio.get_running_loop().create_future()
    times: dict[str, float] = {}

    if until_session_created:  # the default run parses no events (bench_cpu measures it)

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            if json.loads(message).get("type") == "session.created" and not created.done():
                created.set_result(time.time())

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if not remote.done():
            remote.set_result(track)

    async with aiohttp.ClientSession() as http:
        auth = {"Authorization": "Bearer sk-bench-stock"}
        body = {"session": {"type": "realtime"}}
        times["mint_start"] = time.time()
        async with http.post(
            f"{base_url}/realtime/client_secrets", json=body, headers=auth
        ) as response:
            key = (await response.json())["value"]
        times["mint_end"] = time.time()
        await pc.setLocalDescription(await pc.createOffer())
        async with http.post(
            f"{base_url}/realtime/calls",
            data=pc.localDescription.sdp,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/sdp"},
        ) as response:
            answer = await response.text()
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        if until_session_created:
            times["session_created"] = await created
            print(json.dumps({"type": "session.created", **times}), flush=True)
            await pc.close()
            return 0
        track = await remote
        with sounddevice.OutputStream(samplerate=48000, channels=2, dtype="int16") as stream:
            player = asyncio.ensure_future(play(track, stream))
            await asyncio.sleep(seconds)
            await pc.close()  # ends the track; the player finishes its write and returns
            await player
    return 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--until-session-created"]
    until = len(args) < len(sys.argv) - 1
    sys.exit(asyncio.run(main(args[0], float(args[1]) if len(args) > 1 else 0.0, until)))
