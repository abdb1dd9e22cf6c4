"""rtc-voice's microphone and speaker streams alone, no call: what they cost on their own.

`python bench/bench_devices_stream.py SECONDS` opens the default microphone and speaker the way
`talk` does (audio/devices.py: InputSource + OutputSink, 48 kHz mono, low latency), reads every
20 ms microphone frame on the event loop and writes 20 ms of a quiet tone to the speaker for
each (a call's pace: one frame in, one frame out), for SECONDS. bench/bench_cpu.py runs it as
its "device streaming" client and measures its CPU over the same steady window as the calls;
run alone it prints its own figure (% of one core over the last SECONDS - 4 s).

`--bare` is the floor under it: the same two PortAudio streams (same device, rate, block sizes,
latency) with callbacks that do nothing but hand PortAudio silence, and no event loop: what
PortAudio, PulseAudio and a Python callback cost before any of rtc-voice's work.

`--bare-stock` is the same floor for the streams the stock clients open (bench/stock_client.py
--mic): a 20 ms InputStream at sounddevice's default latency with an empty callback, and a
stereo OutputStream at its default latency fed by blocking writes of 20 ms of silence from a
thread (the stock player writes from an executor thread). It is what any client pays for a
microphone and a speaker on this machine before its own work; `--bare` is the same with
rtc-voice's 5 ms low-latency speaker blocks.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from typing import Any

import numpy as np

from rtc_voice.audio.devices import (
    INPUT_BLOCKS_PER_SECOND,
    OUTPUT_BLOCKS_PER_SECOND,
    InputSource,
    OutputSink,
    select,
)
from rtc_voice.audio.pcm import FRAME_SAMPLES, RATE

SETTLE_S = 4.0


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def stream(seconds: float) -> float:
    """Streams for `seconds`; returns the CPU share (% of one core) after the first SETTLE_S."""
    tone = (np.sin(2 * np.pi * 440 * np.arange(FRAME_SAMPLES) / RATE) * 1000).astype(np.int16)
    source = InputSource(select(None, "input"))
    sink = OutputSink(select(None, "output"))
    source.start()
    sink.start()
    start = time.monotonic()
    cpu0 = wall0 = None
    try:
        while (now := time.monotonic()) - start < seconds:
            if cpu0 is None and now - start >= SETTLE_S:
                cpu0, wall0 = cpu_seconds(), now
            frame = await source.read(stall_after=5.0)
            if frame is None:
                raise SystemExit("the microphone delivered nothing for 5 s")
            sink.write(tone)
    finally:
        source.close()
        sink.close()
    if cpu0 is None or wall0 is None:
        return float("nan")
    return (cpu_seconds() - cpu0) / (time.monotonic() - wall0) * 100


def bare(seconds: float) -> float:
    from rtc_voice.audio.catalog import sounddevice

    sd = sounddevice()

    def heard(indata: Any, frames: int, time_info: Any, status: Any) -> None:
        pass

    def play(outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        outdata.fill(0)

    common = {"samplerate": RATE, "channels": 1, "dtype": "int16", "latency": "low"}
    source = sd.InputStream(
        device=select(None, "input").index,
        blocksize=RATE // INPUT_BLOCKS_PER_SECOND,
        callback=heard,
        **common,
    )
    sink = sd.OutputStream(
        device=select(None, "output").index,
        blocksize=RATE // OUTPUT_BLOCKS_PER_SECOND,
        callback=play,
        **common,
    )
    with source, sink:
        time.sleep(SETTLE_S)
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        time.sleep(max(0.0, seconds - SETTLE_S))
        return (cpu_seconds() - cpu0) / (time.monotonic() - wall0) * 100


def bare_stock(seconds: float) -> float:
    from rtc_voice.audio.catalog import sounddevice

    sd = sounddevice()

    def heard(indata: Any, frames: int, time_info: Any, status: Any) -> None:
        pass

    source = sd.InputStream(
        device=select(None, "input").index,
        samplerate=RATE,
        channels=1,
        dtype="int16",
        blocksize=RATE // INPUT_BLOCKS_PER_SECOND,
        callback=heard,
    )
    sink = sd.OutputStream(
        device=select(None, "output").index, samplerate=RATE, channels=2, dtype="int16"
    )
    silence = np.zeros((FRAME_SAMPLES, 2), np.int16)
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            sink.write(silence)  # blocks until the device has room: paced by the device

    with source, sink:
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        time.sleep(SETTLE_S)
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        time.sleep(max(0.0, seconds - SETTLE_S))
        share = (cpu_seconds() - cpu0) / (time.monotonic() - wall0) * 100
        stop.set()
        writer.join(5)
    return share


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    seconds = float(args[0]) if args else 64.0
    if "--bare" in sys.argv:
        print(f"bare PortAudio streams: {bare(seconds):.1f}% of one core")
        return 0
    if "--bare-stock" in sys.argv:
        print(f"bare PortAudio streams, stock style: {bare_stock(seconds):.1f}% of one core")
        return 0
    share = asyncio.run(stream(seconds))
    print(f"microphone + speaker streams alone: {share:.1f}% of one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
