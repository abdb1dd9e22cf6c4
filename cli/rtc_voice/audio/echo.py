"""Acoustic echo cancellation of the microphone: WebRTC AEC3 (livekit's audio processing module;
this is the only module that imports `livekit`), the far-end timeline, a residual-echo gate and
the echo meter.

Data flow (all on the event loop, never in a PortAudio callback):

    speaker callback --copies what it played--> OutputSink tap ring
    microphone frame arrives (InputSource delivery)
        -> EchoPath: drain the tap, resample to 48 kHz, feed every played 10 ms frame to AEC3
        -> AEC3 processes the microphone's 10 ms frames (stream delay from PortAudio's clocks)
        -> ResidualGate holds back echo left over while the far end plays (see its docstring)
        -> EchoMeter measures how much echo was removed (shown on the call screen)

While nothing plays there is nothing to cancel: a second after the speaker falls silent (and
the echo's trip plus a room's reverb later, if that is longer) the stage rests AEC3 and passes
the microphone as it is, until the speaker plays again (`rest_in_silence`; not with noise
suppression, which runs in the same module). AEC3 costs about 3 points of a core while it runs.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rtc_voice.audio.pcm import RATE, SILENCE_DBFS, Pcm, mean_square, power_dbfs, rms_dbfs
from rtc_voice.errors import AudioError

if TYPE_CHECKING:
    from rtc_voice.audio.devices import InputSource, OutputSink

TEN_MS = RATE // 100  # AEC3 works on 10 ms frames
MAX_FAR_BACKLOG = RATE * 3 // 10  # never feed more than 300 ms of old far end in one go
ECHO_HEARD_DB = 10.0  # the canceller removing this much means there is an echo path
FAR_SILENT_DBFS = -60.0  # a far frame this quiet plays no echo worth cancelling
REST_AFTER_FRAMES = 100  # AEC3 rests after this many silent far frames, at the least...
ECHO_TAIL_MS = 500  # ...or the echo's trip (the stream delay) and a room's reverb after it
HEARD_DBFS = -70.0  # a microphone below this hears nothing (digital or near silence)
NO_LIVEKIT_HINT = (
    "Install it with `pip install livekit` (it ships wheels for Linux, macOS and Windows), or "
    'turn echo cancellation off with --no-aec or audio.echo_cancellation = "off".'
)


class Canceller(Protocol):
    """What EchoStage needs from an echo canceller: 10 ms frames of 48 kHz mono."""

    def far(self, frame: Pcm) -> None: ...

    def near(self, frame: Pcm, delay_ms: int) -> Pcm: ...


class WebRtcCanceller:
    """WebRTC's audio processing module: AEC3 and the high-pass filter, automatic gain control
    off (it made residual echo louder), noise suppression on request."""

    def __init__(self, *, noise_suppression: bool = False) -> None:
        try:
            from livekit import rtc
        except (ImportError, OSError) as exc:
            raise AudioError(
                f"Echo cancellation is unavailable: the livekit package cannot be loaded ({exc}).",
                hint=NO_LIVEKIT_HINT,
            ) from None
        self._apm = rtc.AudioProcessingModule(
            echo_cancellation=True,
            noise_suppression=noise_suppression,
            high_pass_filter=True,
            auto_gain_control=False,
        )
        self._far_bytes = bytearray(TEN_MS * 2)
        self._near_bytes = bytearray(TEN_MS * 2)
        self._far_frame = rtc.AudioFrame(self._far_bytes, RATE, 1, TEN_MS)
        self._near_frame = rtc.AudioFrame(self._near_bytes, RATE, 1, TEN_MS)
        self._far = np.frombuffer(self._far_bytes, np.int16)
        self._near = np.frombuffer(self._near_bytes, np.int16)
        self._delay_ms = -1

    def far(self, frame: Pcm) -> None:
        self._far[:] = frame
        self._apm.process_reverse_stream(self._far_frame)

    def near(self, frame: Pcm, delay_ms: int) -> Pcm:
        delay_ms = max(0, min(500, delay_ms))
        self._near[:] = frame
        if delay_ms != self._delay_ms:  # AEC3 keeps the last delay it was given; each call
            self._apm.set_stream_delay_ms(delay_ms)  # is a protobuf round trip through FFI
            self._delay_ms = delay_ms
        self._apm.process_stream(self._near_frame)
        return self._near.copy()


class ResidualGate:
    """Pure: attenuates the processed microphone while the far end is playing and the
    microphone is well below it: what echo the canceller has not (yet) removed looks like.
    A user talking over the assistant is about as loud as the assistant at the microphone and
    opens the gate at once (it then holds open for `hold_ms`).

    "Well below" is `margin_db` under the far-end envelope, except while the canceller is still
    learning the room (the first `converge_ms` of far-end sound the microphone hears anything
    during, when echo can arrive nearly as loud as the far end): then anything under the
    envelope itself is held back, and a barge-in has to be louder than the assistant. Counting
    only what the microphone hears matters: a device that delivers silence for its first
    seconds would otherwise use up the learning time before the first echo arrives.

    After that it only acts once `echo_heard` is set (the stage sets it when the canceller has
    really removed echo): with headphones there is none, and a quiet voice must not be gated.

    Levels are 10 ms RMS in dBFS. The far-end envelope is the loudest far frame of the last
    `span_ms` (it covers the echo's trip: output latency, the room, input latency).
    """

    def __init__(
        self,
        *,
        margin_db: float = 10.0,
        converging_margin_db: float = 0.0,
        converge_ms: int = 1500,
        attenuation_db: float = 30.0,
        span_ms: int = 400,
        hold_ms: int = 150,
        far_floor_dbfs: float = -55.0,
    ) -> None:
        self.margin_db = margin_db
        self.converging_margin_db = converging_margin_db
        self._converge_frames = converge_ms // 10
        self.heard_frames = 0  # 10 ms frames with far end active and a microphone not silent
        self.floor = 10 ** (-attenuation_db / 20)
        self.far_floor_dbfs = far_floor_dbfs
        self._far: collections.deque[float] = collections.deque(maxlen=max(1, span_ms // 10))
        self._envelope = SILENCE_DBFS  # max(self._far), kept current by far()
        self._hold_frames = hold_ms // 10
        self._hold = 0
        self.gain = 1.0
        self.closed_frames = 0
        self.echo_heard = False

    def far(self, level_dbfs: float) -> None:
        far = self._far
        leaving = far[0] if len(far) == far.maxlen else SILENCE_DBFS
        far.append(level_dbfs)
        if len(far) == 1 or level_dbfs >= self._envelope:
            self._envelope = level_dbfs
        elif leaving >= self._envelope:  # the loudest frame left the span: look again
            self._envelope = max(far)

    def heard(self, raw_dbfs: float) -> None:
        """The microphone's level before cancellation, once per 10 ms frame."""
        self.heard_frames += self.far_active and raw_dbfs > HEARD_DBFS

    @property
    def converging(self) -> bool:
        return self.heard_frames < self._converge_frames

    @property
    def far_envelope_dbfs(self) -> float:
        return self._envelope

    @property
    def far_active(self) -> bool:
        return self.far_envelope_dbfs >= self.far_floor_dbfs

    def target(self, processed_dbfs: float) -> float:
        """The gain this 10 ms frame should end at."""
        envelope = self.far_envelope_dbfs
        margin = self.converging_margin_db if self.converging else self.margin_db
        idle = envelope < self.far_floor_dbfs or not (self.converging or self.echo_heard)
        if idle or processed_dbfs >= envelope - margin:
            self._hold = self._hold_frames if envelope >= self.far_floor_dbfs else 0
            return 1.0
        if self._hold > 0:
            self._hold -= 1
            return 1.0
        return self.floor

    def rest(self) -> None:
        """The state a stretch of far-end silence leaves (for a stage that skipped it)."""
        self._hold = 0
        self.gain = 1.0

    def apply(self, frame: Pcm, processed_dbfs: float) -> Pcm:
        """The frame with the gate's gain, ramped over the frame (no clicks)."""
        start, end = self.gain, self.target(processed_dbfs)
        self.gain = end
        if end < 1.0:
            self.closed_frames += 1
        if start == end == 1.0:
            return frame
        ramp = np.linspace(start, end, len(frame), dtype=np.float32)
        out: Pcm = np.clip(frame * ramp, -32768, 32767).astype(np.int16)
        return out


class EchoMeter:
    """Pure: echo removed (dB), from energy before and after cancellation over the last ~second
    of frames where the far end was playing and the microphone heard something."""

    def __init__(self, time_constant_frames: int = 100) -> None:
        self._decay = 1 - 1 / time_constant_frames
        self._before = 0.0
        self._after = 0.0
        self._frames = 0

    def update(self, before: Pcm, after: Pcm) -> None:
        self.update_power(mean_square(before), mean_square(after))

    def update_power(self, before: float, after: float) -> None:
        """The same, from each frame's mean square (what `mean_square` gives)."""
        self._before = self._before * self._decay + before
        self._after = self._after * self._decay + after
        self._frames += 1

    @property
    def removed_db(self) -> float | None:
        """None until there has been echo to measure (a quarter second of it)."""
        if self._frames < 25 or self._before <= 0:
            return None
        return 10 * math.log10(self._before / max(self._after, 1e-3))


class EchoStage:
    """Pure around its canceller: one timeline of far-end (played) and near-end (microphone)
    10 ms frames, the residual gate, and the meter. With `rest_in_silence`, AEC3 rests while
    the speaker is silent (the module's docstring says when)."""

    def __init__(
        self,
        canceller: Canceller,
        gate: ResidualGate | None = None,
        *,
        rest_in_silence: bool = False,
    ) -> None:
        self.canceller = canceller
        self.gate = gate or ResidualGate()
        self.meter = EchoMeter()
        self._far = np.zeros(0, np.int16)
        self.far_frames = 0
        self.near_frames = 0
        self.dropped_far = 0
        self.rest_in_silence = rest_in_silence
        self.resting = False  # AEC3 is given nothing: the speaker has been silent long enough
        self.rested_frames = 0  # microphone frames passed without AEC3
        self._far_quiet = 0  # far frames in a row below FAR_SILENT_DBFS
        self._waking = False  # the first frame after a rest: faded from raw to processed
        self._rest_balance = 0  # far frames minus microphone frames AEC3 was not given

    def played(self, samples: Pcm) -> None:
        """48 kHz mono samples the speaker has just played (any length, silence included)."""
        if len(samples):
            self._far = np.concatenate([self._far, samples]) if len(self._far) else samples

    def _wake(self) -> None:
        """End a rest with AEC3's two streams where they were against each other: AEC3 aligns
        the far end with the microphone by counting frames, and a rest that left out more of
        one than of the other would shift that by 10-20 ms (it then removes ~30 dB less for
        a second). Silence makes up the difference."""
        self.resting = False
        self._waking = True
        self.gate.rest()
        silence = np.zeros(TEN_MS, np.int16)
        for _ in range(self._rest_balance):
            self.canceller.far(silence)
        for _ in range(-self._rest_balance):
            self.canceller.near(silence, 0)
        self._rest_balance = 0

    def _feed_far(self) -> None:
        if len(self._far) > MAX_FAR_BACKLOG:  # a burst (stream start): keep the newest
            drop = (len(self._far) - MAX_FAR_BACKLOG) // TEN_MS * TEN_MS
            self.dropped_far += drop // TEN_MS
            self._far = self._far[drop:]
        usable = len(self._far) // TEN_MS * TEN_MS
        for start in range(0, usable, TEN_MS):
            frame = self._far[start : start + TEN_MS]
            level = rms_dbfs(frame)
            if level < FAR_SILENT_DBFS:
                self._far_quiet += 1
            else:
                self._far_quiet = 0
                if self.resting:  # the speaker plays again: AEC3 first, then its echo
                    self._wake()
            if self.resting:
                self._rest_balance += 1
            else:
                self.canceller.far(frame)
            self.gate.far(level)
            self.far_frames += 1
        self._far = self._far[usable:]

    def process(self, near: Pcm, delay_ms: int = 0) -> Pcm:
        """Microphone samples (a multiple of 10 ms) with the echo removed; every far frame
        played so far is fed first."""
        out = np.empty_like(near)
        gate = self.gate
        rest_after = max(REST_AFTER_FRAMES, (delay_ms + ECHO_TAIL_MS) // 10)
        for start in range(0, len(near) - TEN_MS + 1, TEN_MS):
            self._feed_far()
            frame = near[start : start + TEN_MS]
            if self.resting:
                out[start : start + TEN_MS] = frame
                self.near_frames += 1
                self.rested_frames += 1
                self._rest_balance -= 1
                continue
            cleaned = self.canceller.near(frame, delay_ms)
            raw_power = mean_square(frame)
            raw_dbfs = power_dbfs(raw_power)
            gate.heard(raw_dbfs)
            cleaned_power = mean_square(cleaned)
            if gate.far_active and raw_dbfs > HEARD_DBFS:
                self.meter.update_power(raw_power, cleaned_power)
                removed = self.meter.removed_db
                if removed is not None and removed >= ECHO_HEARD_DB:
                    gate.echo_heard = True
            result = gate.apply(cleaned, power_dbfs(cleaned_power))
            if self._waking:  # from the raw microphone to AEC3's output without a click
                result = _crossfade(frame, result)
                self._waking = False
            if self.rest_in_silence and self._far_quiet >= rest_after:
                self.resting = True  # and from AEC3's output to the raw microphone
                result = _crossfade(result, frame)
            out[start : start + TEN_MS] = result
            self.near_frames += 1
        return out

    @property
    def removed_db(self) -> float | None:
        return self.meter.removed_db

    @property
    def far_active(self) -> bool:
        return self.gate.far_active


def _crossfade(before: Pcm, after: Pcm) -> Pcm:
    """One frame that starts as `before` and ends as `after`."""
    ramp = np.linspace(0.0, 1.0, len(before), dtype=np.float32)
    mixed = before * (1 - ramp) + after * ramp
    out: Pcm = np.clip(mixed, -32768, 32767).astype(np.int16)
    return out


class EchoPath:
    """Connects a speaker and a microphone stream through an EchoStage: installed as the
    microphone's frame processor, it drains what the speaker played and cancels it."""

    def __init__(self, source: InputSource, sink: OutputSink, stage: EchoStage) -> None:
        from rtc_voice.audio.devices import _StreamResampler

        self.source = source
        self.sink = sink
        self.stage = stage
        self._resample = _StreamResampler(sink.rate, RATE) if sink.rate != RATE else None
        sink.tap_enabled = True
        source.process = self

    @property
    def delay_ms(self) -> int:
        """PortAudio's view of the trip: output buffer to the DAC, ADC to the input callback."""
        return round((self.sink.output_latency_s + self.source.input_latency_s) * 1000)

    def drain(self) -> Pcm:
        """What the speaker played since the last call, at 48 kHz."""
        played = self.sink.take_played()
        if self._resample is not None and len(played):
            played = self._resample(played)
        return played

    def __call__(self, near: Pcm) -> Pcm:
        self.stage.played(self.drain())
        return self.stage.process(near, self.delay_ms)

    def close(self) -> None:
        self.sink.tap_enabled = False
        self.source.process = None


Mode = str  # "auto" | "on" | "off"


def enable(
    mic_track: Any, sink: Any, mode: Mode, *, noise_suppression: bool
) -> tuple[EchoPath | None, str | None]:
    """Echo cancellation for a call, if `mode` and the ends allow it: (path, notice). "auto"
    turns it on when both ends are devices; "on" insists (an error if it cannot)."""
    if not wanted(mic_track, sink, mode):
        return None, None
    canceller, notice = make_canceller(mode, noise_suppression=noise_suppression)
    if canceller is None:
        return None, notice
    return attach(mic_track, sink, canceller, rest_in_silence=not noise_suppression), notice


def wanted(mic_track: Any, sink: Any, mode: Mode) -> bool:
    """Whether a call with these ends gets echo cancellation: with "auto" or "on" when both are
    devices; "on" with a file or no output is an error, raised here (before the call)."""
    from rtc_voice.audio.devices import OutputSink
    from rtc_voice.audio.tracks import MicrophoneTrack

    if mode == "off":
        return False
    devices = isinstance(mic_track, MicrophoneTrack) and isinstance(sink, OutputSink)
    if not devices and mode == "on":
        raise AudioError(
            "Echo cancellation needs a microphone and a speaker device; this call uses a "
            "file or no output.",
            hint='Set audio.echo_cancellation = "auto" to use it only when it applies.',
        )
    return devices


def make_canceller(mode: Mode, *, noise_suppression: bool) -> tuple[Canceller | None, str | None]:
    """AEC3, or (None, why not) when livekit cannot load and `mode` is "auto" ("on": the error).
    Loads livekit (~40 ms of CPU): callers on an event loop run it on a worker thread."""
    try:
        return WebRtcCanceller(noise_suppression=noise_suppression), None
    except AudioError as exc:
        if mode == "on":
            raise
        return None, f"{exc.message} Echo cancellation is off for this call."


def attach(
    mic_track: Any, sink: OutputSink, canceller: Canceller, *, rest_in_silence: bool = False
) -> EchoPath:
    """Put `canceller` between the microphone's stream and the call, fed what `sink` plays
    (running streams included: on the event loop, where the microphone's frames arrive).
    `rest_in_silence`: see EchoStage (not with noise suppression: it would stop too)."""
    stage = EchoStage(canceller, rest_in_silence=rest_in_silence)
    return EchoPath(mic_track.source, sink, stage)


# --- the echo test (`rtc-voice devices --echo-test`) -------------------------------------------

TEST_SECONDS = 4.0
NO_ECHO_DBFS = -70.0  # a microphone this quiet while the speaker plays does not hear it


def test_sound(seconds: float = TEST_SECONDS, dbfs: float = -20.0) -> Pcm:
    """Speech-like: noise shaped like a voice (energy under 4 kHz), in syllables four times a
    second, so the canceller meets what it will meet in a call. Deterministic."""
    rng = np.random.default_rng(2024)
    count = int(RATE * seconds)
    noise = rng.standard_normal(count + 64)
    kernel = np.hanning(12)  # a gentle low-pass
    voiced = np.convolve(noise, kernel / kernel.sum(), mode="same")[:count]
    t = np.arange(count) / RATE
    syllables = 0.55 + 0.45 * np.sin(2 * math.pi * 4 * t) * np.sin(2 * math.pi * 0.7 * t + 1)
    wave = voiced * np.clip(syllables, 0.05, 1)
    fade = RATE // 50
    wave[:fade] *= np.linspace(0, 1, fade)
    wave[-fade:] *= np.linspace(1, 0, fade)
    wave *= 32768 * 10 ** (dbfs / 20) / np.sqrt(np.mean(wave**2))
    out: Pcm = np.clip(wave, -32768, 32767).astype(np.int16)
    return out


@dataclass(frozen=True)
class EchoReport:
    played_dbfs: float
    echo_dbfs: float  # the microphone while the speaker played
    echo_level_db: float  # echo relative to what was played
    delay_ms: float | None  # speaker callback to microphone callback; None without echo
    removed_db: float | None  # by the canceller over the last second; None without echo

    @property
    def heard(self) -> bool:
        return self.echo_dbfs > NO_ECHO_DBFS and self.delay_ms is not None

    @property
    def verdict(self) -> str:
        if not self.heard or self.removed_db is None:
            return (
                "Your microphone does not hear your speaker "
                f"({self.echo_dbfs:.0f} dBFS while it played): there is no echo to cancel."
            )
        reach = (
            f"Your speaker reaches the microphone at {self.echo_level_db:.0f} dB, "
            f"{self.delay_ms:.0f} ms later; echo cancellation removes {self.removed_db:.0f} dB"
        )
        if self.removed_db >= 25:
            return reach + ": fine."
        if self.removed_db >= 15:
            return (
                reach + ": some echo may get through. If the assistant interrupts itself, lower "
                "the speaker volume or use headphones."
            )
        return (
            reach + ": too little. The assistant will likely interrupt itself: use headphones "
            "(then --no-aec) or lower the speaker volume."
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "played_dbfs": round(self.played_dbfs, 1),
            "echo_dbfs": round(self.echo_dbfs, 1),
            "echo_level_db": round(self.echo_level_db, 1),
            "delay_ms": None if self.delay_ms is None else round(self.delay_ms, 1),
            "removed_db": None if self.removed_db is None else round(self.removed_db, 1),
            "verdict": self.verdict,
        }


def _lag(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    """The k where a[i] best matches b[i + k], and how clear that match is (peak / RMS)."""
    n = 1 << math.ceil(math.log2(len(a) + len(b)))
    spectrum = np.fft.rfft(a.astype(np.float64), n) * np.conj(np.fft.rfft(b.astype(np.float64), n))
    corr = np.fft.irfft(spectrum, n)
    index = int(np.argmax(np.abs(corr)))
    clarity = float(np.abs(corr[index]) / (np.sqrt(np.mean(corr**2)) + 1e-12))
    return (-index if index < n // 2 else n - index), clarity


def analyse(
    played: Pcm, raw: Pcm, cleaned: Pcm, lead_samples: int, play_from: int, play_to: int
) -> EchoReport:
    """Pure: the echo test's figures. `played`, `raw` and `cleaned` are 48 kHz; the far end ran
    `lead_samples` ahead of the microphone on the loop's clock; the sound was in
    played[play_from:play_to]."""
    played_dbfs = rms_dbfs(played[play_from:play_to])
    k, clarity = _lag(raw.astype(np.float64), played.astype(np.float64))
    delay = lead_samples - k
    heard_from = max(0, play_from - lead_samples + max(delay, 0))
    heard_to = min(len(raw), play_to - lead_samples + max(delay, 0))
    echo_dbfs = rms_dbfs(raw[heard_from:heard_to]) if heard_to > heard_from else SILENCE_DBFS
    if clarity < 8 or echo_dbfs <= NO_ECHO_DBFS or not 0 <= delay < RATE:
        return EchoReport(played_dbfs, echo_dbfs, echo_dbfs - played_dbfs, None, None)
    last = slice(max(heard_from, heard_to - RATE), heard_to)
    removed = rms_dbfs(raw[last]) - rms_dbfs(cleaned[last])
    return EchoReport(
        played_dbfs, echo_dbfs, echo_dbfs - played_dbfs, delay * 1000 / RATE, max(0.0, removed)
    )


async def echo_test(
    input_device: Any, output_device: Any, *, noise_suppression: bool = False
) -> EchoReport:
    """Play the test sound on the speaker, record the microphone through the canceller, and
    measure. Real devices (audio.devices.Device)."""
    from rtc_voice.audio import devices

    canceller = WebRtcCanceller(noise_suppression=noise_suppression)
    sink = devices.OutputSink(output_device)
    source = devices.InputSource(input_device, max_frames=100_000)
    stage = EchoStage(canceller, ResidualGate(attenuation_db=0.0))
    path = EchoPath(source, sink, stage)
    played: list[Pcm] = []
    raw: list[Pcm] = []
    cleaned: list[Pcm] = []
    leads: list[int] = []
    fed = 0

    def process(near: Pcm) -> Pcm:
        nonlocal fed
        far = path.drain()
        played.append(far)
        fed += len(far)
        stage.played(far)
        raw.append(near)
        leads.append(fed - sum(len(r) for r in raw))
        out = stage.process(near, path.delay_ms)
        cleaned.append(out)
        return out

    source.process = process
    sound = test_sound()
    try:
        sink.start()
        source.start()
        async with asyncio.timeout(10):
            await sink.wait_running()
        await asyncio.sleep(0.3)  # both streams settled: silence before the sound
        play_from = fed
        start = time.monotonic()
        for n, i in enumerate(range(0, len(sound), 960)):
            sink.write(sound[i : i + 960])
            await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))
        await asyncio.sleep(0.6)  # the echo's way back
        play_to = play_from + len(sound) + int(RATE * 0.03)
    finally:
        path.close()
        source.close()
        sink.close()
    if not raw or not leads:
        raise AudioError(
            f"The microphone {input_device} delivered no audio during the echo test.",
            hint="Check it with `rtc-voice devices --probe`.",
        )
    lead = int(np.median(leads[len(leads) // 4 :]))
    return analyse(
        np.concatenate(played),
        np.concatenate(raw),
        np.concatenate(cleaned),
        lead,
        play_from,
        play_to,
    )
