"""A bench-only Realtime stand-in that plays clicks and logs when it sent each one.

Run in its own process by bench_mouth_to_ear.py: `python bench/click_server.py`. It answers
POST /v1/realtime/client_secrets and /v1/realtime/calls (and hang-up) like the GA API, opens the
`oai-events` channel with `session.created`, and sends a 20 ms Opus stream of silence with a
short click at the first sample of a frame every 0.4-0.7 s, starting `lead_s` after the events
channel opens. The time a click frame leaves the track (time.monotonic(), the same clock in every
process on Linux) is logged; GET /bench/clicks returns the log of the latest call.

Jitter: POST /bench/config {"jitter_ms": N} delays every outgoing RTP packet by a random
0..N ms, in order (a FIFO, like a congested link), from the next call on.
Turns: POST /bench/config {"turns_s": N} makes the clicks come in turns, N s of them and then
N s of silence, as an assistant speaks and then listens (0, the default: clicks throughout).
"""

from __future__ import annotations

import asyncio
import fractions
import json
import random
import secrets
import sys
import time
from typing import Any

import av
import numpy as np
from aiohttp import web
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole
from aiortc.rtcdtlstransport import RTCDtlsTransport

RATE = 48000
FRAME = 960
CLICK = (np.hanning(96) * 24000 * np.sin(2 * np.pi * 3000 * np.arange(96) / RATE)).astype(np.int16)


class Bench:
    jitter_ms = 0.0
    lead_s = 2.5
    turns_s = 0.0
    clicks: list[float] = []  # noqa: RUF012  the latest call's send times
    call_id = ""
    pcs: set[RTCPeerConnection] = set()  # noqa: RUF012


class ClickTrack(MediaStreamTrack):
    """Silence with a click every 0.4-0.7 s, paced by the wall clock; logs each click's send."""

    kind = "audio"

    def __init__(self, log: list[float]) -> None:
        super().__init__()
        self._log = log
        self._start: float | None = None
        self._pts = 0
        self._next_click: float | None = None
        self._turns_from = 0.0
        self._turns_s = 0.0
        self._rng = random.Random()

    def begin(self, lead_s: float) -> None:
        self._turns_from = time.monotonic() + lead_s
        self._next_click = self._turns_from
        self._turns_s = Bench.turns_s

    def _listening(self, now: float) -> bool:
        """In a turn's silent half (with turns_s set)."""
        return self._turns_s > 0 and int((now - self._turns_from) / self._turns_s) % 2 == 1

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._pts / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        samples = np.zeros(FRAME, np.int16)
        now = time.monotonic()
        if self._next_click is not None and now >= self._next_click:
            if not self._listening(now):
                samples[: len(CLICK)] = CLICK
                self._log.append(now)
            self._next_click = now + self._rng.uniform(0.4, 0.7)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += FRAME
        return frame


def install_jitter() -> None:
    """Delay each outgoing RTP/RTCP packet by uniform 0..Bench.jitter_ms, keeping the order."""
    original = RTCDtlsTransport._send_rtp
    queues: dict[int, asyncio.Queue[tuple[float, bytes]]] = {}
    last_due: dict[int, float] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def pump(transport: Any, queue: asyncio.Queue[tuple[float, bytes]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            try:
                await original(transport, data)
            except Exception:  # the transport closed: stop quietly
                return

    async def jittered(self: Any, data: bytes) -> None:
        if Bench.jitter_ms <= 0:
            await original(self, data)
            return
        loop = asyncio.get_running_loop()
        key = id(self)
        if key not in queues:
            queues[key] = asyncio.Queue()
            task = asyncio.ensure_future(pump(self, queues[key]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        due = max(last_due.get(key, 0.0), loop.time() + random.uniform(0, Bench.jitter_ms / 1000))
        last_due[key] = due
        queues[key].put_nowait((due, data))

    RTCDtlsTransport._send_rtp = jittered  # type: ignore[method-assign]


def session_object() -> dict[str, Any]:
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": "sess_" + secrets.token_hex(8),
        "model": "gpt-realtime",
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": int(time.time()) + 600,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": None,
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"},
        },
    }


async def client_secrets(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "value": "ek_bench_" + secrets.token_hex(8),
            "expires_at": int(time.time()) + 600,
            "session": session_object(),
        }
    )


async def calls(request: web.Request) -> web.Response:
    offer = await request.text()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    Bench.pcs.add(pc)
    Bench.clicks = []
    Bench.call_id = "rtc_" + secrets.token_hex(8)
    track = ClickTrack(Bench.clicks)
    pc.addTrack(track)
    sink = MediaBlackhole()  # the client's microphone: received and dropped
    starting: set[asyncio.Future[None]] = set()

    @pc.on("track")
    def on_track(remote: MediaStreamTrack) -> None:
        sink.addTrack(remote)
        starting.add(asyncio.ensure_future(sink.start()))

    @pc.on("datachannel")
    def on_channel(channel: Any) -> None:
        def hello() -> None:
            event = {
                "type": "session.created",
                "event_id": "event_" + secrets.token_hex(8),
                "session": session_object(),
            }
            channel.send(json.dumps(event))
            track.begin(Bench.lead_s)

        if channel.readyState == "open":
            hello()
        else:
            channel.on("open", hello)

    @pc.on("connectionstatechange")
    async def on_state() -> None:
        if pc.connectionState in ("failed", "closed"):
            Bench.pcs.discard(pc)
            await sink.stop()
            await pc.close()

    await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return web.Response(
        status=201,
        text=pc.localDescription.sdp,
        content_type="application/sdp",
        headers={"Location": f"/v1/realtime/calls/{Bench.call_id}"},
    )


async def hangup(request: web.Request) -> web.Response:
    for pc in list(Bench.pcs):
        await pc.close()
    Bench.pcs.clear()
    return web.Response(status=200)


async def get_clicks(request: web.Request) -> web.Response:
    return web.json_response({"call_id": Bench.call_id, "clicks": Bench.clicks})


async def config(request: web.Request) -> web.Response:
    body = await request.json()
    Bench.jitter_ms = float(body.get("jitter_ms", Bench.jitter_ms))
    Bench.lead_s = float(body.get("lead_s", Bench.lead_s))
    Bench.turns_s = float(body.get("turns_s", Bench.turns_s))
    return web.json_response(
        {"jitter_ms": Bench.jitter_ms, "lead_s": Bench.lead_s, "turns_s": Bench.turns_s}
    )


async def main() -> None:
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]  # loopback only
    install_jitter()
    app = web.Application()
    app.router.add_post("/v1/realtime/client_secrets", client_secrets)
    app.router.add_post("/v1/realtime/calls", calls)
    app.router.add_post("/v1/realtime/calls/{call_id}/hangup", hangup)
    app.router.add_get("/bench/clicks", get_clicks)
    app.router.add_post("/bench/config", config)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"listening on http://127.0.0.1:{port}/v1", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for pc in list(Bench.pcs):
            await pc.close()
        await runner.cleanup()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
