"""`rtc-voice` exactly as a user runs it, plus a listener in the speaker callback (bench only).

`python bench/talk_probe.py talk …` runs the real CLI. Before that it wraps OutputSink's PortAudio
callback: after the sink has filled a block, any click in it is logged with the time the block
was handed to PortAudio and PortAudio's own estimate of when its first sample reaches the DAC.
At exit the log and the sink's counters go to the JSON file named by BENCH_PROBE_OUT.

Stages, to see where a late click lost its time: every RTP packet's arrival at the receive
buffer and its release to the decoder (by RTP timestamp), the end of its decode (decoder
thread), and for a click frame the moment it reached the loop (`frame_to_mono`) and the
speaker buffer's depth when it was queued (`OutputSink.write`).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
import time
from typing import Any

import numpy as np
from aiortc.codecs import opus

from rtc_voice.app import main
from rtc_voice.audio import devices, tracks
from rtc_voice.rtc import jitter

THRESHOLD = 4000  # a click peaks near 20000; silence and codec noise stay far below
REFRACTORY_S = 0.2

log: dict[str, Any] = {
    "callback": [],
    "dac": [],
    "sinks": [],
    "arrival": {},  # RTP timestamp -> arrival at the receive buffer
    "release": {},  # RTP timestamp (of each frame, merged ones too) -> handed to the decoder
    "decoded": {},  # RTP timestamp -> decode done (decoder thread)
    "loop": [],  # click frames: [pts, time it reached the loop]
    "write": [],  # click frames: [time queued, speaker buffer depth before it in ms]
    "targets": [],  # [time, receive-buffer target in frames] whenever it changes
}
_last = [0.0]
_gc_start = [0.0]
log["gc"] = []  # [generation, ms, end] of each collection that took 2 ms or more


def _gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_start[0] = time.perf_counter()
    else:
        took = (time.perf_counter() - _gc_start[0]) * 1000
        if took >= 2:
            log["gc"].append([info["generation"], took, time.monotonic()])


gc.callbacks.append(_gc)
_original_callback = devices.OutputSink._callback
_original_close = devices.OutputSink.close
_original_write = devices.OutputSink.write
_original_add = jitter.AdaptiveJitter.add
_original_decode = opus.OpusDecoder.decode
_original_to_mono = tracks.frame_to_mono


def _loud(samples: Any) -> bool:
    return bool(len(samples)) and int(np.max(np.abs(samples.astype(np.int32)))) > THRESHOLD


def _add(self: Any, seq: int, timestamp: int, payload: Any, arrival: float) -> Any:
    before = self.counts.released
    target = self.target
    out = _original_add(self, seq, timestamp, payload, arrival)
    now = time.monotonic()
    log["arrival"].setdefault(timestamp, arrival)
    if out is not None:
        log.setdefault("origin", out[0])  # aiortc counts decoded timestamps from the first
        for i in range(self.counts.released - before):
            log["release"][out[0] + 960 * i] = now
    if self.target != target:
        log["targets"].append([now, self.target])
    return out


def _decode(self: Any, encoded: Any) -> Any:
    frames = _original_decode(self, encoded)
    now = time.monotonic()
    for i in range(max(1, len(frames))):
        log["decoded"][encoded.timestamp + 960 * i] = now
    return frames


def _to_mono(frame: Any) -> Any:
    samples = _original_to_mono(frame)
    if _loud(samples):
        log["loop"].append([getattr(frame, "pts", None), time.monotonic()])
    return samples


def _write(self: Any, samples: Any) -> None:
    log.setdefault("depths", []).append(
        [time.monotonic(), len(self._ring) * 1000 / self.rate, self.underruns, self.playout.shed]
    )
    if _loud(samples):
        log["write"].append([time.monotonic(), len(self._ring) * 1000 / self.rate])
    _original_write(self, samples)


def _callback(self: Any, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
    _original_callback(self, outdata, frames, time_info, status)
    now = time.monotonic()
    played = np.frombuffer(outdata, np.int16)  # the raw stream's buffer: mono int16 bytes
    loud = np.flatnonzero(np.abs(played.astype(np.int32)) > THRESHOLD)
    if len(loud) and now - _last[0] > REFRACTORY_S:
        _last[0] = now
        offset = loud[0] / self.rate
        ahead = max(0.0, time_info.outputBufferDacTime - time_info.currentTime)
        log["callback"].append(now + offset)
        log["dac"].append(now + ahead + offset)


def _close(self: Any) -> None:
    controller = getattr(self, "playout", None)
    log["sinks"].append(
        {
            "underruns": self.underruns,
            "device_underruns": getattr(self, "device_underruns", 0),
            "played_ms": self.played_ms,
            "trimmed_ms": self.trimmed_samples * 1000 / self.rate,
            "shed_ms": controller.shed * 1000 / self.rate if controller else None,
        }
    )
    _original_close(self)


def _dump() -> None:
    path = os.environ.get("BENCH_PROBE_OUT")
    if path:
        with open(path, "w") as f:
            json.dump(log, f)


devices.OutputSink._callback = _callback  # type: ignore[method-assign]
devices.OutputSink.close = _close  # type: ignore[method-assign]
devices.OutputSink.write = _write  # type: ignore[method-assign]
jitter.AdaptiveJitter.add = _add  # type: ignore[method-assign]
opus.OpusDecoder.decode = _decode  # type: ignore[method-assign]
tracks.frame_to_mono = _to_mono
atexit.register(_dump)

if __name__ == "__main__":
    sys.argv[0] = "rtc-voice"
    sys.exit(main())
