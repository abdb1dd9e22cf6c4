"""WAV files standing in for devices: read any PCM WAV as 48 kHz mono; write as we go."""

from __future__ import annotations

import os
import wave
from pathlib import Path
from typing import Any

import numpy as np

from rtc_voice.audio.pcm import RATE, Pcm, resample, to_mono
from rtc_voice.errors import AudioError

_DTYPES: dict[int, np.dtype[Any]] = {1: np.dtype(np.uint8), 2: np.dtype("<i2"), 4: np.dtype("<i4")}


def is_wav_spec(spec: str | None) -> bool:
    return bool(spec) and str(spec).lower().endswith(".wav")


def read_wav(path: Path) -> Pcm:
    """The whole file as 48 kHz mono int16 (any rate; 8, 16, 24 or 32-bit PCM; any channels)."""
    try:
        with wave.open(str(path), "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            raw = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise AudioError(f"The input file {path} does not exist.") from None
    except IsADirectoryError:
        raise AudioError(f"The input file {path} is a directory.") from None
    except PermissionError:
        raise AudioError(f"The input file {path} cannot be read (permission denied).") from None
    except (wave.Error, EOFError) as exc:
        raise AudioError(
            f"{path} is not a PCM WAV file ({exc}).",
            hint="Convert it, e.g. `sox in.mp3 -r 48000 -c 1 out.wav`.",
        ) from None
    if width == 3:  # 24-bit: widen to 32-bit little-endian
        padded = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        raw = np.concatenate([np.zeros((len(padded), 1), np.uint8), padded], axis=1).tobytes()
        width = 4
    if width not in _DTYPES:
        raise AudioError(f"{path} uses {width * 8}-bit samples, which rtc-voice cannot read.")
    data = np.frombuffer(raw, _DTYPES[width])
    if width == 1:
        samples = ((data.astype(np.int16) - 128) << 8).astype(np.int16)
    elif width == 4:
        samples = (data >> 16).astype(np.int16)
    else:
        samples = data.astype(np.int16)
    return resample(to_mono(samples, channels), rate, RATE)


class WavWriter:
    """Appends 16-bit PCM; the header is patched after every write, so a crash loses nothing.
    The file is created with mode 0600 (it may hold a private conversation)."""

    def __init__(self, path: Path, *, channels: int = 1, rate: int = RATE) -> None:
        self.path = path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            raise AudioError(f"Cannot write {path}: {exc.strerror or exc}.") from None
        self._file = os.fdopen(fd, "wb")
        self._wav = wave.open(self._file, "wb")
        self._wav.setnchannels(channels)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate)
        self.frames = 0
        self._closed = False

    def write(self, samples: Pcm) -> None:
        """Write int16 samples (interleaved when there are several channels)."""
        if self._closed:
            return
        self._wav.writeframes(samples.astype("<i2", copy=False).tobytes())
        self._file.flush()
        self.frames += len(samples) // self._wav.getnchannels()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._wav.close()  # patches the header: may fail like any write
            finally:
                self._file.close()
