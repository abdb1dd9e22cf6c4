"""One audio I/O interface for `talk`: a microphone track and a speaker sink, each a real
device, an audio file or nothing; and the stereo call recorder."""

from __future__ import annotations

import collections
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rtc_voice.audio.pcm import RATE, SILENCE_DBFS, Pcm, rms_dbfs
from rtc_voice.audio.tracks import MicrophoneTrack, PcmTrack
from rtc_voice.paths import is_file_spec

if TYPE_CHECKING:
    from rtc_voice.audio.catalog import Device
    from rtc_voice.sinks import WriterThread


class Sink(Protocol):
    """Where the assistant's audio goes."""

    description: str
    level_dbfs: float
    underruns: int

    def start(self) -> None: ...

    async def wait_running(self) -> None: ...

    def write(self, samples: Pcm) -> None: ...

    def flush(self) -> float: ...

    @property
    def played_ms(self) -> float: ...

    def close(self) -> None: ...


class NullSink:
    """`--output none`: plays nothing, but counts like a speaker would."""

    description = "none (audio discarded)"
    underruns = 0
    absent = True  # no speaker at all: the screen shows no level meter for it

    def __init__(self) -> None:
        self.level_dbfs = SILENCE_DBFS
        self._samples = 0

    def start(self) -> None:
        pass

    async def wait_running(self) -> None:
        pass

    def write(self, samples: Pcm) -> None:
        self.level_dbfs = rms_dbfs(samples)
        self._samples += len(samples)

    def flush(self) -> float:
        return 0.0

    @property
    def played_ms(self) -> float:
        return self._samples * 1000 / RATE

    def close(self) -> None:
        pass


class FileSink(NullSink):
    """`--output FILE` (.wav, .flac, .mp3, .ogg, .opus): exactly what would have been played,
    written as it arrives."""

    def __init__(self, path: Path, thread: WriterThread | None = None) -> None:
        super().__init__()
        from rtc_voice.audio.wavfile import DeferredWriter  # files only: loaded where used

        self.description = f"file {path}"
        self._writer = DeferredWriter(path, what="output file")
        self._thread = thread

    def start(self) -> None:  # the call is up: only now replace a file of that name
        if self._thread is not None:
            self._thread.submit(self._writer.open)
        else:
            self._writer.open()

    def write(self, samples: Pcm) -> None:
        super().write(samples)
        if self._thread is not None:
            self._thread.submit(self._writer.write, samples)
        else:
            self._writer.write(samples)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.submit(self._writer.close, cleanup=True)
        else:
            self._writer.close()


def open_speaker(spec: str | None, thread: WriterThread | None = None) -> Sink:
    """`none`, an audio file (written on `thread` when given) or a device."""
    if spec is not None and spec.strip().lower() == "none":
        return NullSink()
    if is_file_spec(spec):
        assert spec is not None
        return FileSink(Path(spec).expanduser(), thread)
    from rtc_voice.audio import devices

    return devices.OutputSink(devices.select(spec, "output"))


@dataclass
class Microphone:
    track: PcmTrack | MicrophoneTrack
    description: str
    file_pcm: Pcm | None = None  # set when an audio file stands in for the microphone
    absent: bool = False  # `--input none`: no microphone at all, only silence is sent

    def start(self) -> None:
        if isinstance(self.track, MicrophoneTrack):
            self.track.source.start()
        elif self.file_pcm is not None:
            self.track.play(self.file_pcm)


def open_microphone(spec: str | None) -> Microphone:
    """`none` (silence is sent: typing and --say only), an audio file (read fully now, so a
    bad file fails before anything starts) or a device."""
    if spec is not None and spec.strip().lower() == "none":
        return Microphone(PcmTrack(), "no microphone (typing only)", absent=True)
    if is_file_spec(spec):
        assert spec is not None
        from rtc_voice.audio.wavfile import read_audio

        path = Path(spec).expanduser()
        pcm = read_audio(path)
        return Microphone(PcmTrack(), f"file {path} ({len(pcm) / RATE:.1f} s)", pcm)
    from rtc_voice.audio import devices

    return device_microphone(devices.select(spec, "input"), open_now=True)


def device_microphone(device: Device, *, open_now: bool = False) -> Microphone:
    """A microphone device as a track; its stream opened now, or
    later with `track.source.open()` (any thread: `talk` opens it while the call connects)."""
    from rtc_voice.audio import devices

    source = devices.InputSource(device, open_now=open_now)
    return Microphone(MicrophoneTrack(source), f"microphone {device}")


class Recorder:
    """`--record FILE` (.wav, .flac, .mp3, .ogg, .opus): stereo, left the microphone as sent,
    right the assistant as played.

    The microphone's 20 ms frames set the clock; assistant audio is laid against them (silence
    when there is none), so both sides line up in time. The frames are interleaved where they
    arrive; the file writes run on `thread` when given (off the event loop)."""

    def __init__(self, path: Path, thread: WriterThread | None = None) -> None:
        from rtc_voice.audio.wavfile import DeferredWriter

        self._writer = DeferredWriter(path, channels=2, what="recording")
        self._thread = thread
        self._right: collections.deque[Pcm] = collections.deque()
        self._right_len = 0

    def assistant(self, samples: Pcm) -> None:
        self._right.append(samples)
        self._right_len += len(samples)
        while self._right_len > RATE:  # more than 1 s behind: drop the oldest
            self._right_len -= len(self._right.popleft())

    def flush_assistant(self) -> None:
        """Barge-in: what was queued for the speaker will not be played."""
        self._right.clear()
        self._right_len = 0

    def microphone(self, left: Pcm) -> None:
        right = np.zeros(len(left), np.int16)
        filled = 0
        while filled < len(left) and self._right:
            chunk = self._right[0]
            take = min(len(chunk), len(left) - filled)
            right[filled : filled + take] = chunk[:take]
            filled += take
            if take == len(chunk):
                self._right.popleft()
            else:
                self._right[0] = chunk[take:]
        self._right_len -= filled
        stereo = np.empty(len(left) * 2, np.int16)
        stereo[0::2], stereo[1::2] = left, right
        if self._thread is not None:
            self._thread.submit(self._writer.write, stereo)
        else:
            self._writer.write(stereo)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.submit(self._writer.close, cleanup=True)
        else:
            self._writer.close()
