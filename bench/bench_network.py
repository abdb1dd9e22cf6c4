"""Resilient calls, measured over real loopback calls against the local server in this process.

1. Drops: one `talk` call whose server cuts each call silently 2.5 s after answering it, 10
   times. Detection time (cut -> found lost) and reconnect gap (cut -> the next call's channel
   open and the conversation replayed), p50/p95.
2. Rollover: sessions capped at 8 s; the gap in the audio handed to the speaker around each
   switch (the longest interval between two frames), and how long the background open took.
3. Receive jitter buffers on impaired streams (the server's --network): jitter 0/10/30/60 ms x
   loss 0/1/5 %, for each buffer side by side: receive latency (p50/p95, from the server's send
   of each packet to its decoded frame in the client; one process, one clock) and the underrun
   rate of a speaker that starts 40 ms after the first frame, plays a frame per 20 ms and waits
   (in silence: the underrun) when the next is not there; a lost frame the audio stage conceals
   counts as there once the audio after it is.

Run: `make bench`, or `python -m tests.pulse .venv/bin/python bench/bench_network.py`.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

DROPS = 10
STREAM_SECONDS = 4.0
PLAYOUT_LEAD_S = 0.040
FRAME_S = 0.020
BUFFERS: dict[str, int | None] = {"adaptive": -1, "immediate (0)": 0, "aiortc default (4)": 4}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


def quiet_wav(path: Path, seconds: float) -> Path:
    from rtc_voice.audio.pcm import silence
    from rtc_voice.audio.wavfile import WavWriter

    writer = WavWriter(path)
    writer.write(silence(seconds * 1000))
    writer.close()
    return path


class Quiet:
    """A presenter that shows nothing."""

    def bind(self, controls: Any, snapshot: Any) -> None: ...
    def event(self, event: Any, direction: str) -> None: ...
    def turns_finished(self, turns: Any) -> None: ...
    def notice(self, text: str, *, error: bool = False) -> None: ...
    async def run(self) -> None: ...
    def close(self, turns: Any) -> None: ...


async def drops(tmp: Path) -> None:
    from rtc_voice.call.supervisor import CallSupervisor, TalkOptions
    from rtc_voice.config import load_settings

    options = TalkOptions(
        local=True,
        input=str(quiet_wav(tmp / "drops.wav", DROPS * 4.5)),
        output="none",
        max_duration=DROPS * 6,
        drop_after=2.5,
        drops=DROPS,
    )
    call = CallSupervisor(load_settings(env={}), options, Quiet(), api_key=None)  # type: ignore[arg-type]
    server_calls: list[Any] = []
    original = call._prepare

    async def prepare() -> None:
        await original()
        assert call._server is not None
        server_calls.append(call._server)

    call._prepare = prepare  # type: ignore[method-assign]
    await call.run()
    server = server_calls[0]
    cuts = [c.cut_at for c in server.started_calls if c.cut_at is not None]
    detect = [d - c for c, d in zip(cuts, call.detected_at, strict=False)]
    gaps = [r - c for c, r in zip(cuts, call.resumed_at, strict=False)]
    print(f"drops: {len(cuts)} cuts, {len(call.detected_at)} detected, {len(gaps)} resumed")
    print(
        f"  detection  p50 {pct(detect, 50) * 1000:6.0f} ms   p95 {pct(detect, 95) * 1000:6.0f} ms"
        "   (aiortc alone: 24-36 s)"
    )
    print(
        f"  reconnect  p50 {pct(gaps, 50) * 1000:6.0f} ms   p95 {pct(gaps, 95) * 1000:6.0f} ms"
        "   (cut -> next call's channel open, context sent; target <= 2000 ms)"
    )


async def rollovers(tmp: Path) -> None:
    from rtc_voice.call.supervisor import CallSupervisor, TalkOptions
    from rtc_voice.config import load_settings

    options = TalkOptions(
        local=True,
        input=str(quiet_wav(tmp / "roll.wav", 26)),
        output="none",
        max_duration=40,
        session_seconds=8.0,
    )
    call = CallSupervisor(load_settings(env={}), options, Quiet(), api_key=None)  # type: ignore[arg-type]
    played: list[float] = []
    original = call._play

    def play(samples: Any) -> None:
        played.append(time.monotonic())
        original(samples)

    call._play = play  # type: ignore[method-assign]
    await call.run()
    gaps = []
    for switch in call.switched_at:
        near = [t for t in played if switch - 0.5 <= t <= switch + 1.0]
        gaps.append(max((b - a for a, b in pairwise(near)), default=0.0))
    print(f"rollover: {len(call.switched_at)} switches over 26 s with an 8 s session cap")
    print(
        f"  speaker gap at the switch  max {max(gaps) * 1000:5.0f} ms  "
        f"(frames arrive every 20 ms; background open p50 {pct(call.rollovers, 50) * 1000:.0f} ms)"
    )
    print(f"  reconnects (the cap struck first): {len(call.reconnects)}")


SENT: dict[int, float] = {}  # RTP timestamp -> when the server sent it (same process, same clock)


def record_sends() -> None:
    """Wrap the local server's per-packet decision to note each packet's send time."""
    import rtc_voice.localserver.call as local_call
    from rtc_voice.localserver.netem import PacketFate

    class Recorded(PacketFate):
        def __call__(self, packet: bytes = b"") -> float | None:
            if len(packet) >= 8:
                SENT[int.from_bytes(packet[4:8], "big")] = time.monotonic()
            return super().__call__(packet)

    local_call.PacketFate = Recorded  # type: ignore[misc]


async def stream(base_url: str, frames: int | None) -> tuple[list[float], float, int]:
    """One call's received audio for STREAM_SECONDS: (latencies, underrun rate, frames)."""
    from rtc_voice.api import RealtimeApi
    from rtc_voice.audio.tracks import PcmTrack
    from rtc_voice.protocol import client as proto
    from rtc_voice.rtc.peer import connect

    SENT.clear()
    async with RealtimeApi(base_url, timeout=10) as api:
        from rtc_voice.config import load_settings

        secret = await api.create_client_secret(
            "sk-bench", proto.client_secret_request(load_settings(env={}))
        )
        conn = await connect(
            api,
            secret.value,
            PcmTrack(),
            jitter_buffer_frames=frames,
            loopback_only=True,
            connect_timeout=10,
        )
    assert conn.remote_audio is not None
    track = await conn.remote_audio
    got: list[tuple[float, int]] = []
    end = time.monotonic() + STREAM_SECONDS
    try:
        while time.monotonic() < end:
            async with asyncio.timeout(2):
                frame = await track.recv()
            now = time.monotonic()
            for k in range(max(1, frame.samples // 960)):  # a merged packet carries several
                got.append((now, int(frame.pts or 0) + k * 960))
    except TimeoutError:
        pass
    finally:
        await conn.close()
    got = got[25:]  # skip the first half second (DTLS and decoder warm-up)
    # aiortc maps RTP timestamps to pts from 0 at the first frame it decodes: find that frame
    first = min(SENT)
    offset = max(
        (first + k * 960 for k in range(32)),
        key=lambda o: (all(t >= SENT.get(pts + o, 0) for t, pts in got), -o),
    )
    latencies = [(t - SENT[pts + offset]) * 1000 for t, pts in got if pts + offset in SENT]
    first_pts = min(pts for _, pts in got)
    arrival = {pts: t for t, pts in got}
    ticks = int((max(p for _, p in got) - first_pts) / 960) + 1
    start = min(t for t, _ in got) + PLAYOUT_LEAD_S
    # a speaker that starts 40 ms after the first frame and plays one frame per 20 ms; when
    # the next frame is not there it plays silence (an underrun) until it comes, then goes on
    arrived = sorted(arrival)
    clock, gaps = start, 0
    for k in range(ticks):
        pts = first_pts + k * 960
        t = arrival.get(pts)
        if t is None:  # lost: concealed once the audio after the gap is there
            later = next((p for p in arrived if p > pts), None)
            t = arrival[later] if later is not None else clock
        if t > clock:
            gaps += int((t - clock) / FRAME_S + 0.999)
            clock = t
        clock += FRAME_S
    late = gaps
    ticks += gaps
    return latencies, late / ticks, len(got)


async def buffers() -> None:
    from rtc_voice.localserver import LocalServer
    from rtc_voice.localserver.netem import Impairment

    record_sends()
    print("receive buffers (latency: server send -> frame decoded; underruns: share of a 40 ms")
    print("speaker's 20 ms ticks spent waiting in silence; concealed losses count as played):")
    print(f"  {'path':22} {'buffer':20} {'p50 ms':>7} {'p95 ms':>7} {'underruns':>10}")
    for jitter in (0, 10, 30, 60):
        for loss in (0, 1, 5):
            # a tiny fixed delay keeps the send-time hook on for the clean path too
            impairment = Impairment(
                delay_ms=0.001, jitter_ms=jitter, loss=loss / 100, seed=jitter * 100 + loss
            )  # seeded: each buffer meets the same delays and losses
            async with LocalServer(network=impairment, max_call_seconds=60) as server:
                for name, frames in BUFFERS.items():
                    latencies, underruns, _ = await stream(server.base_url, frames)
                    print(
                        f"  jitter {jitter:2} ms loss {loss}%   {name:20} "
                        f"{pct(latencies, 50):7.0f} {pct(latencies, 95):7.0f} "
                        f"{underruns * 100:9.1f}%"
                    )


async def main() -> None:
    print("bench_network (this machine may be loaded by other work; label figures so)")
    with tempfile.TemporaryDirectory() as tmp:
        await drops(Path(tmp))
        await rollovers(Path(tmp))
    if "--quick" not in sys.argv:
        await buffers()


if __name__ == "__main__":
    asyncio.run(main())
