"""Opus for the microphone: aiortc's stock encoder (mono upmixed to stereo, 96 kbit/s) against
rtc-voice's VoiceEncoder (mono, voice bitrates), on the same speech, decoded the same way.

Speech: espeak-ng (two voices, ~20 s), read as 48 kHz mono (PyAV). Each encoder codes it in
20 ms frames; aiortc's OpusDecoder (what the local server, and any aiortc peer, runs) decodes
it; the result is aligned with the original (cross-correlation) and compared:
  - PESQ wide-band MOS-LQO (ITU-T P.862.2, 16 kHz) when the `pesq` package is importable
    (`pip install pesq`; not a project dependency), 1.0-4.64, higher is better;
  - segmental SNR (20 ms segments, clamped to -10..35 dB, speech segments only);
  - the bitrate really sent (bytes of Opus payload per second) and the encoder's CPU per
    20 ms frame (median, this process; the stock encoder's includes its stereo resampler).
"""

from __future__ import annotations

import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from aiortc.codecs.opus import OpusDecoder, OpusEncoder
from aiortc.jitterbuffer import JitterFrame

from rtc_voice.audio.pcm import FRAME_SAMPLES, RATE, Pcm, resample, to_mono
from rtc_voice.audio.tracks import VoiceEncoder, make_frame
from rtc_voice.audio.wavfile import read_audio

TEXTS = (
    ("en-us", "The quick brown fox jumps over the lazy dog. What time is it in Tokyo right now?"),
    ("en-gb+f3", "Please book a table for four at seven thirty, near the window if you can."),
    ("en-us+m3", "Seventeen, forty two, and ninety nine are the numbers I would like to check."),
)


def speech() -> Pcm:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed for the test speech (.ci/audio-setup installs it)")
    parts: list[Pcm] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, (voice, text) in enumerate(TEXTS):
            wav = Path(tmp) / f"{n}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), "--", text], check=True)
            parts += [read_audio(wav), np.zeros(RATE // 4, np.int16)]
    pcm = np.concatenate(parts)
    return pcm[: len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES]


def code(pcm: Pcm, encode: Callable[[Any], list[bytes]]) -> tuple[Pcm, float, float]:
    """(decoded mono audio, payload bit/s, median encode µs per frame)."""
    decoder = OpusDecoder()
    out: list[Pcm] = []
    sent = 0
    times: list[float] = []
    for n in range(len(pcm) // FRAME_SAMPLES):
        frame = make_frame(pcm[n * FRAME_SAMPLES : (n + 1) * FRAME_SAMPLES], n * FRAME_SAMPLES)
        start = time.perf_counter()
        payloads = encode(frame)
        times.append((time.perf_counter() - start) * 1e6)
        for data in payloads:
            sent += len(data)
            for decoded in decoder.decode(JitterFrame(data=data, timestamp=n * FRAME_SAMPLES)):
                samples = decoded.to_ndarray().reshape(-1).astype(np.int16)  # type: ignore[union-attr]
                out.append(to_mono(samples, len(decoded.layout.channels)))  # type: ignore[attr-defined]
    seconds = len(pcm) / RATE
    return np.concatenate(out), sent * 8 / seconds, statistics.median(times)


def align(reference: Pcm, decoded: Pcm) -> Pcm:
    """`decoded` shifted by the codec's delay (found by cross-correlation, up to 50 ms)."""
    ref = reference[: RATE * 4].astype(np.float64)
    best, shift = -math.inf, 0
    for lag in range(0, RATE // 20):
        seg = decoded[lag : lag + len(ref)].astype(np.float64)
        if len(seg) < len(ref):
            break
        score = float(np.dot(ref, seg))
        if score > best:
            best, shift = score, lag
    out = decoded[shift : shift + len(reference)]
    return np.concatenate([out, np.zeros(len(reference) - len(out), np.int16)])


def segmental_snr(reference: Pcm, decoded: Pcm) -> float:
    values = []
    for n in range(len(reference) // FRAME_SAMPLES):
        ref = reference[n * FRAME_SAMPLES : (n + 1) * FRAME_SAMPLES].astype(np.float64)
        err = ref - decoded[n * FRAME_SAMPLES : (n + 1) * FRAME_SAMPLES]
        power = float(np.dot(ref, ref)) / len(ref)
        if power < (32768 * 10 ** (-45 / 20)) ** 2:  # below -45 dBFS: a pause, not speech
            continue
        noise = max(float(np.dot(err, err)) / len(ref), 1e-9)
        values.append(max(-10.0, min(35.0, 10 * math.log10(power / noise))))
    return statistics.mean(values)


def pesq_wb(reference: Pcm, decoded: Pcm) -> float | None:
    try:
        from pesq import pesq  # type: ignore[import-not-found]
    except ImportError:
        return None
    ref16 = resample(reference, RATE, 16000).astype(np.float64)
    deg16 = resample(decoded, RATE, 16000).astype(np.float64)
    n = min(len(ref16), len(deg16))
    return float(pesq(16000, ref16[:n], deg16[:n], "wb"))


def main() -> int:
    pcm = speech()
    stock = OpusEncoder()
    encoders: dict[str, Callable[[Any], list[bytes]]] = {
        "aiortc stock (stereo, 96 kbit/s)": lambda f: stock.encode(f)[0],
    }
    for kbps in (24, 32, 40):
        voice = VoiceEncoder(kbps * 1000)
        encoders[f"VoiceEncoder mono {kbps} kbit/s"] = lambda f, v=voice: [bytes(v.encode(f))]
    print(f"{len(pcm) / RATE:.1f} s of espeak-ng speech, 20 ms frames:")
    print(f"  {'encoder':34} {'PESQ-WB':>8} {'segSNR':>8} {'sent':>11} {'encode':>11}")
    for name, encode in encoders.items():
        decoded, bps, micros = code(pcm, encode)
        decoded = align(pcm, decoded)
        mos = pesq_wb(pcm, decoded)
        print(
            f"  {name:34} {'n/a' if mos is None else f'{mos:.2f}':>8} "
            f"{segmental_snr(pcm, decoded):6.1f} dB {bps / 1000:6.1f} kbit/s "
            f"{micros:6.0f} µs"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
