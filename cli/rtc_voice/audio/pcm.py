"""Pure PCM helpers on numpy int16 arrays: levels, downmix, framing, tones, resampling."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]

RATE = 48000  # WebRTC/Opus rate: everything inside rtc-voice runs at 48 kHz
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000  # 960
SILENCE_DBFS = -120.0


@dataclass
class CapturedFrame:
    samples: Pcm  # FRAME_SAMPLES of 48 kHz mono
    captured_at: float  # time.monotonic() when PortAudio delivered the block
    raw_dbfs: float | None = None  # the device's level before processing (echo cancelling)


def rms_dbfs(samples: npt.NDArray[np.int16]) -> float:
    """RMS level in dB relative to full scale; SILENCE_DBFS for digital silence."""
    return power_dbfs(mean_square(samples))


def mean_square(samples: npt.NDArray[np.int16]) -> float:
    """Mean square of int16 samples (0.0 for none): a dot product, a third of np.mean's cost
    per frame."""
    if samples.size == 0:
        return 0.0
    as_float = samples.astype(np.float64).ravel()
    return float(as_float.dot(as_float)) / samples.size


def power_dbfs(mean_square: float) -> float:
    """`rms_dbfs` from a mean square (what `mean_square` gives); SILENCE_DBFS for silence."""
    if mean_square <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 10.0 * math.log10(mean_square / (32768.0**2)))


def to_mono(samples: npt.NDArray[np.int16], channels: int) -> Pcm:
    """Average interleaved channels into one (int16, no clipping)."""
    if channels == 1:
        mono: Pcm = samples.astype(np.int16, copy=False)
        return mono
    flat = samples.reshape(-1)
    if channels == 2:  # every decoded Opus frame: strided adds, ~6x faster than sum(axis=1)
        pair = np.add(flat[0::2], flat[1::2], dtype=np.int32)
        pair >>= 1  # floor division by 2, as below
        stereo_mixed: Pcm = pair.astype(np.int16)
        return stereo_mixed
    frames = samples.reshape(-1, channels).astype(np.int32)
    mixed: Pcm = (frames.sum(axis=1) // channels).astype(np.int16)
    return mixed


def tone(freq: float, ms: float, *, dbfs: float = -12.0, rate: int = RATE) -> Pcm:
    """A sine tone with 5 ms fades (no clicks) at the given RMS level."""
    count = int(rate * ms / 1000)
    t = np.arange(count) / rate
    amplitude = 32767 * math.sqrt(2) * 10 ** (dbfs / 20)
    wave = np.sin(2 * math.pi * freq * t) * min(amplitude, 32767.0)
    fade = min(count // 2, int(rate * 0.005))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        wave[:fade] *= ramp
        wave[-fade:] *= ramp[::-1]
    return wave.astype(np.int16)


def conceal(last: Pcm, samples: int) -> Pcm:
    """`samples` of stand-in audio for a lost stretch: the last frame heard, repeated and faded
    linearly to silence (no gap, no click), as Opus decoders without PLC data do it simply."""
    if samples <= 0 or len(last) == 0:
        return np.zeros(max(0, samples), np.int16)
    reps = -(-samples // len(last))
    ramp = np.linspace(1.0, 0.0, samples, endpoint=False)
    return (np.tile(last, reps)[:samples] * ramp).astype(np.int16)


def silence(ms: float, rate: int = RATE) -> Pcm:
    return np.zeros(int(rate * ms / 1000), dtype=np.int16)


def resample(samples: npt.NDArray[np.int16], rate_in: int, rate_out: int = RATE) -> Pcm:
    """Mono int16 from one rate to another with PyAV's (libswresample) resampler."""
    if rate_in == rate_out or samples.size == 0:
        return samples.astype(np.int16, copy=False)
    import av

    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate_out)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples.reshape(1, -1)), format="s16", layout="mono"
    )
    frame.sample_rate = rate_in
    chunks = [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
    chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)


class Ring:
    """A fixed-capacity FIFO of int16 samples with no allocation on read or write.

    Not thread-safe by itself: the owner holds a lock around calls (see devices.OutputSink).
    Writing more than fits drops the oldest samples and counts them.
    """

    def __init__(self, capacity: int) -> None:
        self._data = np.zeros(capacity, dtype=np.int16)
        self._read = 0
        self._size = 0
        self.dropped = 0

    @property
    def capacity(self) -> int:
        return len(self._data)

    def __len__(self) -> int:
        return self._size

    def clear(self) -> int:
        """Empty the ring; returns how many samples were dropped."""
        dropped, self._size = self._size, 0
        return dropped

    def write(self, samples: npt.NDArray[np.int16]) -> None:
        count = len(samples)
        if count >= self.capacity:
            self.dropped += self._size + count - self.capacity
            samples = samples[-self.capacity :]
            count = len(samples)
            self._read, self._size = 0, 0
        overflow = self._size + count - self.capacity
        if overflow > 0:
            self._read = (self._read + overflow) % self.capacity
            self._size -= overflow
            self.dropped += overflow
        start = (self._read + self._size) % self.capacity
        first = min(count, self.capacity - start)
        if first == count:  # no wrap (the usual case): one copy
            self._data[start : start + count] = samples
        else:
            self._data[start : start + first] = samples[:first]
            self._data[: count - first] = samples[first:]
        self._size += count

    def discard(self, count: int) -> int:
        """Drop up to `count` samples from the front without copying them; returns how many."""
        count = min(count, self._size)
        self._read = (self._read + count) % self.capacity
        self._size -= count
        return count

    def read_into(self, out: npt.NDArray[np.int16]) -> int:
        """Fill `out` from the front; returns how many samples were real (the rest is left
        untouched for the caller to zero)."""
        count = min(len(out), self._size)
        first = min(count, self.capacity - self._read)
        out[:first] = self._data[self._read : self._read + first]
        if first < count:
            out[first:count] = self._data[: count - first]
        self._read = (self._read + count) % self.capacity
        self._size -= count
        return count
