"""The stock baseline: a plain aiortc client with aiortc's and sounddevice's defaults (bench only).

`python bench/stock_client.py BASE_URL SECONDS`: mints a key (aiohttp), offers aiortc's own
`AudioStreamTrack` (silence) with the `oai-events` channel, posts the SDP to /calls, and plays
the answer's audio with a plain sounddevice OutputStream on the default device (the PulseAudio
sink rtc-voice plays into), writing each decoded frame as it comes, the way Semantic Kernel's
aiortc sample does. Default jitter buffer, default stream latency; the only change is gathering
ICE candidates on 127.0.0.1 so nothing leaves this machine. (aiortc's MediaRecorder cannot be
used here: PyAV's wheel bundles an ALSA without the PulseAudio plugin.)

`--mic`: the second baseline. Instead of aiortc's generated silence it sends the default
microphone, captured the way Semantic Kernel's aiortc sample (`AudioRecorderWebRTC`) does: a
plain sounddevice InputStream at 48 kHz mono with 20 ms blocks and default latency, each block
copied in the callback and handed to the event loop, where the track's `recv()` wraps it in an
AudioFrame for aiortc's encoder. (Semantic Kernel hands each block over with
`run_coroutine_threadsafe(queue.put(...))`, a coroutine and a task per block; this uses the
lighter `call_soon_threadsafe(queue.put_nowait, ...)` so the baseline is not padded.) No echo
canceller, no levels, no playout control.

`--until-session-created` (bench_connect.py): the same steps, but the client prints one JSON line
on stdout when `session.created` arrives on `oai-events`, with the wall-clock times
(`time.time()`) its key request started and ended, and exits at once (SECONDS is ignored).
"""

from __future__ import annotations

import asyncio
import fractions
import json
import sys
import time
from typing import Any

import aiohttp
import aioice.ice
import av
import numpy as np
import sounddevice
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError

RATE = 48000
BLOCK = RATE // 50  # 20 ms, one Opus frame


class MicrophoneTrack(MediaStreamTrack):
    """The default microphone as an aiortc track: a plain sounddevice InputStream, 20 ms blocks
    queued on the loop, each wrapped in an AudioFrame when aiortc asks for it."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[np.ndarray[Any, Any]] = asyncio.Queue()
        self._pts = 0
        self._stream = sounddevice.InputStream(
            samplerate=RATE, channels=1, dtype="int16", blocksize=BLOCK, callback=self._callback
        )
        self._stream.start()

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, indata.copy())

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        block = await self._queue.get()
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += len(block)
        return frame

    def stop(self) -> None:
        if self.readyState == "ended":
            return
        super().stop()
        self._stream.stop()
        self._stream.close()


async def play(track: MediaStreamTrack, stream: sounddevice.OutputStream) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels))  # type: ignore[attr-defined]
        await loop.run_in_executor(None, stream.write, pcm)


async def main(
    base_url: str, seconds: float, until_session_created: bool = False, mic: bool = False
) -> int:
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    microphone = MicrophoneTrack() if mic else None
    pc.addTrack(microphone or AudioStreamTrack())
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
    if microphone is not None:
        microphone.stop()
    return 0


if __name__ == "__main__":
    flags = {"--until-session-created", "--mic"}
    args = [a for a in sys.argv[1:] if a not in flags]
    until, mic = "--until-session-created" in sys.argv, "--mic" in sys.argv
    sys.exit(asyncio.run(main(args[0], float(args[1]) if len(args) > 1 else 0.0, until, mic)))
