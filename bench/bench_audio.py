"""Duplex 48 kHz streaming on the real (virtual) devices for 60 s.

Capture latency: PortAudio callback -> frame returned by MicrophoneTrack.recv() (what aiortc
sees); target p95 <= 25 ms. Playback: buffer depth sampled at every write (steady state, after
the first second) and underruns; targets <= 40 ms and zero. CPU: process CPU seconds per minute
of duplex streaming; target <= 3% of one core. BENCH_SECONDS shortens the run.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import numpy as np

from rtc_voice.audio import devices as audio
from rtc_voice.audio.pcm import FRAME_SAMPLES, tone
from rtc_voice.audio.tracks import MicrophoneTrack

SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))


def thread_cpu() -> dict[str, float]:
    """CPU seconds per thread of this process (Linux /proc), keyed 'name#tid'."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat") as f:
            stat = f.read()
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[f"{name}#{tid}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


async def main() -> int:
    found = audio.list_devices()
    sink = audio.OutputSink(audio.select(None, "output", found))
    source = audio.InputSource(audio.select(None, "input", found))
    mic = MicrophoneTrack(source)
    sink.start()
    source.start()
    await sink.wait_running()
    signal = np.tile(tone(440, 1000, dbfs=-20), 2)
    depths: list[float] = []
    frames_in = 0

    async def capture() -> None:
        nonlocal frames_in
        while True:
            await mic.recv()
            frames_in += 1

    reader = asyncio.ensure_future(capture())
    cpu0, wall0 = time.process_time(), time.monotonic()
    threads0 = thread_cpu()
    n = 0
    while time.monotonic() - wall0 < SECONDS:
        start = n * FRAME_SAMPLES % (len(signal) - FRAME_SAMPLES)
        sink.write(signal[start : start + FRAME_SAMPLES])
        if n >= 50:  # steady state: after the first second
            depths.append(sink.depth_ms)
        n += 1
        await asyncio.sleep(max(0.0, wall0 + n * 0.02 - time.monotonic()))
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    threads = {k: v - threads0.get(k, 0.0) for k, v in thread_cpu().items()}
    loop_thread = next(k for k in threads if k.endswith(f"#{os.getpid()}"))
    reader.cancel()
    mic.stop()
    sink.close()
    lat = mic.latencies_ms[50:]
    print(f"duplex 48 kHz for {wall:.0f} s on '{sink.device.name}' / '{source.device.name}'")
    print(
        f"capture latency (callback -> aiortc): p50 {pct(lat, 50):.2f} ms, "
        f"p95 {pct(lat, 95):.2f} ms, max {max(lat):.2f} ms over {len(lat)} frames "
        f"(target p95 <= 25 ms: {'met' if pct(lat, 95) <= 25 else 'MISSED'}); "
        f"dropped {source.dropped_frames}, overflows {source.overflows}"
    )
    print(
        f"playback depth: median {pct(depths, 50):.1f} ms, p99 {pct(depths, 99):.1f} ms, "
        f"max {max(depths):.1f} ms; underruns {sink.underruns}, trimmed "
        f"{sink.trimmed_samples / 48:.0f} ms (target depth <= 40 ms and 0 underruns: "
        f"{'met' if max(depths) <= 40 and sink.underruns == 0 else 'MISSED'})"
    )
    share = cpu / wall * 100
    print(
        f"CPU: {cpu / wall * 60:.2f} CPU-seconds per minute = {share:.2f}% of one core "
        f"(target <= 3%: {'met' if share <= 3 else 'MISSED'}); frames in {frames_in}, out {n}"
    )
    ours = threads.get(loop_thread, 0.0) / wall * 100
    print(
        f"  of which the event loop (our framing, levels, ring writes) {ours:.2f}%, "
        f"PortAudio/ALSA/PulseAudio client threads {share - ours:.2f}%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
