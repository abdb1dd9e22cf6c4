"""Pure: the JSON a client sends, built once: session config from settings, request bodies and
client events. Tests validate every builder against `openai.types.realtime`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rtc_voice.protocol.names import ClientEventType as C

if TYPE_CHECKING:
    from rtc_voice.config import Settings

JSON = dict[str, Any]


def turn_detection(settings: Settings) -> JSON | None:
    """The `audio.input.turn_detection` object; None means manual turns (push-to-talk)."""
    if settings.turn_detection == "none":
        return None
    if settings.turn_detection == "semantic_vad":
        return {"type": "semantic_vad", "eagerness": settings.eagerness}
    return {
        "type": "server_vad",
        "threshold": settings.vad_threshold,
        "prefix_padding_ms": settings.prefix_padding_ms,
        "silence_duration_ms": settings.silence_duration_ms,
    }


def session_config(settings: Settings) -> JSON:
    """The GA `session` object (type realtime) built from settings; unset values are omitted so
    the server's defaults apply, except turn detection, whose `null` means manual turns."""
    audio_input: JSON = {"turn_detection": turn_detection(settings)}
    if settings.transcription_enabled:
        transcription: JSON = {"model": settings.transcription_model}
        if settings.transcription_language:
            transcription["language"] = settings.transcription_language
        audio_input["transcription"] = transcription
    if settings.noise_reduction != "off":
        audio_input["noise_reduction"] = {"type": settings.noise_reduction}
    session: JSON = {
        "type": "realtime",
        "model": settings.model,
        "output_modalities": list(settings.output_modalities),
        "audio": {"input": audio_input, "output": {"voice": settings.voice}},
    }
    if settings.instructions:
        session["instructions"] = settings.instructions
    return session


def client_secret_request(settings: Settings) -> JSON:
    """Body for `POST /realtime/client_secrets`."""
    return {
        "expires_after": {"anchor": "created_at", "seconds": settings.token_ttl},
        "session": session_config(settings),
    }


# --- client events ---------------------------------------------------------------------------


def user_message(text: str) -> JSON:
    """`conversation.item.create` for a typed user message."""
    return {
        "type": C.CONVERSATION_ITEM_CREATE,
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


def item_create(item: JSON, previous_item_id: str | None = None) -> JSON:
    """`conversation.item.create` for any item, placed after `previous_item_id` when given."""
    event: JSON = {"type": C.CONVERSATION_ITEM_CREATE, "item": item}
    if previous_item_id is not None:
        event["previous_item_id"] = previous_item_id
    return event


def text_message(item_id: str, role: str, text: str) -> JSON:
    """A message item in words: what the user said or typed, or what the assistant said."""
    kind = "input_text" if role == "user" else "output_text"
    return {
        "id": item_id,
        "type": "message",
        "role": role,
        "content": [{"type": kind, "text": text}],
    }


def function_call_output(call_id: str, output: str) -> JSON:
    """`conversation.item.create` carrying a tool's result back to the model."""
    return {
        "type": C.CONVERSATION_ITEM_CREATE,
        "item": {"type": "function_call_output", "call_id": call_id, "output": output},
    }


def session_tools(tools: Sequence[JSON]) -> JSON:
    """`session.update` declaring function tools (what an ephemeral key's session lacks)."""
    return {
        "type": C.SESSION_UPDATE,
        "session": {"type": "realtime", "tools": list(tools), "tool_choice": "auto"},
    }


def response_create() -> JSON:
    return {"type": C.RESPONSE_CREATE}


def response_cancel() -> JSON:
    return {"type": C.RESPONSE_CANCEL}


def output_audio_buffer_clear() -> JSON:
    return {"type": C.OUTPUT_AUDIO_BUFFER_CLEAR}


def input_audio_buffer_clear() -> JSON:
    return {"type": C.INPUT_AUDIO_BUFFER_CLEAR}


def input_audio_buffer_commit() -> JSON:
    return {"type": C.INPUT_AUDIO_BUFFER_COMMIT}
