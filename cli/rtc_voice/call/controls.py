"""What a presenter may ask of a call (commands), and what it sees (an immutable snapshot).

Presenters never hold the call: they get a `Controls` to send commands to and a function that
returns a `CallSnapshot`, built fresh and frozen, safe to render on another thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rtc_voice.call.netstats import HealthSnapshot
from rtc_voice.conversation import Turn
from rtc_voice.eventlog import LogLine
from rtc_voice.tools.approval import PendingApproval


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


@dataclass(frozen=True)
class Approve:
    """Yes to the tool call waiting for approval (`CallSnapshot.approval.id`)."""

    id: str


@dataclass(frozen=True)
class Decline:
    """No to the tool call waiting for approval; the model is told the user declined."""

    id: str


Command = ToggleMute | Interrupt | SendText | PushToTalk | HangUp | Approve | Decline


class Controls(Protocol):
    def send(self, command: Command) -> None: ...


@dataclass(frozen=True)
class StatusItem:
    """One item of the screen's status area, from any part of the call (network health, echo
    cancelling, ...). The layout measures and places items; nothing else needs to change.

    `short` stands in for `text` on narrow terminals ("" leaves the item out there);
    `style` is a Rich style name; a higher `priority` is kept longer when space runs out."""

    text: str
    short: str = ""
    style: str = "dim"
    priority: int = 0


@dataclass(frozen=True)
class Question:
    """A question the user answers with one key (a tool approval: y / n). While it stands it
    takes the prompt line, and its keys go to it before any other command."""

    text: str
    answers: tuple[tuple[str, str, Command], ...]  # (key, label, command sent)


@dataclass(frozen=True)
class RateLimit:
    """One entry of the server's `rate_limits.updated` (`requests` or `tokens`)."""

    name: str
    remaining: int
    limit: int


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
    microphone: bool = True  # False with `--input none`: there is no level to show
    speaker_dbfs: float = -120.0
    speaker: bool = True  # False with `--output none`
    muted: bool = False
    speaking: str = "listening"
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    ptt_active: bool = False
    echo_cancelling: bool = False  # the microphone path cancels the speaker's echo
    echo_removed_db: float | None = None  # while the assistant speaks
    rate_limits: tuple[RateLimit, ...] = ()
    status_items: tuple[StatusItem, ...] = ()  # extra footer items (network, echo, ...)
    question: Question | None = None  # takes the prompt line until answered
    alert: str = ""  # a standing notice (e.g. reconnecting); shown while set
    alert_error: bool = False
    approval: PendingApproval | None = None  # a tool call waiting for y / n
    network: HealthSnapshot | None = None  # None until the first reading
