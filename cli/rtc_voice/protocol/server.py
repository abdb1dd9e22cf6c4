"""Pure: server events parsed into a tagged union of frozen dataclasses.

`parse` never raises: a field of the wrong type reads as empty, and an event type we do not act
on comes back as `Unknown` with its JSON kept (the log and `--json` show it unchanged). Every
event keeps its wire JSON in `raw`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rtc_voice.protocol.defaults import SESSION_CAP_CODE
from rtc_voice.protocol.names import ServerEventType as S

JSON = dict[str, Any]

# The message OpenAI sends when it ends a session at the 60-minute cap (seen on WebSocket closes,
# where no code is given); the code is what the local server and newer servers send.
_SESSION_CAP_MESSAGE = "Your session hit the maximum duration"


@dataclass(frozen=True, kw_only=True)
class ServerEvent:
    type: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True, kw_only=True)
class SessionChanged(ServerEvent):
    """session.created / session.updated"""

    session: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class SpeechStarted(ServerEvent):
    item_id: str
    audio_start_ms: int | None


@dataclass(frozen=True, kw_only=True)
class SpeechStopped(ServerEvent):
    """speech_stopped, and committed (the turn is over either way)"""

    item_id: str
    previous_item_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ItemChanged(ServerEvent):
    """conversation.item.added / created / done / retrieved"""

    item: Mapping[str, Any]
    previous_item_id: str | None


@dataclass(frozen=True, kw_only=True)
class TranscriptionDelta(ServerEvent):
    item_id: str
    delta: str


@dataclass(frozen=True, kw_only=True)
class TranscriptionCompleted(ServerEvent):
    item_id: str
    transcript: str


@dataclass(frozen=True, kw_only=True)
class TranscriptionFailed(ServerEvent):
    item_id: str
    message: str


@dataclass(frozen=True, kw_only=True)
class AssistantTextDelta(ServerEvent):
    """response.output_audio_transcript.delta / response.output_text.delta"""

    item_id: str
    response_id: str | None
    delta: str


@dataclass(frozen=True, kw_only=True)
class AssistantTextDone(ServerEvent):
    """response.output_audio_transcript.done / response.output_text.done"""

    item_id: str
    response_id: str | None
    text: str | None


@dataclass(frozen=True, kw_only=True)
class ArgumentsDelta(ServerEvent):
    item_id: str
    call_id: str
    delta: str


@dataclass(frozen=True, kw_only=True)
class ArgumentsDone(ServerEvent):
    item_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, kw_only=True)
class ResponseCreated(ServerEvent):
    response_id: str | None


@dataclass(frozen=True, kw_only=True)
class FunctionCallItem:
    """A function call the model finished, as listed in `response.done`."""

    item_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, kw_only=True)
class ResponseDone(ServerEvent):
    response_id: str | None
    status: str
    response: Mapping[str, Any]

    @property
    def output(self) -> list[Mapping[str, Any]]:
        return [o for o in _list(self.response.get("output")) if isinstance(o, Mapping)]

    @property
    def function_calls(self) -> list[FunctionCallItem]:
        return [
            FunctionCallItem(
                item_id=_str(item.get("id")),
                call_id=_str(item.get("call_id")),
                name=_str(item.get("name")),
                arguments=_str(item.get("arguments")) or "{}",
            )
            for item in self.output
            if item.get("type") == "function_call" and item.get("call_id")
        ]


@dataclass(frozen=True, kw_only=True)
class OutputAudioStarted(ServerEvent):
    response_id: str | None


@dataclass(frozen=True, kw_only=True)
class OutputAudioStopped(ServerEvent):
    """output_audio_buffer.stopped / output_audio_buffer.cleared"""

    response_id: str | None
    cleared: bool


@dataclass(frozen=True, kw_only=True)
class ItemTruncated(ServerEvent):
    item_id: str


@dataclass(frozen=True, kw_only=True)
class RateLimitsUpdated(ServerEvent):
    rate_limits: list[Mapping[str, Any]]


@dataclass(frozen=True, kw_only=True)
class Error(ServerEvent):
    code: str | None
    error_type: str | None
    message: str

    @property
    def session_cap(self) -> bool:
        """The server ended the session because it reached its maximum duration."""
        return self.code == SESSION_CAP_CODE or self.message.startswith(_SESSION_CAP_MESSAGE)


@dataclass(frozen=True, kw_only=True)
class Unknown(ServerEvent):
    """Any other event (or a malformed one): logged and shown, never acted on."""


def _str(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _opt(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _session(e: Mapping[str, Any], t: str) -> ServerEvent:
    return SessionChanged(type=t, raw=e, session=_map(e.get("session")))


def _speech_started(e: Mapping[str, Any], t: str) -> ServerEvent:
    return SpeechStarted(
        type=t, raw=e, item_id=_str(e.get("item_id")), audio_start_ms=_int(e.get("audio_start_ms"))
    )


def _speech_stopped(e: Mapping[str, Any], t: str) -> ServerEvent:
    return SpeechStopped(
        type=t,
        raw=e,
        item_id=_str(e.get("item_id")),
        previous_item_id=_opt(e.get("previous_item_id")),
    )


def _item(e: Mapping[str, Any], t: str) -> ServerEvent:
    item = e.get("item")
    if not isinstance(item, Mapping):
        return Unknown(type=t, raw=e)
    return ItemChanged(type=t, raw=e, item=item, previous_item_id=_opt(e.get("previous_item_id")))


def _transcription_delta(e: Mapping[str, Any], t: str) -> ServerEvent:
    return TranscriptionDelta(
        type=t, raw=e, item_id=_str(e.get("item_id")), delta=_str(e.get("delta"))
    )


def _transcription_completed(e: Mapping[str, Any], t: str) -> ServerEvent:
    return TranscriptionCompleted(
        type=t, raw=e, item_id=_str(e.get("item_id")), transcript=_str(e.get("transcript"))
    )


def _transcription_failed(e: Mapping[str, Any], t: str) -> ServerEvent:
    message = _str(_map(e.get("error")).get("message"))
    return TranscriptionFailed(type=t, raw=e, item_id=_str(e.get("item_id")), message=message)


def _text_delta(e: Mapping[str, Any], t: str) -> ServerEvent:
    return AssistantTextDelta(
        type=t,
        raw=e,
        item_id=_str(e.get("item_id")),
        response_id=_opt(e.get("response_id")),
        delta=_str(e.get("delta")),
    )


def _text_done(e: Mapping[str, Any], t: str) -> ServerEvent:
    final = e.get("transcript", e.get("text"))
    return AssistantTextDone(
        type=t,
        raw=e,
        item_id=_str(e.get("item_id")),
        response_id=_opt(e.get("response_id")),
        text=None if final is None else _str(final),
    )


def _arguments_delta(e: Mapping[str, Any], t: str) -> ServerEvent:
    return ArgumentsDelta(
        type=t,
        raw=e,
        item_id=_str(e.get("item_id")),
        call_id=_str(e.get("call_id")),
        delta=_str(e.get("delta")),
    )


def _arguments_done(e: Mapping[str, Any], t: str) -> ServerEvent:
    return ArgumentsDone(
        type=t,
        raw=e,
        item_id=_str(e.get("item_id")),
        call_id=_str(e.get("call_id")),
        name=_str(e.get("name")),
        arguments=_str(e.get("arguments")),
    )


def _response_created(e: Mapping[str, Any], t: str) -> ServerEvent:
    return ResponseCreated(type=t, raw=e, response_id=_opt(_map(e.get("response")).get("id")))


def _response_done(e: Mapping[str, Any], t: str) -> ServerEvent:
    response = _map(e.get("response"))
    return ResponseDone(
        type=t,
        raw=e,
        response_id=_opt(response.get("id")),
        status=_str(response.get("status")),
        response=response,
    )


def _audio_started(e: Mapping[str, Any], t: str) -> ServerEvent:
    return OutputAudioStarted(type=t, raw=e, response_id=_opt(e.get("response_id")))


def _audio_stopped(e: Mapping[str, Any], t: str) -> ServerEvent:
    return OutputAudioStopped(
        type=t,
        raw=e,
        response_id=_opt(e.get("response_id")),
        cleared=t == S.OUTPUT_AUDIO_BUFFER_CLEARED,
    )


def _truncated(e: Mapping[str, Any], t: str) -> ServerEvent:
    return ItemTruncated(type=t, raw=e, item_id=_str(e.get("item_id")))


def _rate_limits(e: Mapping[str, Any], t: str) -> ServerEvent:
    limits = [r for r in _list(e.get("rate_limits")) if isinstance(r, Mapping)]
    return RateLimitsUpdated(type=t, raw=e, rate_limits=limits)


def _error(e: Mapping[str, Any], t: str) -> ServerEvent:
    error = _map(e.get("error"))
    return Error(
        type=t,
        raw=e,
        code=_opt(error.get("code")),
        error_type=_opt(error.get("type")),
        message=_str(error.get("message")),
    )


_PARSERS: dict[str, Callable[[Mapping[str, Any], str], ServerEvent]] = {
    S.SESSION_CREATED: _session,
    S.SESSION_UPDATED: _session,
    S.INPUT_AUDIO_BUFFER_SPEECH_STARTED: _speech_started,
    S.INPUT_AUDIO_BUFFER_SPEECH_STOPPED: _speech_stopped,
    S.INPUT_AUDIO_BUFFER_COMMITTED: _speech_stopped,
    S.CONVERSATION_ITEM_ADDED: _item,
    S.CONVERSATION_ITEM_CREATED: _item,
    S.CONVERSATION_ITEM_DONE: _item,
    S.CONVERSATION_ITEM_RETRIEVED: _item,
    S.TRANSCRIPTION_DELTA: _transcription_delta,
    S.TRANSCRIPTION_COMPLETED: _transcription_completed,
    S.TRANSCRIPTION_FAILED: _transcription_failed,
    S.RESPONSE_OUTPUT_AUDIO_TRANSCRIPT_DELTA: _text_delta,
    S.RESPONSE_OUTPUT_TEXT_DELTA: _text_delta,
    S.RESPONSE_OUTPUT_AUDIO_TRANSCRIPT_DONE: _text_done,
    S.RESPONSE_OUTPUT_TEXT_DONE: _text_done,
    S.RESPONSE_FUNCTION_CALL_ARGUMENTS_DELTA: _arguments_delta,
    S.RESPONSE_FUNCTION_CALL_ARGUMENTS_DONE: _arguments_done,
    S.RESPONSE_CREATED: _response_created,
    S.RESPONSE_DONE: _response_done,
    S.OUTPUT_AUDIO_BUFFER_STARTED: _audio_started,
    S.OUTPUT_AUDIO_BUFFER_STOPPED: _audio_stopped,
    S.OUTPUT_AUDIO_BUFFER_CLEARED: _audio_stopped,
    S.CONVERSATION_ITEM_TRUNCATED: _truncated,
    S.RATE_LIMITS_UPDATED: _rate_limits,
    S.ERROR: _error,
}


def parse(event: Mapping[str, Any]) -> ServerEvent:
    """The typed form of one server event (JSON already decoded)."""
    kind = _str(event.get("type"))
    parser = _PARSERS.get(kind)
    return parser(event, kind) if parser is not None else Unknown(type=kind, raw=event)
