"""Pure: the conversation as the user sees it, built from typed Realtime server events.

Turns are ordered by the server's `previous_item_id` chain, not by arrival (a user transcript
often lands after the reply to it). A turn is a `Message` (either side's words) or a
`FunctionCall` (name, arguments, output). Also: who is speaking, the active response, usage and
cost. No I/O; time comes from a clock parameter. The event log lives in `eventlog.py`.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from rtc_voice.protocol import client as proto
from rtc_voice.protocol import server as ev
from rtc_voice.protocol.names import ServerEventType

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
    duration_s: float | None = None  # how long the tool ran
    kind: str = "function"  # or "mcp_call" / "mcp_list_tools" (run on OpenAI's side)
    approved_by: str | None = None  # "not needed", "you", "--yes", or why it was declined
    role: ClassVar[Role] = "assistant"

    @property
    def final(self) -> bool:
        return self.status != "in_progress" and self.output is not None


Turn = Message | FunctionCall

FinalStatus = Literal["completed", "interrupted", "failed"]


def final_status(turn: Turn) -> FinalStatus:
    """The status to report for a turn once the call is over: one of the documented three.
    A reply still in progress was cut off (interrupted); a spoken turn whose transcript never
    came is failed."""
    if isinstance(turn, Message) and turn.awaiting_transcript:
        return "failed"
    if turn.status == "in_progress":
        return "failed" if turn.role == "user" and isinstance(turn, Message) else "interrupted"
    return turn.status


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

    def summary(self, seconds: float, cost_usd: float | None) -> str:
        """The call in one sentence for its end: `00:42 on the call; 3 responses, 512 input
        and 840 output tokens, about $0.0123.` (the transcript's wording; no cost without
        prices)."""
        minutes, secs = divmod(int(max(0.0, seconds)), 60)
        plural = "" if self.responses == 1 else "s"
        cost = f", about ${cost_usd:.4f}" if cost_usd is not None else ""
        return (
            f"{minutes:02d}:{secs:02d} on the call; {self.responses} response{plural}, "
            f"{self.input_tokens} input and {self.output_tokens} output tokens{cost}."
        )

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


_MCP_PROGRESS = (
    ServerEventType.MCP_LIST_TOOLS_FAILED,
    ServerEventType.RESPONSE_MCP_CALL_ARGUMENTS_DELTA,
    ServerEventType.RESPONSE_MCP_CALL_ARGUMENTS_DONE,
)


class Conversation:
    """Apply every server event in arrival order; read `turns()`, `speaking`, `usage`."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._turns: dict[str, Turn] = {}
        self._order: list[str] = []
        self._by_call: dict[str, str] = {}
        self._user_speaking = False
        self._assistant_speaking = False
        self._speech: dict[str, tuple[float, float | None]] = {}  # item -> speech start, stop
        self._cut: dict[str, float] = {}  # assistant item -> when the user cut it off
        self.usage = Usage()
        self.session: Mapping[str, Any] = {}
        self.errors: list[str] = []
        self.rate_limits: list[Mapping[str, Any]] = []
        self.active_response: str | None = None
        self.mcp_approvals: dict[str, str] = {}  # approval request id -> who decided

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
                if turn.output is None or turn.kind != "function":
                    continue  # MCP items are the server's own; it lists and calls again
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

    def record_tool(
        self, call_id: str, duration_s: float, approved_by: str, output: str | None = None
    ) -> None:
        """What the client did with a function call: how long the tool ran, who approved it,
        and the output it sends back (the server echoes that item too)."""
        call = self._turns.get(self._by_call.get(call_id, ""))
        if isinstance(call, FunctionCall):
            call.duration_s = duration_s
            call.approved_by = approved_by
            if output is not None:
                call.output = output

    def record_mcp_decision(self, request_id: str, approved_by: str, output: str) -> None:
        """The user's answer to an MCP approval request: kept on the request's turn, and on the
        call that follows it."""
        self.mcp_approvals[request_id] = approved_by
        request = self._turns.get(request_id)
        if isinstance(request, FunctionCall):
            request.approved_by = approved_by
            request.output = output
            request.status = "completed"
            request.ended_at = request.ended_at or self.clock()

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

    def _speech_times(self, item_id: str) -> None:
        """A spoken turn lasts from speech start to speech stop (not from when its item or its
        transcript arrived)."""
        turn = self._turns.get(item_id)
        times = self._speech.get(item_id)
        if not isinstance(turn, Message) or turn.role != "user" or times is None:
            return
        turn.started_at = times[0]
        if times[1] is not None:
            turn.ended_at = times[1]

    def _mcp_item(self, item: Mapping[str, Any], item_id: str, previous: str | None) -> None:
        """An MCP server's tools listed, or one of them called, on OpenAI's side: shown like a
        function call (`label.tool(arguments) -> output`)."""
        fn = self._call(item_id, previous)
        label = str(item.get("server_label") or "mcp")
        fn.kind = str(item.get("type"))
        fn.call_id = item_id
        if fn.kind == "mcp_list_tools":
            fn.name = f"{label}: list tools"
            tools = item.get("tools")
            if tools:
                fn.output = ", ".join(str(t.get("name")) for t in tools)
                fn.status = "completed"
            return
        fn.name = f"{label}.{item.get('name') or ''}"
        fn.arguments = str(item.get("arguments") or fn.arguments)
        if fn.kind == "mcp_approval_request":
            return  # its output is the user's answer (`record_mcp_decision`)
        request = item.get("approval_request_id")
        if request and request in self.mcp_approvals:
            fn.approved_by = self.mcp_approvals[str(request)]
        error = item.get("error")
        if isinstance(error, Mapping):
            fn.output = json.dumps({"error": str(error.get("message") or error.get("type"))})
            fn.status = "failed"
        elif item.get("output") is not None:
            fn.output = str(item.get("output"))
            fn.status = "completed"

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
        if kind in ("mcp_call", "mcp_list_tools", "mcp_approval_request"):
            self._mcp_item(item, item_id, previous)
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
            self._speech_times(item_id)

    def apply(self, event: ev.ServerEvent | Mapping[str, Any]) -> None:
        """Fold one server event (typed, or its JSON) into the conversation."""
        if not isinstance(event, ev.ServerEvent):
            event = ev.parse(event)
        match event:
            case ev.SessionChanged(session=session):
                self.session = dict(session)
            case ev.SpeechStarted(item_id=item_id):
                self._user_speaking = True
                if item_id:
                    self._speech[item_id] = (self.clock(), None)
                    self._speech_times(item_id)
            case ev.SpeechStopped(item_id=item_id):
                self._user_speaking = False
                start, stop = self._speech.get(item_id, (None, None))
                if item_id and start is not None and stop is None:
                    self._speech[item_id] = (start, self.clock())
                    self._speech_times(item_id)
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
                    truncated.ended_at = self._cut.get(item_id) or self.clock()
            case ev.Unknown(type=kind, raw=raw) if kind in _MCP_PROGRESS and raw.get("item_id"):
                fn = self._call(str(raw["item_id"]))
                if kind == ServerEventType.MCP_LIST_TOOLS_FAILED:
                    fn.kind, fn.status = "mcp_list_tools", "failed"
                    fn.output = json.dumps({"error": "listing the MCP server's tools failed"})
                elif kind == ServerEventType.RESPONSE_MCP_CALL_ARGUMENTS_DELTA:
                    fn.kind = "mcp_call"
                    fn.arguments += str(raw.get("delta") or "")
                else:
                    fn.kind = "mcp_call"
                    fn.arguments = str(raw.get("arguments") or fn.arguments)
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
            turn.ended_at = self._cut.get(item_id) or self.clock()  # a cut turn ends at the cut
        if response.get("usage"):
            self.usage.add(response["usage"])
        if status == "failed":
            details = response.get("status_details") or {}
            error = details.get("error") or {}
            self.errors.append(f"response failed: {error.get('message') or error.get('code')}")

    # --- a new call for the same conversation (reconnect, rollover)

    def connection_lost(self) -> None:
        """The call went away mid-conversation: what was in flight is over (a reply cut off is
        interrupted, a transcript that never came is failed); nobody is speaking."""
        now = self.clock()
        for turn in self._turns.values():
            if isinstance(turn, Message) and turn.awaiting_transcript:
                turn.awaiting_transcript = False
                turn.status = "failed" if not turn.text else turn.status
            if isinstance(turn, FunctionCall):
                if turn.status == "in_progress" or turn.output is None:
                    if turn.status == "completed":
                        continue  # finished by the model: its tool's output is still coming
                    turn.status = "interrupted"
                    turn.output = turn.output or ""
                    turn.ended_at = turn.ended_at or now
            elif turn.status == "in_progress":
                turn.status = "interrupted" if turn.role == "assistant" else "failed"
                turn.ended_at = turn.ended_at or now
        self._user_speaking = self._assistant_speaking = False
        self.active_response = None

    def replay_items(self) -> list[JSON]:
        """The conversation so far as `conversation.item.create` items, in order, with their
        ids kept: words as text (a reply cut off as far as it was heard), function calls and
        their outputs. Turns with no words (an untranscribed utterance) are left out."""
        items: list[JSON] = []
        for turn in self.turns():
            if isinstance(turn, FunctionCall):
                if not turn.call_id or not turn.name or turn.status == "interrupted":
                    continue
                items.append(
                    {
                        "id": turn.item_id,
                        "type": "function_call",
                        "call_id": turn.call_id,
                        "name": turn.name,
                        "arguments": turn.arguments or "{}",
                    }
                )
                if turn.output is not None:
                    items.append(
                        {
                            "id": f"{turn.item_id}_out"[-32:],
                            "type": "function_call_output",
                            "call_id": turn.call_id,
                            "output": turn.output,
                        }
                    )
                continue
            if not turn.text.strip():
                continue
            part = "input_text" if turn.role == "user" else "output_text"
            items.append(
                {
                    "id": turn.item_id,
                    "type": "message",
                    "role": turn.role,
                    "content": [{"type": part, "text": turn.text}],
                }
            )
        return items

    def interrupt_locally(self) -> None:
        """The user cut the assistant off (barge-in or `i`): it is no longer speaking, and the
        reply in progress ends now."""
        was_speaking, self._assistant_speaking = self._assistant_speaking, False
        for item_id in reversed(self._order):
            turn = self._turns[item_id]
            if isinstance(turn, Message) and turn.role == "assistant":
                if turn.status == "in_progress" or was_speaking:
                    turn.ended_at = self._cut[item_id] = self.clock()
                return
