"""aiortc audio tracks of ours: `PcmTrack` plays queued 48 kHz mono PCM in real time;
`MicrophoneTrack` sends a capture device; `VoiceEncoder` makes their frames mono Opus.

aiortc's own Opus encoder upmixes a mono track to stereo and sends it at 96 kbit/s, on a worker
thread per 20 ms frame. A track with `encoder` set hands aiortc finished Opus packets instead
(aiortc's public path for pre-encoded media, as its MediaPlayer(decode=False) uses): mono at a
voice bitrate, encoded on the loop in about as long as the thread hand-off took. Mono content
is legal in the negotiated opus/48000/2 stream; every Opus decoder plays it.

aiortc's sender swallows an exception from `recv()` (it logs a warning and stops the track), so
each track here reports one through `on_error` before it stops: the call can end with a sentence
instead of a microphone that goes silent unnoticed."""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from rtc_voice.audio.pcm import (
    FRAME_SAMPLES,
    RATE,
    CapturedFrame,
    Pcm,
    conceal,
    rms_dbfs,
    to_mono,
)

TIME_BASE = fractions.Fraction(1, RATE)
VOICE_BITRATE = 40_000  # bit/s: mono wideband speech, PESQ-WB 4.2 (bench/bench_opus.py)


class VoiceEncoder:
    """Opus for speech: mono, `bitrate` bit/s (VBR), libopus's VoIP mode, 20 ms packets; one
    packet per 20 ms frame, with the frame's own timestamp.

    Not the microphone's default yet: with it, the echo room's first reply was cancelled by its
    own echo in 1 of 2-3 runs of tests/test_echo_room.py (4 of 4 passed with aiortc's stereo
    encoder); the cause is not found. Set `track.encoder` to use it (bench/bench_opus.py)."""

    def __init__(self, bitrate: int = VOICE_BITRATE) -> None:
        codec: Any = av.CodecContext.create("libopus", "w")
        codec.bit_rate = bitrate
        codec.format = "s16"
        codec.layout = "mono"
        codec.sample_rate = RATE
        codec.time_base = TIME_BASE
        codec.options = {"application": "voip"}
        self.codec = codec
        self.bitrate = bitrate

    def encode(self, frame: av.AudioFrame) -> av.Packet[Any]:
        packets = self.codec.encode(frame)
        if len(packets) != 1:  # libopus codes each whole 20 ms frame at once
            raise RuntimeError(f"the Opus encoder gave {len(packets)} packets for one frame")
        packet: av.Packet[Any] = packets[0]
        packet.pts = frame.pts  # the codec's own starts at minus its look-ahead
        packet.time_base = TIME_BASE
        return packet


def make_frame(samples: Pcm, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = RATE
    frame.pts = pts
    frame.time_base = TIME_BASE
    return frame


def frame_to_mono(frame: object) -> Pcm:
    """Mono int16 samples of what a remote audio track's recv() returned (aiortc's Opus
    decoder gives s16 stereo frames)."""
    if not isinstance(frame, av.AudioFrame) or frame.format.name != "s16":
        raise TypeError(f"expected an s16 audio frame, got {frame!r}")
    samples: Pcm = frame.to_ndarray().reshape(-1).astype(np.int16, copy=False)
    return to_mono(samples, len(frame.layout.channels))  # PyAV 12 has no nb_channels


MAX_CONCEAL_SAMPLES = RATE // 10  # fill at most 100 ms: a longer gap is an outage, not a loss


async def receive_pcm(track: MediaStreamTrack, deliver: Callable[[Pcm], None]) -> None:
    """Hand each frame of a remote audio track to `deliver` as mono int16, until it ends.
    A frame missing from the stream (its timestamp skips: a lost packet the jitter buffer gave
    up on) is filled with a short fade of the last frame (`conceal`)."""
    last: Pcm | None = None
    expected: int | None = None
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        samples = frame_to_mono(frame)
        pts = getattr(frame, "pts", None)
        if isinstance(pts, int):
            if expected is not None and last is not None and 0 < pts - expected:
                deliver(conceal(last, min(pts - expected, MAX_CONCEAL_SAMPLES)))
            expected = pts + len(samples)
        last = samples
        deliver(samples)


class GuardedTrack(MediaStreamTrack):
    """A track whose frame source (`_next_frame`) may fail: the failure goes to `on_error`."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.on_error: Callable[[BaseException], None] | None = None
        self.encoder: VoiceEncoder | None = None  # set: recv() gives Opus packets

    async def recv(self) -> av.AudioFrame | av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        try:
            frame = await self._next_frame()
            return frame if self.encoder is None else self.encoder.encode(frame)
        except (MediaStreamError, asyncio.CancelledError):
            raise
        except Exception as exc:
            if self.on_error is not None:
                self.on_error(exc)
            self.stop()
            raise MediaStreamError(f"{type(exc).__name__}: {exc}") from exc

    async def _next_frame(self) -> av.AudioFrame:
        raise NotImplementedError


class PcmTrack(GuardedTrack):
    """20 ms frames paced by the wall clock: queued PCM while there is some, then silence.

    Used for the local server's replies and for a WAV file standing in for a microphone.
    `played_ms` counts what went out since the last `play`; `on_drained` fires when the queue
    runs dry; `clear` drops the rest at once (barge-in).
    """

    kind = "audio"

    def __init__(self, on_drained: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._buffer = np.zeros(0, dtype=np.int16)
        self._position = 0
        self._start: float | None = None
        self._pts = 0
        self.played_samples = 0
        self.muted = False
        self.on_drained = on_drained
        self.tap: Callable[[Pcm], None] | None = None  # sees every frame as sent
        self.level_dbfs = -120.0
        self.max_late_ms = 0.0  # worst lateness of a queued-audio frame against its schedule

    def play(self, samples: Pcm) -> None:
        self._buffer = np.concatenate([self._buffer[self._position :], samples])
        self._position = 0
        self.played_samples = 0

    def clear(self) -> None:
        self._buffer = np.zeros(0, dtype=np.int16)
        self._position = 0

    @property
    def playing(self) -> bool:
        return self._position < len(self._buffer)

    @property
    def played_ms(self) -> float:
        return self.played_samples * 1000 / RATE

    async def _next_frame(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._pts / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            elif self.playing:  # idle silence may slip unheard; queued audio may not
                self.max_late_ms = max(self.max_late_ms, -wait * 1000)
        was_playing = self.playing
        chunk = self._buffer[self._position : self._position + FRAME_SAMPLES]
        self._position += len(chunk)
        self.played_samples += len(chunk)
        if self.muted:
            chunk = np.zeros(FRAME_SAMPLES, np.int16)
        elif len(chunk) < FRAME_SAMPLES:
            chunk = np.concatenate([chunk, np.zeros(FRAME_SAMPLES - len(chunk), np.int16)])
        self.level_dbfs = rms_dbfs(chunk)
        if self.tap is not None:
            self.tap(chunk)
        frame = make_frame(chunk, self._pts)
        self._pts += FRAME_SAMPLES
        if was_playing and not self.playing and self.on_drained is not None:
            self.on_drained()
        return frame


STALL_SECONDS = 1.0  # no frame from the device for this long: it is gone or stuck
FIRST_FRAME_SECONDS = 5.0  # streams take a while to start (PulseAudio: up to 2 s); not a stall
SILENT_DBFS = -80.0  # below this a "microphone" is delivering nothing (muted or zeros)


class SilenceWatch:
    """Pure: notices input that stays (near) silent, the classic missing-permission symptom."""

    def __init__(self, after_ms: float = 4000) -> None:
        self.after_ms = after_ms
        self.silent_ms = 0.0
        self.tripped = False

    def feed(self, level_dbfs: float, frame_ms: float) -> bool:
        """True once, when silence has lasted `after_ms`."""
        self.silent_ms = self.silent_ms + frame_ms if level_dbfs < SILENT_DBFS else 0.0
        if self.silent_ms >= self.after_ms and not self.tripped:
            self.tripped = True
            return True
        if self.silent_ms == 0.0:
            self.tripped = False
        return False


class MicrophoneTrack(GuardedTrack):
    """The microphone as an aiortc track: 20 ms 48 kHz mono s16 frames from an InputSource,
    with mute (silence, timing kept), input level, and a silence watchdog."""

    kind = "audio"

    def __init__(self, source: Any, on_silent: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.source = source
        self.on_stalled: Callable[[], None] | None = None
        self._stalled = False
        self.muted = False
        self.level_dbfs = -120.0
        self.on_silent = on_silent
        self.watch = SilenceWatch()
        self.tap: Callable[[Pcm], None] | None = None  # sees every frame as sent
        self.latencies_ms: list[float] = []  # capture -> handed to aiortc, for benchmarks
        self._pts = 0
        self._started = False  # the stall watch begins with the device's first frame

    async def _next_frame(self) -> av.AudioFrame:
        limit = STALL_SECONDS if self._started else FIRST_FRAME_SECONDS
        captured = await self.source.read(stall_after=limit)
        self._started = self._started or captured is not None
        if captured is None:  # unplugged or stalled: say so once, keep the call's timing
            if not self._stalled and self.on_stalled is not None:
                self.on_stalled()
            self._stalled = True
            captured = CapturedFrame(np.zeros(FRAME_SAMPLES, np.int16), time.monotonic())
        else:
            self._stalled = False
        samples = captured.samples
        self.level_dbfs = rms_dbfs(samples)
        heard = self.level_dbfs if captured.raw_dbfs is None else captured.raw_dbfs
        if not self.muted and self.watch.feed(heard, 20) and self.on_silent:
            self.on_silent()
        if self.muted:
            samples = np.zeros(FRAME_SAMPLES, np.int16)
        if self.tap is not None:
            self.tap(samples)
        frame = make_frame(samples, self._pts)
        self._pts += FRAME_SAMPLES
        if len(self.latencies_ms) < 100_000:
            self.latencies_ms.append((time.monotonic() - captured.captured_at) * 1000)
        return frame

    def stop(self) -> None:
        super().stop()
        self.source.close()
