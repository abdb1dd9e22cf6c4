"""`talk` figures on this machine.

1. Process start -> call ready (session.created printed) with `--local`; target <= 1.5 s median.
2. Receive latency: RTP packet arrival -> the speaker callback starts on that frame, with
   aiortc's default jitter buffer (4 frames) and ours (network.jitter_buffer_frames = 1);
   target <= 40 ms median without underruns.
3. Client CPU during a full-duplex minute (server in its own process); target <= 10% of a core.
BENCH_SECONDS shortens 2 and 3.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rtc_voice.audio.pcm import silence, tone
from rtc_voice.audio.wavfile import WavWriter

SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
CLI = [sys.executable, "-m", "rtc_voice"]


def wav(path: Path, pcm: np.ndarray) -> Path:
    writer = WavWriter(path)
    writer.write(pcm)
    writer.close()
    return path


def start_to_ready(tmp: Path, runs: int = 7) -> None:
    quiet = wav(tmp / "quiet.wav", silence(500))
    times = []
    for _ in range(runs):
        began = time.monotonic()
        proc = subprocess.Popen(
            [
                *CLI,
                "talk",
                "--local",
                "--json",
                "--input",
                str(quiet),
                "--output",
                "none",
                "--max-duration",
                "2",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"talk --local did not start: {proc.communicate()[1].strip()}")
        first = json.loads(line)
        times.append(time.monotonic() - began)
        assert first["type"] == "session.created"
        proc.communicate(timeout=30)
    median = statistics.median(times)
    print(
        f"start -> call ready (--local): median {median:.2f} s, min {min(times):.2f} s, "
        f"max {max(times):.2f} s over {runs} runs (target <= 1.5 s: "
        f"{'met' if median <= 1.5 else 'MISSED'})"
    )


async def receive_latency(frames: int | None, seconds: float) -> tuple[list[float], int, str]:
    """Latencies (ms) from RTP arrival to the speaker starting on each frame."""
    from aiortc.rtcrtpreceiver import RTCRtpReceiver

    from rtc_voice.api import RealtimeApi
    from rtc_voice.audio import devices
    from rtc_voice.audio.tracks import PcmTrack, frame_to_mono
    from rtc_voice.localserver import LocalServer
    from rtc_voice.protocol import client as events
    from rtc_voice.rtc.peer import connect

    # per receiver (the in-process server has one too): RTP timestamp - first -> arrival time
    stamps: dict[int, dict[int, float]] = {}
    bases: dict[int, int] = {}
    original = RTCRtpReceiver._handle_rtp_packet

    async def stamped(self: Any, packet: Any, arrival_time_ms: int) -> None:
        base = bases.setdefault(id(self), packet.timestamp)
        stamps.setdefault(id(self), {}).setdefault(
            (packet.timestamp - base) % 2**32, time.monotonic()
        )
        await original(self, packet, arrival_time_ms)

    RTCRtpReceiver._handle_rtp_packet = stamped  # type: ignore[method-assign]
    sink = devices.OutputSink(devices.select(None, "output"))
    sink.start()
    await sink.wait_running()
    latencies: list[float] = []
    try:
        async with LocalServer() as server, RealtimeApi(server.base_url) as api:
            secret = await api.create_client_secret(
                "sk-bench",
                {"session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}}},
            )
            conn = await connect(
                api,
                secret.value,
                PcmTrack(),
                connect_timeout=10,
                jitter_buffer_frames=frames,
                loopback_only=True,
            )
            track = await conn.remote_audio  # type: ignore[misc]
            arrivals = stamps.setdefault(id(conn.pc.getTransceivers()[0].receiver), {})
            end = time.monotonic() + seconds
            said = 0.0
            while time.monotonic() < end:
                if time.monotonic() - said > 3.0:  # keep the server talking
                    conn.send(events.user_message("one two three four five"))
                    conn.send(events.response_create())
                    said = time.monotonic()
                frame = await track.recv()
                now = time.monotonic()
                ahead = sink.depth_ms  # audio already queued plays first
                sink.write(frame_to_mono(frame))
                arrived = arrivals.pop(frame.pts, None)
                if arrived is not None and now - end + seconds > 2.0:  # skip the start-up
                    latencies.append((now - arrived) * 1000 + ahead)
            await conn.close()
    finally:
        RTCRtpReceiver._handle_rtp_packet = original  # type: ignore[method-assign]
        sink.close()
    return latencies, sink.underruns, sink.device.name


def client_cpu(tmp: Path, seconds: float) -> None:
    """`talk` against a separate `serve` process for `seconds`: speech in, speech out."""
    burst = np.concatenate([tone(300, 1200, dbfs=-20), silence(3800)])
    speech = wav(tmp / "turns.wav", np.tile(burst, int(seconds // 5) + 1))
    server = subprocess.Popen(
        [*CLI, "serve", "--port", "0"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    assert server.stderr is not None
    url = ""
    while not url:
        line = server.stderr.readline()
        if "listening on" in line:
            url = line.split("listening on ")[1].split()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    subprocess.run(
        [*CLI, "talk", "--base-url", url, "--input", str(speech), "--max-duration", str(seconds)],
        env={**os.environ, "OPENAI_API_KEY": "sk-bench-local-0000000000000000"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server.terminate()
    server.communicate(timeout=20)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    share = cpu / wall * 100
    print(
        f"client CPU, full duplex for {wall:.0f} s (speech in from a WAV, replies out to the "
        f"speaker, start-up included): {cpu:.1f} CPU-s = {share:.1f}% of one core "
        f"(target <= 10%: {'met' if share <= 10 else 'MISSED'})"
    )


def main() -> int:
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        start_to_ready(tmp)
        seconds = min(SECONDS, 20.0)
        for frames, label in (
            (None, "aiortc default (4 frames)"),
            (1, "1 frame"),
            (0, "0 frames, immediate"),
        ):
            lat, underruns, device = asyncio.run(receive_latency(frames, seconds))
            median = statistics.median(lat)
            p95 = float(np.percentile(lat, 95))
            print(
                f"receive latency, RTP arrival -> speaker, {label}: median {median:.1f} ms, "
                f"p95 {p95:.1f} ms over {len(lat)} frames, {underruns} underruns "
                f"on '{device}' (target median <= 40 ms: "
                f"{'met' if median <= 40 and not underruns else 'MISSED'})"
            )
        client_cpu(tmp, SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
