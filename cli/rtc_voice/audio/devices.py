"""The microphone and speaker streams, on top of audio/catalog.py (devices, selection, probing,
re-exported here so callers keep one import).

PortAudio callbacks here only copy samples: the input callback hands each block to the event
loop with `call_soon_threadsafe`; the output callback fills its buffer from a preallocated ring
(silence when it runs dry, counted as an underrun). Resampling and levels happen on the loop.

The streams are sounddevice's raw ones: a callback gets PortAudio's buffer itself (a cffi
buffer), not a NumPy array sounddevice builds for it on every call. The speaker calls back 200
times a second, so what its callback costs counts (bench/bench_devices_stream.py).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from rtc_voice.audio.catalog import (
    KINDS,
    NO_DEVICES_HINT,
    PORTAUDIO_HINT,
    Device,
    Kind,
    ProbeResult,
    list_devices,
    probe,
    probe_all,
    quiet_stderr,
    select,
    silence_alsa_errors,
    sounddevice,
)
from rtc_voice.audio.pcm import (
    FRAME_SAMPLES,
    RATE,
    SILENCE_DBFS,
    CapturedFrame,
    Pcm,
    Ring,
    rms_dbfs,
)
from rtc_voice.audio.playout import PlayoutController
from rtc_voice.errors import AudioError

OUTPUT_BLOCKS_PER_SECOND = 200  # 5 ms speaker blocks: PulseAudio then buffers 10 ms, not 20-30
INPUT_BLOCKS_PER_SECOND = 50  # 20 ms microphone blocks: one Opus frame each
STALL_SECONDS = 1.0  # a started speaker silent for this long (between callbacks) has stopped
FIRST_CALLBACK_SECONDS = 5.0  # streams may take a while to start calling back (PulseAudio: 2 s)

__all__ = [
    "KINDS",
    "NO_DEVICES_HINT",
    "PORTAUDIO_HINT",
    "Device",
    "InputSource",
    "Kind",
    "OutputSink",
    "ProbeResult",
    "list_devices",
    "probe",
    "probe_all",
    "quiet_stderr",
    "select",
    "silence_alsa_errors",
    "sounddevice",
]


def _open(
    kind: Kind,
    device: Device,
    callback: Any,
    channels: int,
    finished: Callable[[], None] | None = None,
) -> tuple[Any, int]:
    """Open at 48 kHz if the device can, else at its own rate (the caller resamples)."""
    sd = sounddevice()
    cls = sd.RawInputStream if kind == "input" else sd.RawOutputStream
    rates = [RATE] + (
        [int(device.default_samplerate)] if int(device.default_samplerate) != RATE else []
    )
    last: Exception | None = None
    for rate in rates:
        try:
            with quiet_stderr():
                stream = cls(
                    device=device.index,
                    samplerate=rate,
                    channels=channels,
                    dtype="int16",
                    blocksize=rate
                    // (INPUT_BLOCKS_PER_SECOND if kind == "input" else OUTPUT_BLOCKS_PER_SECOND),
                    latency="low",
                    callback=callback,
                    finished_callback=finished,
                )
            return stream, rate
        except (sd.PortAudioError, ValueError) as exc:
            last = exc
    label = "microphone" if kind == "input" else "speaker"
    raise AudioError(
        f"Cannot open {label} {device}: {last}.",
        hint="Is it in use by another program or unplugged? `rtc-voice devices --probe` tests "
        "every device.",
    ) from None


class _StreamResampler:
    """Keeps PyAV's resampler state across blocks (no clicks at block edges)."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        import av

        self.rate_in = rate_in
        self._av = av
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=rate_out)

    def __call__(self, samples: Pcm) -> Pcm:
        frame = self._av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples.reshape(1, -1)), format="s16", layout="mono"
        )
        frame.sample_rate = self.rate_in
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.int16) if out else np.zeros(0, np.int16)


def _latency(later: float, earlier: float, previous: float) -> float:
    """A PortAudio clock difference in seconds, or `previous` when the host reports nonsense
    (some give zeros, or times on another clock)."""
    value = later - earlier
    return value if 0.0 <= value < 1.0 else previous


class InputSource:
    """A microphone as 20 ms 48 kHz mono frames on the event loop (`await read()`).

    `process`, when set, transforms each frame on the loop before it is queued (the echo
    canceller); `input_latency_s` is PortAudio's ADC-to-callback time of the latest block.
    """

    def __init__(self, device: Device, *, max_frames: int = 25, open_now: bool = True) -> None:
        self.device = device
        self.dropped_frames = 0
        self.overflows = 0
        self._frames: collections.deque[CapturedFrame] = collections.deque()
        self._max_frames = max_frames
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_at = 0.0
        self._ready = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._stream: Any = None
        self.rate = RATE
        self._resample: _StreamResampler | None = None
        self._closed = False
        self.process: Callable[[Pcm], Pcm] | None = None
        self.input_latency_s = 0.0
        self.blocks = 0
        if open_now:
            self.open()

    def open(self) -> None:
        """Open the PortAudio stream (not started). `open_now=False` and this on a worker
        thread let `talk` open the device while its call connects (PortAudio's calls release
        the GIL); the source can be read (and wrapped in a track) before."""
        stream, rate = _open("input", self.device, self._callback, 1)
        self._resample = _StreamResampler(rate, RATE) if rate != RATE else None
        self.rate, self._stream = rate, stream

    def start(self) -> None:
        assert self._stream is not None, "InputSource.start() before open()"
        with quiet_stderr():
            self._stream.start()

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        # PortAudio's thread: copy and hand over, nothing else. `indata` is PortAudio's buffer
        # (mono int16 bytes), valid only during this call.
        block = bytearray(indata)
        latency = _latency(time_info.currentTime, time_info.inputBufferAdcTime, -1.0)
        try:
            self._loop.call_soon_threadsafe(
                self._deliver,
                block,
                time.monotonic(),
                bool(status and status.input_overflow),
                latency,
            )
        except RuntimeError:  # the loop has closed under us
            pass

    def _deliver(
        self, data: bytearray | Pcm, captured_at: float, overflow: bool, latency: float = -1.0
    ) -> None:
        self.overflows += overflow
        self.blocks += 1
        if latency >= 0.0:
            self.input_latency_s = latency
        block: Pcm = np.frombuffer(data, np.int16) if isinstance(data, bytearray) else data
        if self._resample is not None:
            block = self._resample(block)
        if len(self._pending) == 0:
            self._pending_at = captured_at
            self._pending = block  # the usual case: one whole frame, no copy
        else:
            self._pending = np.concatenate([self._pending, block])
        while len(self._pending) >= FRAME_SAMPLES:
            if len(self._pending) == FRAME_SAMPLES:  # nothing shares it: hand it on as it is
                samples, self._pending = self._pending, self._pending[:0]
            else:
                samples = self._pending[:FRAME_SAMPLES].copy()
                self._pending = self._pending[FRAME_SAMPLES:]
            raw_dbfs = rms_dbfs(samples)
            if self.process is not None:
                samples = self.process(samples)
            frame = CapturedFrame(samples, self._pending_at, raw_dbfs)
            self._pending_at = captured_at
            if len(self._frames) >= self._max_frames:
                self._frames.popleft()
                self.dropped_frames += 1
            self._frames.append(frame)
        if self._frames:
            self._ready.set()

    async def read(self, stall_after: float | None = None) -> CapturedFrame | None:
        """The next frame; None if none came within `stall_after` s (device gone or stuck)."""
        if self._frames:  # already here: no timer to arm
            return self._frames.popleft()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(stall_after):
                while not self._frames:
                    if self._closed:
                        raise AudioError(f"The microphone {self.device} stopped.")
                    self._ready.clear()
                    await self._ready.wait()
                return self._frames.popleft()
        return None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ready.set()
        if self._stream is None:  # never opened
            return
        with quiet_stderr(), contextlib.suppress(Exception):
            self._stream.stop()
            self._stream.close()


class OutputSink:
    """A speaker fed with 48 kHz mono PCM; keeps a small buffer at a target depth.

    An underrun is the buffer running dry while audio keeps coming (a gap the listener hears);
    running dry at the end of the audio is not one. `device_underruns` counts the blocks the
    device itself reported as played late (PortAudio's output underflow: the callback came too
    late, whatever the buffer held).

    The stream asks for 5 ms blocks: with PortAudio's low latency, PulseAudio then holds 10 ms
    after the callback instead of 20-30 ms with 10 ms blocks.

    Playback starts (and restarts after running dry) once `prime_ms` is buffered. `playout`
    (audio/playout.py) brings audio that piles up beyond what the arrival jitter needs back
    down, gently; a buffer over `max_ms` is cut back to `max_ms` at once (a safety net), and
    until the device consumes in real time (`wait_running`) only the newest `prime_ms` is kept.

    With `tap_enabled`, the callback also copies every block it hands the device (silence after
    a flush or an underrun included) into a preallocated ring: the echo canceller's far end,
    drained on the loop with `take_played()`. `output_latency_s` is PortAudio's callback-to-DAC
    time. A speaker that stops (stream error, or no callbacks for `STALL_SECONDS`) is reported
    once through `on_stalled`.
    """

    def __init__(
        self,
        device: Device,
        *,
        prime_ms: int = 30,
        max_ms: int = 120,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """`loop`: the event loop it reports to, when made on a worker thread (`talk` opens
        the speaker while its call connects); by default the running one."""
        self.device = device
        self.description = f"speaker {device}"
        self._lock = threading.Lock()
        self._stream, self.rate = _open("output", device, self._callback, 1, self._finished)
        self._ring = Ring(self.rate)  # one second; never reached, trimmed at max_ms
        self._prime = self.rate * prime_ms // 1000
        self._max = self.rate * max_ms // 1000
        self._primed = False
        self._starved = False
        self._resample = _StreamResampler(RATE, self.rate) if self.rate != RATE else None
        self.played_samples = 0
        self.underruns = 0
        self.device_underruns = 0
        self.trimmed_samples = 0
        self.level_dbfs = SILENCE_DBFS
        self._closed = False
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._running = asyncio.Event()
        self._announced = False
        self._first_callback = 0.0
        self._last_callback = 0.0
        self._tap = Ring(self.rate * 2)
        self._tap_lock = threading.Lock()
        self.tap_enabled = False
        self.output_latency_s = 0.0
        self.on_stalled: Callable[[], None] | None = None
        self.stalled = False
        self._started_at: float | None = None
        self.playout = PlayoutController(self.rate)

    def start(self) -> None:
        with quiet_stderr():
            self._stream.start()
        self._started_at = time.monotonic()

    async def wait_running(self) -> None:
        """Until the device consumes in real time. Streams start with a burst of callbacks that
        pre-fill the device buffer, and some (PulseAudio) then pause for up to a second; audio
        queued before that would pile up. Real time = a callback 50 ms after the first."""
        await self._running.wait()

    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        # PortAudio's thread: copy from the ring, fill the rest with silence, count. `outdata`
        # is PortAudio's buffer (mono int16 bytes); it is filled in place, under the lock, so a
        # trim in `write` can never touch samples on their way out.
        now = time.monotonic()
        self._last_callback = now
        if status and status.output_underflow:
            self.device_underruns += 1
        self.output_latency_s = _latency(
            time_info.outputBufferDacTime, time_info.currentTime, self.output_latency_s
        )
        if not self._announced:
            if not self._first_callback:
                self._first_callback = now
            elif now - self._first_callback >= 0.05:
                self._announced = True
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._running.set)
        out = np.frombuffer(outdata, np.int16)
        with self._lock:
            if not self._primed and len(self._ring) >= self._prime:
                self._primed = True
            got = self._ring.read_into(out) if self._primed else 0
            if self._primed and got < frames:
                self._starved = True  # an underrun if more audio follows (see write)
                self._primed = False
            if got < frames:
                out[got:] = 0
        self.played_samples += got
        if self.tap_enabled:
            with self._tap_lock:
                self._tap.write(out)

    def _finished(self) -> None:
        # PortAudio's thread, once the stream has stopped: by close(), or by an error.
        if not self._closed:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._report_stall)

    def _report_stall(self) -> None:
        if not self.stalled and not self._closed:
            self.stalled = True
            if self.on_stalled is not None:
                self.on_stalled()

    def check_running(self, now: float | None = None) -> bool:
        """False (and reported once) when the started stream has stopped calling back."""
        if self._started_at is None or self._closed:
            return True
        now = time.monotonic() if now is None else now
        if self._announced:  # consuming in real time: callbacks come every few ms
            last, limit = self._last_callback, STALL_SECONDS
        else:  # starting (PulseAudio may pause a second after its first burst)
            last, limit = self._started_at, FIRST_CALLBACK_SECONDS
        if now - last > limit:
            self._report_stall()
            return False
        return True

    def take_played(self) -> Pcm:
        """Everything the speaker has played since the last call (device rate, mono)."""
        with self._tap_lock:
            out = np.empty(len(self._tap), np.int16)
            self._tap.read_into(out)
        return out

    def write(self, samples: Pcm) -> None:
        """Queue 48 kHz mono samples for playback."""
        self.check_running()
        self.level_dbfs = rms_dbfs(samples)
        if self._resample is not None:
            samples = self._resample(samples)
        samples = self.playout.process(time.monotonic(), len(self._ring), samples)
        with self._lock:
            if self._starved:
                self.underruns += 1  # ran dry mid-stream: the listener heard a gap
                self._starved = False
            self._ring.write(samples)
            # before the device plays in real time, what piles up would only add latency
            excess = len(self._ring) - (self._max if self._running.is_set() else self._prime)
            if excess > 0:
                removed = self._ring.discard(excess)
                self.trimmed_samples += removed
                self.playout.note_removed(removed)

    def flush(self) -> float:
        """Drop everything not yet played (barge-in); returns the milliseconds dropped."""
        with self._lock:
            dropped = self._ring.clear()
            self._primed = False
            self._starved = False
        self.playout.reset()
        self.level_dbfs = SILENCE_DBFS
        return dropped * 1000 / self.rate

    @property
    def depth_ms(self) -> float:
        return len(self._ring) * 1000 / self.rate

    @property
    def played_ms(self) -> float:
        return self.played_samples * 1000 / self.rate

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with quiet_stderr(), contextlib.suppress(Exception):
            self._stream.stop()
            self._stream.close()
