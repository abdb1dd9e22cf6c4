"""Audio files standing in for devices, the one place for files: read any audio file PyAV can
decode as 48 kHz mono; write WAV (crash-safe as we go) or, by extension, FLAC, MP3 or Ogg/Opus."""

from __future__ import annotations

import os
import wave
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rtc_voice.audio.pcm import RATE, Pcm
from rtc_voice.errors import FileError
from rtc_voice.paths import check_writable

# What can be written, by extension: (container format, codec). WAV has its own writer.
WRITE_FORMATS = {
    ".flac": ("flac", "flac"),
    ".mp3": ("mp3", "libmp3lame"),
    ".ogg": ("ogg", "libopus"),
    ".opus": ("opus", "libopus"),
}
WRITABLE = ", ".join([".wav", *WRITE_FORMATS])


def is_wav_spec(spec: str | None) -> bool:
    return bool(spec) and str(spec).lower().endswith(".wav")


def read_audio(path: Path) -> Pcm:
    """The whole file as 48 kHz mono int16: any format, rate, sample type and channel count
    that PyAV (FFmpeg) decodes."""
    if not path.exists():
        raise FileError(
            f"The input file {path} does not exist.",
            hint="--input takes a microphone (index or part of its name; see `rtc-voice "
            "devices`) or an audio file.",
        )
    if path.is_dir():
        raise FileError(
            f"The input file {path} is a directory.",
            hint="Name an audio file in it, or a microphone (see `rtc-voice devices`).",
        )
    if not os.access(path, os.R_OK):
        raise FileError(
            f"The input file {path} cannot be read (permission denied).",
            hint="Check the file's permissions, or pick another file.",
        )
    import av

    chunks: list[Pcm] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise FileError(f"{path} has no audio stream.")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
    except av.error.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise FileError(
            f"{path} is not an audio file rtc-voice can read ({reason}).",
            hint="Check the file, or convert it, e.g. `sox in.xyz -r 48000 -c 1 out.wav`.",
        ) from None
    if not chunks or not sum(len(c) for c in chunks):
        raise FileError(f"{path} contains no audio samples.")
    return np.concatenate(chunks)


def read_wav(path: Path) -> Pcm:
    """Kept for callers that name the format; reads any audio file."""
    return read_audio(path)


class AudioWriter(Protocol):
    frames: int

    def write(self, samples: Pcm) -> None: ...

    def close(self) -> None: ...


def open_writer(path: Path, *, channels: int = 1, rate: int = RATE) -> AudioWriter:
    """A writer for `path` chosen by its extension; a FileError naming the formats otherwise."""
    suffix = path.suffix.lower()
    if suffix in (".wav", ".wave"):
        return WavWriter(path, channels=channels, rate=rate)
    if suffix in WRITE_FORMATS:
        return EncodedWriter(path, channels=channels, rate=rate)
    raise FileError(
        f"Cannot tell which audio format to write to {path}.",
        hint=f"Name it with one of {WRITABLE}.",
    )


class DeferredWriter:
    """A writer checked now (format, folder, permissions) but created only when the call has
    something to write (`open()` or the first `write()`): a run that fails before its call leaves
    an existing file of that name as it was."""

    def __init__(self, path: Path, *, channels: int = 1, rate: int = RATE, what: str) -> None:
        # the folder and permissions first: a directory has no extension to complain about
        check_writable(path, what, hint=f"Pick another path: a file ending in {WRITABLE}.")
        suffix = path.suffix.lower()
        if suffix not in (".wav", ".wave", *WRITE_FORMATS):
            open_writer(path)  # raises the FileError that names the formats
        self.path = path
        self.frames = 0
        self._args = {"channels": channels, "rate": rate}
        self._writer: AudioWriter | None = None
        self._closed = False

    def open(self) -> None:
        if self._writer is None and not self._closed:
            self._writer = open_writer(self.path, **self._args)

    def write(self, samples: Pcm) -> None:
        self.open()
        if self._writer is not None:
            self._writer.write(samples)
            self.frames = self._writer.frames

    def close(self) -> None:
        self._closed = True
        if self._writer is not None:
            self._writer.close()


def _create_private(path: Path) -> Any:
    """Create (truncate) `path` with mode 0600, as a binary file object."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise FileError(f"Cannot write {path}: {exc.strerror or exc}.") from None
    return os.fdopen(fd, "wb")


class EncodedWriter:
    """FLAC, MP3 or Ogg/Opus through PyAV, encoded as the samples arrive (mode 0600)."""

    def __init__(self, path: Path, *, channels: int = 1, rate: int = RATE) -> None:
        import av

        self.path = path
        self.frames = 0
        self._channels = channels
        self._rate = rate
        self._layout = "mono" if channels == 1 else "stereo"
        container_format, codec = WRITE_FORMATS[path.suffix.lower()]
        self._file = _create_private(path)
        self._container = av.open(self._file, "w", format=container_format)
        self._stream: Any = self._container.add_stream(codec, rate=rate, layout=self._layout)
        formats = self._stream.codec.audio_formats or []
        self._resampler = av.AudioResampler(
            format=formats[0].name if formats else "s16", layout=self._layout, rate=rate
        )
        self._closed = False

    def _encode(self, frame: Any) -> None:
        for out in self._resampler.resample(frame):
            for packet in self._stream.encode(out):
                self._container.mux(packet)

    def write(self, samples: Pcm) -> None:
        """Write int16 samples (interleaved when there are several channels)."""
        if self._closed or not len(samples):
            return
        import av

        frame = av.AudioFrame.from_ndarray(
            samples.astype(np.int16, copy=False).reshape(1, -1), format="s16", layout=self._layout
        )
        frame.sample_rate = self._rate
        self._encode(frame)
        self.frames += len(samples) // self._channels

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._encode(None)
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._file.close()


class WavWriter:
    """Appends 16-bit PCM; the header is patched after every write, so a crash loses nothing.
    The file is created with mode 0600 (it may hold a private conversation)."""

    def __init__(self, path: Path, *, channels: int = 1, rate: int = RATE) -> None:
        self.path = path
        self._file = _create_private(path)
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
