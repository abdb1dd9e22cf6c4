"""Pure PCM helpers on numpy int16 arrays: levels, downmix, framing, tones, resampling."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]

RATE = 48000  # WebRTC/Opus rate: everything inside rtc-voice runs at 48 kHz
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000  # 960
SILENCE_DBFS = -120.0


def rms_dbfs(samples: npt.NDArray[np.int16]) -> float:
    """RMS level in dB relative to full scale; SILENCE_DBFS for digital silence."""
    if samples.size == 0:
        return SILENCE_DBFS
    mean_square = float(np.mean(np.square(samples, dtype=np.float64)))
    if mean_square <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 10.0 * math.log10(mean_square / (32768.0**2)))


def to_mono(samples: npt.NDArray[np.int16], channels: int) -> Pcm:
    """Average interleaved channels into one (int16, no clipping)."""
    if channels == 1:
        mono: Pcm = samples.astype(np.int16, copy=False)
        return mono
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
