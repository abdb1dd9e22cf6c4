"""Reply audio for the local server: espeak-ng speech when installed, else a tone pattern."""

from __future__ import annotations

import asyncio
import io
import shutil
import wave

import numpy as np

from rtc_voice.audio.pcm import RATE, Pcm, resample, silence, to_mono, tone

_cache: dict[str, Pcm] = {}


def tone_pattern(text: str) -> Pcm:
    """One short beep per word: audible, clearly not speech, as long as the words."""
    parts: list[Pcm] = []
    for index, _ in enumerate(text.split() or ["."]):
        parts += [tone(523.25 if index % 2 == 0 else 659.25, 140), silence(90)]
    return np.concatenate(parts)


async def espeak(text: str) -> Pcm | None:
    """48 kHz mono speech from espeak-ng, or None when it is missing or fails."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    proc = await asyncio.create_subprocess_exec(
        exe,
        "--stdout",
        "-v",
        "en-us",
        "-s",
        "170",
        "--",
        text,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    data, _ = await proc.communicate()
    if proc.returncode != 0 or not data:
        return None
    try:
        with wave.open(io.BytesIO(data)) as wav:
            rate, channels = wav.getframerate(), wav.getnchannels()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        return None
    samples = to_mono(np.frombuffer(raw, dtype="<i2"), channels)
    return await asyncio.to_thread(resample, samples, rate, RATE)


async def synthesize(text: str) -> Pcm:
    if text not in _cache:
        if len(_cache) > 64:
            _cache.clear()
        speech = await espeak(text)
        _cache[text] = speech if speech is not None else tone_pattern(text)
    return _cache[text]
