"""Pure: the input audio buffer of one call: how much audio arrived since the last commit or
clear, how much of it was voiced, and the turn detector that watches it."""

from __future__ import annotations

from typing import Any

from rtc_voice.localserver.vad import EnergyVad, VadEvent, threshold_dbfs
from rtc_voice.protocol.defaults import (
    VAD_PREFIX_PADDING_MS,
    VAD_SILENCE_DURATION_MS,
    VAD_THRESHOLD,
)

SEMANTIC_SILENCE_MS = {"low": 1200, "medium": 800, "auto": 800, "high": 500}

Detection = dict[str, Any] | None  # the session's audio.input.turn_detection (None: manual)


def make_vad(detection: Detection, now_ms: int = 0) -> EnergyVad:
    """An energy VAD for these turn-detection settings (semantic_vad: silence by eagerness)."""
    settings = detection or {}
    silence = settings.get("silence_duration_ms", VAD_SILENCE_DURATION_MS)
    if settings.get("type") == "semantic_vad":
        silence = SEMANTIC_SILENCE_MS.get(settings.get("eagerness", "auto"), 800)
    vad = EnergyVad(
        threshold=settings.get("threshold", VAD_THRESHOLD),
        prefix_padding_ms=settings.get("prefix_padding_ms", VAD_PREFIX_PADDING_MS),
        silence_duration_ms=silence,
    )
    vad.now_ms = now_ms
    return vad


class InputBuffer:
    def __init__(self, detection: Detection) -> None:
        self.detection = detection
        self.vad = make_vad(detection)
        self.ms = 0  # audio since the last commit or clear
        self.voiced_ms = 0  # of which above the VAD threshold
        self.pending_item_id: str | None = None  # the item a started turn will become

    def configure(self, detection: Detection) -> None:
        """New turn-detection settings (session.update); the audio clock keeps running."""
        self.detection = detection
        self.vad = make_vad(detection, self.vad.now_ms)

    def feed(self, level_dbfs: float, frame_ms: int) -> list[VadEvent]:
        """One received frame; the turn events it causes (none with manual turns)."""
        self.ms += frame_ms
        if level_dbfs >= threshold_dbfs((self.detection or {}).get("threshold", VAD_THRESHOLD)):
            self.voiced_ms += frame_ms
        events = self.vad.feed(level_dbfs, frame_ms)
        return events if self.detection is not None else []

    def clear(self) -> None:
        self.ms = self.voiced_ms = 0

    def committed(self) -> None:
        self.clear()
        self.pending_item_id = None
