"""Where a call's audio CPU goes on rtc-voice's side: the work per second of call audio, without
PortAudio, PulseAudio or the network (a breakdown under bench_cpu.py's figures, not a figure a
person meets).

Per simulated second, as in a call: 50 decoded Opus frames (s16 stereo, as aiortc's decoder
gives them) go through `frame_to_mono` into the speaker sink (`OutputSink.write`: level,
playout control, ring); the speaker's callback runs 200 times (5 ms blocks) with the buffer
type its stream hands it; the microphone's callback runs 50 times (20 ms blocks) and the loop
delivers each block (echo cancellation when on) to `MicrophoneTrack.recv()`, which makes the
AudioFrame aiortc encodes. The far end is speech-like sound (echo.test_sound) one second in two,
silence the other; the microphone hears it 20 dB down. The devices are opened (for their real
objects) but never started.

Printed: CPU ms per second of audio (= % of one core x 10) with echo cancellation (AEC3 through
livekit) and without it (`--no-aec`); the difference is what AEC3 and its stage cost.
`PYTHONPATH=OTHER/cli python bench/bench_audio_path.py` measures another checkout the same way
(it adapts to that checkout's stream type).

"cold caches": the same work, but between two 20 ms steps the process sleeps 2 ms and reads
4 MB (not counted), as in a real call, where PortAudio's callback threads, aiortc, the screen
and other processes run between two microphone blocks. In a call the echo path measures about
as the cold figure (bench_cpu.py's live screen against --no-aec), not the warm one: the same
work, run cold.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import av
import numpy as np

from rtc_voice.audio import devices
from rtc_voice.audio.echo import EchoPath, EchoStage, WebRtcCanceller, test_sound
from rtc_voice.audio.pcm import FRAME_SAMPLES, RATE
from rtc_voice.audio.tracks import MicrophoneTrack, frame_to_mono

SECONDS = int(os.environ.get("BENCH_SECONDS", "30"))
WARMUP = 3
COLD_BYTES = 4_000_000  # more than this machine's cache share: every line is evicted


def decoded(samples: np.ndarray[Any, Any]) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(
        np.repeat(samples, 2).reshape(1, -1), format="s16", layout="stereo"
    )
    frame.sample_rate = RATE
    return frame


async def measure(aec: bool, cold: bool = False) -> float:
    sd = devices.sounddevice()
    sink = devices.OutputSink(devices.select(None, "output"))
    source = devices.InputSource(devices.select(None, "input"))
    if aec:
        EchoPath(source, sink, EchoStage(WebRtcCanceller()))
    track = MicrophoneTrack(source)
    sink._running.set()  # as once the device plays in real time
    speech = test_sound(1.0, -20.0)
    far = [speech[i : i + FRAME_SAMPLES] for i in range(0, RATE, FRAME_SAMPLES)]
    far += [np.zeros(FRAME_SAMPLES, np.int16)] * len(far)
    frames = [decoded(f) for f in far]
    mics = [(f // 10).astype(np.int16) for f in far]
    ffi = sd._ffi
    info = ffi.new("PaStreamCallbackTimeInfo*")
    status = sd.CallbackFlags()
    out_mem, in_mem = ffi.new("int16_t[]", 240), ffi.new("int16_t[]", FRAME_SAMPLES)
    in_view = np.frombuffer(ffi.buffer(in_mem), np.int16)
    raw_out = isinstance(sink._stream, sd.RawOutputStream)
    raw_in = isinstance(source._stream, sd.RawInputStream)

    def buffer(mem: Any, raw: bool) -> Any:
        data = ffi.buffer(mem)
        return data if raw else np.frombuffer(data, np.int16).reshape(-1, 1)

    junk = np.ones(COLD_BYTES if cold else 1, np.uint8)
    spent = 0.0

    async def second(k: int) -> None:
        nonlocal spent
        for i in range(50):
            if cold:
                await asyncio.sleep(0.002)
                junk.sum()
            t0 = time.process_time()
            n = (k * 50 + i) % len(far)
            sink.write(frame_to_mono(frames[n]))
            for _ in range(4):
                sink._callback(buffer(out_mem, raw_out), 240, info, status)
            in_view[:] = mics[n]
            source._callback(buffer(in_mem, raw_in), FRAME_SAMPLES, info, status)
            await asyncio.sleep(0)  # the loop delivers the block
            await track.recv()
            spent += time.process_time() - t0

    try:
        for k in range(WARMUP):
            await second(k)
        spent = 0.0
        for k in range(SECONDS):
            await second(k)
        return spent / SECONDS * 1000
    finally:
        track.stop()
        sink.close()


def main() -> int:
    with_aec = asyncio.run(measure(True))
    without = asyncio.run(measure(False))
    cold_aec = asyncio.run(measure(True, cold=True))
    cold_without = asyncio.run(measure(False, cold=True))
    print(f"rtc-voice's audio path per second of call audio ({SECONDS} s, no PortAudio):")
    for name, on, off in (("warm", with_aec, without), ("cold caches", cold_aec, cold_without)):
        print(f" {name}:")
        print(f"  with echo cancellation    {on:5.2f} ms = {on / 10:.2f}% of one core")
        print(f"  without (--no-aec)        {off:5.2f} ms = {off / 10:.2f}% of one core")
        print(f"  AEC3 and its stage        {on - off:5.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
