"""Pure: the conversation as the user sees it, built from typed Realtime server events.

Turns are ordered by the server's `previous_item_id` chain, not by arrival (a user transcript
often lands after the reply to it). A turn is a `Message` (either side's words) or a
`FunctionCall` (name, arguments, output). Also: who is speaking, the active response, usage and
cost. No I/O; time comes from a clock parameter. The event log lives in `eventlog.py`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from rtc_voice.protocol import client as proto
from rtc_voice.protocol import server as ev

JSON = dict[str, Any]
Status = Literal["in_progress", "completed", "interrupted", "failed"]
Speaking = Literal["listening", "you", "assistant"]
Role = Literal["user", "assistant"]


@dataclass
class Message:
    """What the user or the assistant said (spoken or typed)."""

    item_id: str
    role: Role
    text: str = ""
    status: Status = "in_progress"
    previous_item_id: str | None = None
    started_at: float = 0.0
    ended_at: float | None = None
    typed: bool = False
    awaiting_transcript: bool = False
    response_id: str | None = None

    @property
    def final(self) -> bool:
        """Nothing more will change it (what transcripts wait for before writing it)."""
        return self.status != "in_progress" and not self.awaiting_transcript


@dataclass
class FunctionCall:
    """A tool the model called, and the output sent back."""

    item_id: str
    name: str = ""
    call_id: str = ""
    arguments: str = ""
    output: str | None = None
    status: Status = "in_progress"
    previous_item_id: str | None = None
    started_at: float = 0.0
    ended_at: float | None = None
    role: ClassVar[Role] = "assistant"

    @property
    def final(self) -> bool:
        return self.status != "in_progress" and self.output is not None


Turn = Message | FunctionCall


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


_TURN_STATUS: dict[str, Status] = {  # response.done status -> what the turn shows
    "completed": "completed",
    "cancelled": "interrupted",
    "incomplete": "interrupted",
}


class Conversation:
    """Apply every server event in arrival order; read `turns()`, `speaking`, `usage`."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._turns: dict[str, Turn] = {}
        self._order: list[str] = []
        self._by_call: dict[str, str] = {}
        self._user_speaking = False
        self._assistant_speaking = False
        self.usage = Usage()
        self.session: Mapping[str, Any] = {}
        self.errors: list[str] = []
        self.rate_limits: list[Mapping[str, Any]] = []
        self.active_response: str | None = None

    # --- reading

    def turns(self) -> list[Turn]:
        return [self._turns[i] for i in self._order]

    def turn(self, item_id: str) -> Turn | None:
        return self._turns.get(item_id)

    def snapshot_turns(self, count: int) -> tuple[Turn, ...]:
        """Copies of the newest `count` turns, for a snapshot another thread may read."""
        return tuple(copy.copy(self._turns[i]) for i in self._order[-count:])

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

    def replay_events(self, prefix: str = "replay") -> list[JSON]:
        """The conversation so far as `conversation.item.create` events for a new session, in
        order and chained by `previous_item_id`: both sides' words as text (audio cannot be
        replayed), function calls with their outputs. Unfinished turns are left out."""
        events: list[JSON] = []
        previous: str | None = None

        def add(item: JSON) -> None:
            nonlocal previous
            events.append(proto.item_create(item, previous))
            previous = item["id"]

        for index, turn in enumerate(self.turns()):
            item_id = f"{prefix}_{index}"
            if isinstance(turn, FunctionCall):
                if turn.output is None:
                    continue
                add(
                    {
                        "id": item_id,
                        "type": "function_call",
                        "call_id": turn.call_id,
                        "name": turn.name,
                        "arguments": turn.arguments,
                    }
                )
                add(
                    {
                        "id": f"{item_id}_out",
                        "type": "function_call_output",
                        "call_id": turn.call_id,
                        "output": turn.output,
                    }
                )
            elif turn.text and turn.status != "in_progress":
                add(proto.text_message(item_id, turn.role, turn.text))
        return events

    @property
    def assistant_speaking(self) -> bool:
        return self._assistant_speaking

    @property
    def speaking(self) -> Speaking:
        if self._user_speaking:
            return "you"
        return "assistant" if self._assistant_speaking else "listening"

    @property
    def awaiting_transcripts(self) -> bool:
        return any(isinstance(t, Message) and t.awaiting_transcript for t in self._turns.values())

    @property
    def model(self) -> str:
        return str(self.session.get("model") or "")

    @property
    def voice(self) -> str:
        return str(((self.session.get("audio") or {}).get("output") or {}).get("voice") or "")

    # --- building

    def _place(self, turn: Turn) -> Turn:
        known = turn.item_id in self._turns
        self._turns[turn.item_id] = turn
        if known:  # the same id seen as the other kind of turn: keep its place
            return turn
        prev = turn.previous_item_id
        if prev is not None and prev in self._turns:
            self._order.insert(self._order.index(prev) + 1, turn.item_id)
        else:  # the first item, or one whose predecessor we never saw
            self._order.append(turn.item_id)
        return turn

    def _message(
        self, item_id: str, role: Role, previous: str | None = None, **fields: Any
    ) -> Message:
        turn = self._turns.get(item_id)
        if isinstance(turn, Message):
            return turn
        message = Message(
            item_id=item_id, role=role, previous_item_id=previous, started_at=self.clock(), **fields
        )
        self._place(message)
        return message

    def _call(self, item_id: str, previous: str | None = None) -> FunctionCall:
        turn = self._turns.get(item_id)
        if isinstance(turn, FunctionCall):
            return turn
        call = FunctionCall(item_id=item_id, previous_item_id=previous, started_at=self.clock())
        self._place(call)
        return call

    def _from_item(self, item: Mapping[str, Any], previous: str | None) -> None:
        kind = item.get("type")
        item_id = str(item.get("id") or "")
        if not item_id:
            return
        if kind == "function_call_output":
            call = self._turns.get(self._by_call.get(str(item.get("call_id")), ""))
            if isinstance(call, FunctionCall):
                call.output = str(item.get("output", ""))
            return
        if kind == "function_call":
            fn = self._call(item_id, previous)
            fn.name = str(item.get("name") or fn.name)
            fn.call_id = str(item.get("call_id") or fn.call_id)
            fn.arguments = str(item.get("arguments") or fn.arguments)
            self._by_call[fn.call_id] = item_id
            if item.get("status") == "completed":
                fn.status = "completed"
                fn.ended_at = fn.ended_at or self.clock()
            return
        role = item.get("role")
        if kind != "message" or role not in ("user", "assistant"):
            return
        content = item.get("content") or []
        turn = self._message(item_id, role, previous)
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

    def apply(self, event: ev.ServerEvent | Mapping[str, Any]) -> None:
        """Fold one server event (typed, or its JSON) into the conversation."""
        if not isinstance(event, ev.ServerEvent):
            event = ev.parse(event)
        match event:
            case ev.SessionChanged(session=session):
                self.session = dict(session)
            case ev.SpeechStarted():
                self._user_speaking = True
            case ev.SpeechStopped():
                self._user_speaking = False
            case ev.ItemChanged(item=item, previous_item_id=previous):
                self._from_item(item, previous)
            case ev.TranscriptionDelta(item_id=item_id, delta=delta):
                self._message(item_id, "user").text += delta
            case ev.TranscriptionCompleted(item_id=item_id, transcript=transcript):
                turn = self._message(item_id, "user")
                turn.text = transcript
                turn.awaiting_transcript = False
                if turn.status == "in_progress":
                    turn.status = "completed"
                turn.ended_at = turn.ended_at or self.clock()
            case ev.TranscriptionFailed(item_id=item_id, message=message):
                turn = self._message(item_id, "user")
                turn.awaiting_transcript = False
                turn.status = "failed"
                self.errors.append(f"transcription failed: {message}")
            case ev.AssistantTextDelta(item_id=item_id, response_id=rid, delta=delta):
                self._message(item_id, "assistant", response_id=rid).text += delta
            case ev.AssistantTextDone(item_id=item_id, response_id=rid, text=text):
                turn = self._message(item_id, "assistant", response_id=rid)
                if text is not None:
                    turn.text = text
            case ev.ArgumentsDelta(item_id=item_id, call_id=call_id, delta=delta):
                fn = self._call(item_id)
                fn.arguments += delta
                fn.call_id = call_id or fn.call_id
                self._by_call[fn.call_id] = item_id
            case ev.ArgumentsDone(item_id=item_id, call_id=call_id, name=name, arguments=args):
                fn = self._call(item_id)
                fn.arguments = args or fn.arguments
                fn.name = name or fn.name
                fn.call_id = call_id or fn.call_id
                self._by_call[fn.call_id] = item_id
            case ev.ResponseCreated(response_id=rid):
                self.active_response = rid or None
            case ev.ResponseDone():
                self._response_done(event)
            case ev.OutputAudioStarted():
                self._assistant_speaking = True
            case ev.OutputAudioStopped():
                self._assistant_speaking = False
            case ev.ItemTruncated(item_id=item_id):
                truncated = self._turns.get(item_id)
                if truncated is not None:
                    truncated.status = "interrupted"
            case ev.RateLimitsUpdated(rate_limits=limits):
                self.rate_limits = list(limits)
            case ev.Error(code=code, error_type=etype, message=message):
                self.errors.append(f"{code or etype}: {message or None}")

    def _response_done(self, event: ev.ResponseDone) -> None:
        response = event.response
        if self.active_response == event.response_id:
            self.active_response = None
        status = event.status
        mapped = _TURN_STATUS.get(status, "failed")
        for item in event.output:
            item_id = str(item.get("id") or "")
            turn = self._turns.get(item_id)
            if turn is None:
                self._from_item(item, None)
                turn = self._turns.get(item_id)
            if turn is None:
                continue
            if isinstance(turn, Message):
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

    def interrupt_locally(self) -> None:
        """The user cut the assistant off (barge-in or `i`): it is no longer speaking."""
        self._assistant_speaking = False
