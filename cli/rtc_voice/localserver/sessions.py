"""Pure: the local server's session model. Validates GA session objects like OpenAI does
(unknown, missing and invalid parameters, with the JSON path in `param`), fills defaults, merges
`session.update`s.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass
from typing import Any

from rtc_voice.protocol.defaults import (
    AUDIO_FORMAT,
    DEFAULT_MODEL,
    EAGERNESS,
    KEY_TTL_DEFAULT,
    KEY_TTL_MAX,
    KEY_TTL_MIN,
    NOISE_REDUCTION_TYPES,
    OUTPUT_MODALITIES,
    SERVER_DEFAULT_VOICE,
    TURN_DETECTION_TYPES,
    VOICES,
    turn_detection_defaults,
)

JSON = dict[str, Any]

LOCAL_INSTRUCTIONS = (
    "This is the rtc-voice local server, an offline stand-in for the OpenAI Realtime API. "
    "It does not understand speech: it answers with fixed, honest replies."
)

# Known keys, as a tree: a dict means "an object with exactly these keys", None means any value.
_FORMAT = {"type": None, "rate": None}
_TURN_DETECTION = {
    "type": None,
    "threshold": None,
    "prefix_padding_ms": None,
    "silence_duration_ms": None,
    "create_response": None,
    "interrupt_response": None,
    "idle_timeout_ms": None,
    "eagerness": None,
}
_SESSION_KEYS: JSON = {
    "type": None,
    "model": None,
    "instructions": None,
    "output_modalities": None,
    "include": None,
    "max_output_tokens": None,
    "parallel_tool_calls": None,
    "prompt": None,
    "reasoning": None,
    "tool_choice": None,
    "tools": None,
    "tracing": None,
    "truncation": None,
    "audio": {
        "input": {
            "format": _FORMAT,
            "noise_reduction": {"type": None},
            "transcription": {"model": None, "language": None, "prompt": None},
            "turn_detection": _TURN_DETECTION,
        },
        "output": {"format": _FORMAT, "voice": None, "speed": None},
    },
}
_TOOL_KEYS = {"type", "name", "description", "parameters"}


@dataclass(frozen=True)
class ParamError(Exception):
    """An `invalid_request_error` with OpenAI's code, param path and message."""

    code: str
    param: str | None
    message: str

    def as_error(self, event_id: str | None = None) -> JSON:
        error: JSON = {
            "type": "invalid_request_error",
            "code": self.code,
            "message": self.message,
            "param": self.param,
        }
        if event_id is not None:
            error["event_id"] = event_id
        return error


def unknown(param: str) -> ParamError:
    return ParamError("unknown_parameter", param, f"Unknown parameter: '{param}'.")


def missing(param: str) -> ParamError:
    return ParamError(
        "missing_required_parameter", param, f"Missing required parameter: '{param}'."
    )


def invalid(param: str, value: object, allowed: str) -> ParamError:
    return ParamError(
        "invalid_value", param, f"Invalid value for '{param}': {value!r}. Expected {allowed}."
    )


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def _check_keys(value: object, schema: JSON, path: str) -> None:
    if not isinstance(value, dict):
        raise ParamError("invalid_type", path, f"Invalid type for '{path}': expected an object.")
    for key, sub in value.items():
        if key not in schema:
            raise unknown(f"{path}.{key}")
        if isinstance(schema[key], dict) and sub is not None:
            _check_keys(sub, schema[key], f"{path}.{key}")


def _number(value: object, path: str, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise invalid(path, value, f"a number between {lo:g} and {hi:g}")


def _check_values(session: JSON, path: str) -> None:
    if session.get("type") is None:
        raise missing(f"{path}.type")
    if session["type"] != "realtime":
        raise invalid(
            f"{path}.type",
            session["type"],
            "'realtime' (the local server has no transcription sessions)",
        )
    if "model" in session and not (isinstance(session["model"], str) and session["model"]):
        raise invalid(f"{path}.model", session["model"], "a model name such as 'gpt-realtime'")
    modalities = session.get("output_modalities")
    if modalities is not None and modalities not in [[m] for m in OUTPUT_MODALITIES]:
        raise invalid(f"{path}.output_modalities", modalities, "['audio'] or ['text']")
    for index, tool in enumerate(session.get("tools") or []):
        where = f"{path}.tools[{index}]"
        if not isinstance(tool, dict):
            raise invalid(where, tool, "a function tool object")
        for key in tool:
            if key not in _TOOL_KEYS:
                raise unknown(f"{where}.{key}")
        if tool.get("type") != "function":
            raise invalid(f"{where}.type", tool.get("type"), "'function'")
        if not tool.get("name"):
            raise missing(f"{where}.name")
    audio = session.get("audio") or {}
    audio_in = audio.get("input") or {}
    detection = audio_in.get("turn_detection")
    td = f"{path}.audio.input.turn_detection"
    if detection is not None:
        kind = detection.get("type")
        if kind not in TURN_DETECTION_TYPES:
            raise invalid(f"{td}.type", kind, "'server_vad' or 'semantic_vad'")
        if "threshold" in detection:
            _number(detection["threshold"], f"{td}.threshold", 0, 1)
        for key in ("prefix_padding_ms", "silence_duration_ms"):
            if key in detection:
                _number(detection[key], f"{td}.{key}", 0, 60000)
        if "eagerness" in detection and detection["eagerness"] not in EAGERNESS:
            raise invalid(f"{td}.eagerness", detection["eagerness"], "low, medium, high or auto")
    noise = audio_in.get("noise_reduction")
    if noise is not None and noise.get("type") not in NOISE_REDUCTION_TYPES:
        raise invalid(
            f"{path}.audio.input.noise_reduction.type",
            noise.get("type"),
            "'near_field' or 'far_field'",
        )
    transcription = audio_in.get("transcription")
    if transcription is not None and not transcription.get("model"):
        raise missing(f"{path}.audio.input.transcription.model")
    audio_out = audio.get("output") or {}
    voice = audio_out.get("voice")
    if voice is not None and not (
        voice in VOICES
        or (isinstance(voice, str) and voice.startswith("voice_"))
        or (isinstance(voice, dict) and isinstance(voice.get("id"), str))
    ):
        raise invalid(f"{path}.audio.output.voice", voice, "one of " + ", ".join(VOICES))
    if "speed" in audio_out:
        _number(audio_out["speed"], f"{path}.audio.output.speed", 0.25, 1.5)


def validate_session(session: object, path: str = "session") -> JSON:
    """Check a session object as sent by a client; raise ParamError like OpenAI would."""
    _check_keys(session, _SESSION_KEYS, path)
    assert isinstance(session, dict)
    _check_values(session, path)
    return session


def validate_client_secret_body(body: object) -> tuple[int, JSON]:
    """(ttl seconds, session) from a `client_secrets` request body."""
    if not isinstance(body, dict):
        raise ParamError("invalid_json", None, "The body must be a JSON object.")
    for key in body:
        if key not in ("expires_after", "session"):
            raise unknown(key)
    ttl = KEY_TTL_DEFAULT
    expires = body.get("expires_after")
    if expires is not None:
        _check_keys(expires, {"anchor": None, "seconds": None}, "expires_after")
        if expires.get("anchor", "created_at") != "created_at":
            raise invalid("expires_after.anchor", expires.get("anchor"), "'created_at'")
        seconds = expires.get("seconds", KEY_TTL_DEFAULT)
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise invalid("expires_after.seconds", seconds, "an integer")
        if seconds > KEY_TTL_MAX:
            raise ParamError(
                "integer_above_max_value",
                "expires_after.seconds",
                "Invalid 'expires_after.seconds': integer above maximum value. Expected a value "
                f"<= {KEY_TTL_MAX}, but got {seconds} instead.",
            )
        if seconds < KEY_TTL_MIN:
            raise ParamError(
                "integer_below_min_value",
                "expires_after.seconds",
                "Invalid 'expires_after.seconds': integer below minimum value. Expected a value "
                f">= {KEY_TTL_MIN}, but got {seconds} instead.",
            )
        ttl = seconds
    session = body.get("session")
    return ttl, validate_session(session) if session is not None else {"type": "realtime"}


def default_session(expires_at: int) -> JSON:
    """The effective session before any client settings, as OpenAI reports it."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": DEFAULT_MODEL,
        "output_modalities": ["audio"],
        "instructions": LOCAL_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "include": None,
        "audio": {
            "input": {
                "format": dict(AUDIO_FORMAT),
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": turn_detection_defaults("server_vad"),
            },
            "output": {
                "format": dict(AUDIO_FORMAT),
                "voice": SERVER_DEFAULT_VOICE,
                "speed": 1.0,
            },
        },
    }


def merge_session(base: JSON, update: JSON) -> JSON:
    """A new effective session: `update` laid over `base` (objects merge, other values replace;
    null clears). A new turn-detection type starts from that type's defaults."""
    merged = copy.deepcopy(base)
    _merge_into(merged, update)
    return merged


def _merge_into(target: JSON, update: JSON) -> None:
    for key, value in update.items():
        current = target.get(key)
        if key == "turn_detection" and isinstance(value, dict):
            kind = value.get("type") or (current or {}).get("type") or "server_vad"
            if not isinstance(current, dict) or current.get("type") != kind:
                current = turn_detection_defaults(kind)
            target[key] = {**current, **copy.deepcopy(value)}
        elif isinstance(value, dict) and isinstance(current, dict) and key != "parameters":
            _merge_into(current, value)
        else:
            target[key] = copy.deepcopy(value)
