"""What a presenter may ask of a call (commands), and what it sees (an immutable snapshot).

Presenters never hold the call: they get a `Controls` to send commands to and a function that
returns a `CallSnapshot`, built fresh and frozen, safe to render on another thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rtc_voice.conversation import Turn
from rtc_voice.eventlog import LogLine


@dataclass(frozen=True)
class ToggleMute:
    """Mute or unmute the microphone (silence is sent; the call goes on)."""


@dataclass(frozen=True)
class Interrupt:
    """Stop the assistant now: cancel its response and drop its queued audio."""


@dataclass(frozen=True)
class SendText:
    """Type a message to the model (it interrupts a reply in progress)."""

    text: str


@dataclass(frozen=True)
class PushToTalk:
    """With manual turns: the first press starts a turn, the second ends and answers it."""


@dataclass(frozen=True)
class HangUp:
    reason: str = "you hung up"


Command = ToggleMute | Interrupt | SendText | PushToTalk | HangUp


class Controls(Protocol):
    def send(self, command: Command) -> None: ...


@dataclass(frozen=True)
class CallSnapshot:
    phase: str = "starting"
    model: str = ""
    voice: str = ""
    elapsed_s: float = 0.0
    left_s: float | None = None
    turns: tuple[Turn, ...] = ()
    log: tuple[LogLine, ...] = ()
    mic_dbfs: float = -120.0
    speaker_dbfs: float = -120.0
    muted: bool = False
    speaking: str = "listening"
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    ptt_active: bool = False
