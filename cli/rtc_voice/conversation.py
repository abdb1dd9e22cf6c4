"""Pure: the conversation as the user sees it, built from Realtime events.

Turns are ordered by the server's `previous_item_id` chain, not by arrival (a user transcript
often lands after the reply to it). Also: who is speaking, usage and cost, and a folded event
log. No I/O; time comes from a clock parameter.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

JSON = dict[str, Any]
Status = Literal["in_progress", "completed", "interrupted", "failed"]
Speaking = Literal["listening", "you", "assistant"]


@dataclass
class Turn:
    item_id: str
    role: Literal["user", "assistant"]
    kind: Literal["message", "function_call"] = "message"
    text: str = ""
    status: Status = "in_progress"
    previous_item_id: str | None = None
    started_at: float = 0.0
    ended_at: float | None = None
    typed: bool = False
    awaiting_transcript: bool = False
    response_id: str | None = None
    name: str = ""
    call_id: str = ""
    arguments: str = ""
    output: str | None = None

    @property
    def final(self) -> bool:
        """Nothing more will change it (what transcripts wait for before writing it)."""
        if self.kind == "function_call":
            return self.status != "in_progress" and self.output is not None
        return self.status != "in_progress" and not self.awaiting_transcript


@dataclass
class Usage:
    text_in: int = 0
    audio_in: int = 0
    image_in: int = 0
    text_cached: int = 0
    audio_cached: int = 0
    image_cached: int = 0
    text_out: int = 0
    audio_out: int = 0
    responses: int = 0

    @property
    def input_tokens(self) -> int:
        return self.text_in + self.audio_in + self.image_in

    @property
    def output_tokens(self) -> int:
        return self.text_out + self.audio_out

    def add(self, usage: Mapping[str, Any]) -> None:
        details = usage.get("input_token_details") or {}
        cached = details.get("cached_tokens_details") or {}
        out = usage.get("output_token_details") or {}
        self.text_in += int(details.get("text_tokens") or 0)
        self.audio_in += int(details.get("audio_tokens") or 0)
        self.image_in += int(details.get("image_tokens") or 0)
        self.text_cached += int(cached.get("text_tokens") or 0)
        self.audio_cached += int(cached.get("audio_tokens") or 0)
        self.image_cached += int(cached.get("image_tokens") or 0)
        self.text_out += int(out.get("text_tokens") or 0)
        self.audio_out += int(out.get("audio_tokens") or 0)
        self.responses += 1

    def cost(self, prices: Mapping[str, float] | None) -> float | None:
        """USD, or None when the model has no known prices."""
        if not prices:
            return None
        total = 0.0
        for m, tokens_in, cached, tokens_out in (
            ("text", self.text_in, self.text_cached, self.text_out),
            ("audio", self.audio_in, self.audio_cached, self.audio_out),
            ("image", self.image_in, self.image_cached, 0),
        ):
            total += (tokens_in - cached) * prices.get(f"{m}_in", 0.0)
            total += cached * prices.get(f"{m}_cached", 0.0)
            total += tokens_out * prices.get(f"{m}_out", 0.0)
        return total / 1e6

    def as_json(self) -> JSON:
        return {
            "responses": self.responses,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "input_text_tokens": self.text_in,
            "input_audio_tokens": self.audio_in,
            "input_image_tokens": self.image_in,
            "cached_tokens": self.text_cached + self.audio_cached + self.image_cached,
            "output_text_tokens": self.text_out,
            "output_audio_tokens": self.audio_out,
        }


@dataclass
class LogLine:
    at: float
    direction: Literal["client", "server"]
    type: str
    summary: str
    count: int = 1
    error: bool = False
    key: str = ""  # lines with the same key fold together (deltas of one item)
    text: str = ""  # the folded deltas so far


def summarize(event: Mapping[str, Any]) -> str:
    """One line about an event, for the log."""
    kind = str(event.get("type", "?"))
    if kind == "error":
        error = event.get("error") or {}
        return f"{error.get('code') or error.get('type')}: {error.get('message', '')}"
    if "delta" in event:
        return repr(str(event["delta"]))[:60]
    if kind in ("response.done", "response.created"):
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


class Conversation:
    """Apply every event in arrival order; read `turns()`, `speaking`, `usage`, `log`."""

    def __init__(self, clock: Callable[[], float] = time.time, log_size: int = 400) -> None:
        self.clock = clock
        self._turns: dict[str, Turn] = {}
        self._order: list[str] = []
        self._by_call: dict[str, str] = {}
        self._user_speaking = False
        self._assistant_speaking = False
        self.usage = Usage()
        self.session: JSON = {}
        self.errors: list[str] = []
        self.rate_limits: list[JSON] = []
        self.log: deque[LogLine] = deque(maxlen=log_size)
        self._folds: dict[str, LogLine] = {}
        self.active_response: str | None = None
        self.events_seen = 0

    # --- reading

    def turns(self) -> list[Turn]:
        return [self._turns[i] for i in self._order]

    def turn(self, item_id: str) -> Turn | None:
        return self._turns.get(item_id)

    def newly_final(self, done: set[str]) -> list[Turn]:
        """Turns that are final and not in `done`, in conversation order, stopping at the first
        unfinished one (so readers see turns in order); they are added to `done`."""
        fresh: list[Turn] = []
        for turn in self.turns():
            if turn.item_id in done:
                continue
            if not turn.final:
                break
            done.add(turn.item_id)
            fresh.append(turn)
        return fresh

    @property
    def assistant_speaking(self) -> bool:
        return self._assistant_speaking

    @property
    def model(self) -> str:
        return str(self.session.get("model") or "")

    @property
    def voice(self) -> str:
        return str(((self.session.get("audio") or {}).get("output") or {}).get("voice") or "")

    # --- building

    def _place(self, turn: Turn) -> Turn:
        if turn.item_id in self._turns:
            return self._turns[turn.item_id]
        self._turns[turn.item_id] = turn
        prev = turn.previous_item_id
        if prev is not None and prev in self._turns:
            self._order.insert(self._order.index(prev) + 1, turn.item_id)
        else:  # the first item, or one whose predecessor we never saw
            self._order.append(turn.item_id)
        return turn

    def _ensure(self, item_id: str, role: Literal["user", "assistant"], **fields: Any) -> Turn:
        turn = self._turns.get(item_id)
        if turn is None:
            turn = self._place(Turn(item_id=item_id, role=role, started_at=self.clock(), **fields))
        return turn

    def _from_item(self, item: Mapping[str, Any], previous: str | None) -> None:
        kind = item.get("type")
        item_id = str(item.get("id") or "")
        if not item_id:
            return
        if kind == "function_call_output":
            call = self._by_call.get(str(item.get("call_id")))
            if call and call in self._turns:
                self._turns[call].output = str(item.get("output", ""))
            return
        if kind == "function_call":
            turn = self._ensure(
                item_id, "assistant", kind="function_call", previous_item_id=previous
            )
            turn.name = str(item.get("name") or turn.name)
            turn.call_id = str(item.get("call_id") or turn.call_id)
            turn.arguments = str(item.get("arguments") or turn.arguments)
            self._by_call[turn.call_id] = item_id
            if item.get("status") == "completed":
                turn.status = "completed"
                turn.ended_at = turn.ended_at or self.clock()
            return
        role = item.get("role")
        if kind != "message" or role not in ("user", "assistant"):
            return
        content = item.get("content") or []
        turn = self._ensure(item_id, role, previous_item_id=previous)
        if turn.previous_item_id is None and previous is not None:
            turn.previous_item_id = previous
        for part in content:
            ptype = part.get("type")
            if ptype == "input_text":
                turn.typed = True
                turn.text = str(part.get("text") or "")
            elif ptype in ("input_audio", "output_audio") and part.get("transcript"):
                turn.text = str(part["transcript"])
            elif ptype == "output_text" and part.get("text"):
                turn.text = str(part["text"])
        if role == "user":
            audio = any(p.get("type") == "input_audio" for p in content)
            transcribing = bool(
                ((self.session.get("audio") or {}).get("input") or {}).get("transcription")
            )
            if audio and transcribing and not turn.text and turn.status == "in_progress":
                turn.awaiting_transcript = True
            if item.get("status") in ("completed", None) or turn.typed:
                turn.status = "completed"
                turn.ended_at = turn.ended_at or self.clock()

    def apply(
        self,
        event: Mapping[str, Any],
        direction: Literal["client", "server"] = "server",
    ) -> None:
        self.events_seen += 1
        kind = str(event.get("type", ""))
        self._log(event, direction)
        if direction == "client":
            return
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, event)

    def _log(self, event: Mapping[str, Any], direction: Literal["client", "server"]) -> None:
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
            error=kind == "error",
            key=key,
            text=str(event.get("delta") or ""),
        )
        self.log.append(line)
        if key:
            if len(self._folds) > 256:
                self._folds.clear()
            self._folds[key] = line

    @property
    def speaking(self) -> Speaking:
        if self._user_speaking:
            return "you"
        return "assistant" if self._assistant_speaking else "listening"

    # --- event handlers (one per server event type)

    def _session(self, event: Mapping[str, Any]) -> None:
        self.session = dict(event.get("session") or {})

    def _speech_started(self, event: Mapping[str, Any]) -> None:
        self._user_speaking = True

    def _speech_stopped(self, event: Mapping[str, Any]) -> None:
        self._user_speaking = False

    def _item(self, event: Mapping[str, Any]) -> None:
        item = event.get("item")
        if isinstance(item, dict):
            self._from_item(item, event.get("previous_item_id"))

    def _transcription_delta(self, event: Mapping[str, Any]) -> None:
        turn = self._ensure(str(event.get("item_id")), "user")
        turn.text += str(event.get("delta") or "")

    def _transcription_completed(self, event: Mapping[str, Any]) -> None:
        turn = self._ensure(str(event.get("item_id")), "user")
        turn.text = str(event.get("transcript") or "")
        turn.awaiting_transcript = False
        if turn.status == "in_progress":
            turn.status = "completed"
        turn.ended_at = turn.ended_at or self.clock()

    def _transcription_failed(self, event: Mapping[str, Any]) -> None:
        turn = self._ensure(str(event.get("item_id")), "user")
        turn.awaiting_transcript = False
        turn.status = "failed"
        error = event.get("error") or {}
        self.errors.append(f"transcription failed: {error.get('message', '')}")

    def _assistant_delta(self, event: Mapping[str, Any]) -> None:
        turn = self._ensure(
            str(event.get("item_id")), "assistant", response_id=event.get("response_id")
        )
        turn.text += str(event.get("delta") or "")

    def _assistant_done(self, event: Mapping[str, Any]) -> None:
        turn = self._ensure(
            str(event.get("item_id")), "assistant", response_id=event.get("response_id")
        )
        final = event.get("transcript", event.get("text"))
        if final is not None:
            turn.text = str(final)

    def _arguments(self, event: Mapping[str, Any]) -> None:
        turn = self._ensure(str(event.get("item_id")), "assistant", kind="function_call")
        if event["type"].endswith(".delta"):
            turn.arguments += str(event.get("delta") or "")
        else:
            turn.arguments = str(event.get("arguments") or turn.arguments)
            turn.name = str(event.get("name") or turn.name)
        turn.call_id = str(event.get("call_id") or turn.call_id)
        self._by_call[turn.call_id] = turn.item_id

    def _response_created(self, event: Mapping[str, Any]) -> None:
        self.active_response = str((event.get("response") or {}).get("id") or "") or None

    def _response_done(self, event: Mapping[str, Any]) -> None:
        response = event.get("response") or {}
        if self.active_response == response.get("id"):
            self.active_response = None
        status = response.get("status")
        mapped = _TURN_STATUS.get(str(status), "failed")
        for item in response.get("output") or []:
            item_id = str(item.get("id") or "")
            turn = self._turns.get(item_id)
            if turn is None:
                self._from_item(item, None)
                turn = self._turns.get(item_id)
            if turn is None:
                continue
            for part in item.get("content") or []:
                heard = part.get("transcript", part.get("text"))
                if heard is not None and status != "completed":
                    turn.text = str(heard)  # the server's view of what was actually said
            turn.status = mapped
            turn.ended_at = self.clock()
        if response.get("usage"):
            self.usage.add(response["usage"])
        if status == "failed":
            details = response.get("status_details") or {}
            error = details.get("error") or {}
            self.errors.append(f"response failed: {error.get('message') or error.get('code')}")

    def _audio_started(self, event: Mapping[str, Any]) -> None:
        self._assistant_speaking = True

    def _audio_stopped(self, event: Mapping[str, Any]) -> None:
        self._assistant_speaking = False

    def _truncated(self, event: Mapping[str, Any]) -> None:
        turn = self._turns.get(str(event.get("item_id")))
        if turn is not None:
            turn.status = "interrupted"

    def _error(self, event: Mapping[str, Any]) -> None:
        error = event.get("error") or {}
        self.errors.append(f"{error.get('code') or error.get('type')}: {error.get('message')}")

    def _rate_limits(self, event: Mapping[str, Any]) -> None:
        self.rate_limits = list(event.get("rate_limits") or [])

    def interrupt_locally(self) -> None:
        """The user cut the assistant off (barge-in or `i`): it is no longer speaking."""
        self._assistant_speaking = False


_TURN_STATUS: dict[str, Status] = {  # response.done status -> what the turn shows
    "completed": "completed",
    "cancelled": "interrupted",
    "incomplete": "interrupted",
}

_HANDLERS: dict[str, Callable[[Conversation, Mapping[str, Any]], None]] = {
    "session.created": Conversation._session,
    "session.updated": Conversation._session,
    "input_audio_buffer.speech_started": Conversation._speech_started,
    "input_audio_buffer.speech_stopped": Conversation._speech_stopped,
    "input_audio_buffer.committed": Conversation._speech_stopped,
    "conversation.item.added": Conversation._item,
    "conversation.item.created": Conversation._item,
    "conversation.item.done": Conversation._item,
    "conversation.item.retrieved": Conversation._item,
    "conversation.item.input_audio_transcription.delta": Conversation._transcription_delta,
    "conversation.item.input_audio_transcription.completed": Conversation._transcription_completed,
    "conversation.item.input_audio_transcription.failed": Conversation._transcription_failed,
    "response.output_audio_transcript.delta": Conversation._assistant_delta,
    "response.output_text.delta": Conversation._assistant_delta,
    "response.output_audio_transcript.done": Conversation._assistant_done,
    "response.output_text.done": Conversation._assistant_done,
    "response.function_call_arguments.delta": Conversation._arguments,
    "response.function_call_arguments.done": Conversation._arguments,
    "response.created": Conversation._response_created,
    "response.done": Conversation._response_done,
    "output_audio_buffer.started": Conversation._audio_started,
    "output_audio_buffer.stopped": Conversation._audio_stopped,
    "output_audio_buffer.cleared": Conversation._audio_stopped,
    "conversation.item.truncated": Conversation._truncated,
    "rate_limits.updated": Conversation._rate_limits,
    "error": Conversation._error,
}
