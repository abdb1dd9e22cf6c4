"""Pure: an energy voice-activity detector honouring OpenAI's server_vad parameters.

`threshold` (0..1) maps linearly onto an RMS level from -70 dBFS (0) to -20 dBFS (1), so the
default 0.5 triggers at -45 dBFS: normal speech is far above it, room noise below.
Time is counted in milliseconds of received audio, not wall-clock time.
"""

from __future__ import annotations

from dataclasses import dataclass

START_FRAMES = 2  # consecutive loud frames before speech counts as started (ignores clicks)


def threshold_dbfs(threshold: float) -> float:
    return -70.0 + 50.0 * threshold


@dataclass(frozen=True)
class SpeechStarted:
    audio_start_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    audio_end_ms: int
    speech_ms: int  # from the first to the last loud frame


VadEvent = SpeechStarted | SpeechStopped


class EnergyVad:
    def __init__(
        self, threshold: float = 0.5, prefix_padding_ms: int = 300, silence_duration_ms: int = 500
    ) -> None:
        self.level = threshold_dbfs(threshold)
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_duration_ms = silence_duration_ms
        self.now_ms = 0
        self.speaking = False
        self._loud_run = 0
        self._first_loud_ms = 0
        self._last_loud_end_ms = 0

    def feed(self, level_dbfs: float, frame_ms: int) -> list[VadEvent]:
        """Advance by one frame of `frame_ms` with the given level; return what happened."""
        start = self.now_ms
        self.now_ms += frame_ms
        loud = level_dbfs >= self.level
        events: list[VadEvent] = []
        if loud:
            if not self.speaking:
                self._loud_run += 1
                if self._loud_run == 1:
                    self._first_loud_ms = start
                if self._loud_run >= START_FRAMES:
                    self.speaking = True
                    events.append(
                        SpeechStarted(max(0, self._first_loud_ms - self.prefix_padding_ms))
                    )
            self._last_loud_end_ms = self.now_ms
        elif self.speaking:
            if self.now_ms - self._last_loud_end_ms >= self.silence_duration_ms:
                self.speaking = False
                self._loud_run = 0
                events.append(
                    SpeechStopped(
                        audio_end_ms=self._last_loud_end_ms,
                        speech_ms=self._last_loud_end_ms - self._first_loud_ms,
                    )
                )
        else:
            self._loud_run = 0
        return events
