"""Reply audio for the local server: espeak-ng speech when installed, else a tone pattern."""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from rtc_voice.audio.pcm import RATE, Pcm, resample, silence, to_mono, tone

_cache: dict[str, Pcm] = {}


def tone_pattern(text: str) -> Pcm:
    """One short beep per word: audible, clearly not speech, as long as the words."""
    parts: list[Pcm] = []
    for index, _ in enumerate(text.split() or ["."]):
        parts += [tone(523.25 if index % 2 == 0 else 659.25, 140), silence(90)]
    return np.concatenate(parts)


def espeak(text: str) -> Pcm | None:
    """48 kHz mono speech from espeak-ng, or None when it is missing or fails (blocking)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, "--stdout", "-v", "en-us", "-s", "170", "--", text],
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0 or not done.stdout:
        return None
    try:
        with wave.open(io.BytesIO(done.stdout)) as wav:
            rate, channels = wav.getframerate(), wav.getnchannels()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        return None
    return resample(to_mono(np.frombuffer(raw, dtype="<i2"), channels), rate, RATE)


# Spawning espeak-ng and resampling run here, off the event loop, one at a time: a burst of
# replies on many calls must not delay the audio frames the loop is sending.
_synth_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtc-voice-speech")


async def synthesize(text: str) -> Pcm:
    if text not in _cache:
        if len(_cache) > 64:
            _cache.clear()
        loop = asyncio.get_running_loop()
        speech = await loop.run_in_executor(_synth_pool, espeak, text)
        _cache[text] = speech if speech is not None else tone_pattern(text)
    return _cache[text]
