"""Pure: the folded event log the UI shows: one line per event, every delta of one item folded
into its first line. Time comes from a clock parameter."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rtc_voice.protocol import ServerEventType as S

Direction = Literal["client", "server"]


@dataclass
class LogLine:
    at: float
    direction: Direction
    type: str
    summary: str
    count: int = 1
    error: bool = False
    key: str = ""  # lines with the same key fold together (deltas of one item)
    text: str = ""  # the folded deltas so far


def summarize(event: Mapping[str, Any]) -> str:
    """One line about an event, for the log."""
    kind = str(event.get("type", "?"))
    if kind == S.ERROR:
        error = event.get("error") or {}
        return f"{error.get('code') or error.get('type')}: {error.get('message', '')}"
    if "delta" in event:
        return repr(str(event["delta"]))[:60]
    if kind in (S.RESPONSE_DONE, S.RESPONSE_CREATED):
        response = event.get("response") or {}
        details = response.get("status_details") or {}
        reason = f" ({details.get('reason')})" if details.get("reason") else ""
        return f"{response.get('id', '')} {response.get('status', '')}{reason}"
    if kind.startswith("conversation.item.") and isinstance(event.get("item"), dict):
        item = event["item"]
        return f"{item.get('type')} {item.get('role') or item.get('name') or ''} {item.get('id')}"
    if kind.startswith("input_audio_buffer."):
        ms = event.get("audio_start_ms", event.get("audio_end_ms"))
        return f"{event.get('item_id', '')}" + (f" at {ms} ms" if ms is not None else "")
    if kind.startswith("session."):
        session = event.get("session") or {}
        voice = ((session.get("audio") or {}).get("output") or {}).get("voice")
        return f"{session.get('model', '')} {voice or ''}".strip()
    for name in ("transcript", "text", "arguments", "response_id", "item_id"):
        if name in event:
            return repr(str(event[name]))[:60] if name != "response_id" else str(event[name])
    return ""


class EventLog:
    """The newest `size` lines; `add` every event sent or received, in order."""

    def __init__(self, clock: Callable[[], float] = time.time, size: int = 400) -> None:
        self.clock = clock
        self.lines: deque[LogLine] = deque(maxlen=size)
        self._folds: dict[str, LogLine] = {}
        self.events_seen = 0

    def add(self, event: Mapping[str, Any], direction: Direction) -> None:
        self.events_seen += 1
        kind = str(event.get("type", ""))
        now = self.clock()
        key = ""
        if kind.endswith(".delta"):
            key = f"{kind}:{event.get('item_id') or event.get('response_id')}"
            line = self._folds.get(key)
            if line is not None:  # every delta of one item folds into its first line
                line.count += 1
                line.at = now
                line.text += str(event.get("delta") or "")
                line.summary = repr(line.text[-60:])
                return
        line = LogLine(
            now,
            direction,
            kind,
            summarize(event),
            error=kind == S.ERROR,
            key=key,
            text=str(event.get("delta") or ""),
        )
        self.lines.append(line)
        if key:
            if len(self._folds) > 256:
                self._folds.clear()
            self._folds[key] = line

    def newest(self, count: int) -> list[LogLine]:
        """Copies of the newest `count` lines (safe to hand to another thread)."""
        start = max(0, len(self.lines) - count)
        return [dataclasses.replace(line) for i, line in enumerate(self.lines) if i >= start]
