"""protocol/: the one copy of the Realtime protocol, and who may import what."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from rtc_voice import config
from rtc_voice.localserver import sessions
from rtc_voice.protocol import ClientEventType, ServerEventType, defaults, server
from tests.test_conversation import SESSION, reply, transcription, user_audio

SOURCE = Path(__file__).resolve().parent.parent / "cli" / "rtc_voice"


def loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_local_server_loads_neither_httpx_nor_the_client() -> None:
    modules = loaded_after("import rtc_voice.localserver.server")
    assert "aiortc" in modules  # the check sees real imports
    client_side = {
        "httpx",
        "keyring",
        "rich",
        "sounddevice",
        "rtc_voice.api",
        "rtc_voice.config",
        "rtc_voice.credentials",
        "rtc_voice.conversation",
        "rtc_voice.call",
        "rtc_voice.rtc.peer",
        "rtc_voice.ui",
        "rtc_voice.transcript",
        "rtc_voice.tools",
    }
    assert not client_side & modules


def test_protocol_is_pure() -> None:
    modules = loaded_after("import rtc_voice.protocol.client, rtc_voice.protocol.server")
    heavy = {"aiortc", "av", "numpy", "httpx", "aiohttp", "rich", "keyring", "sounddevice"}
    assert not heavy & {m.split(".")[0] for m in modules}


def test_event_names_are_spelled_only_in_protocol() -> None:
    """Outside protocol/, no string literal is an event name ("error" is also a JSON key)."""
    names = {str(m) for m in ClientEventType} | {str(m) for m in ServerEventType}
    names.discard("error")
    found = []
    for path in SOURCE.rglob("*.py"):
        if "protocol" in path.relative_to(SOURCE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{path.relative_to(SOURCE)}:{node.lineno} {node.value}")
    assert found == []


def test_client_and_local_server_share_the_defaults() -> None:
    assert config.VOICES is sessions.VOICES is defaults.VOICES
    assert config.Settings().vad_threshold == defaults.VAD_THRESHOLD
    session = sessions.default_session(0)
    detection = session["audio"]["input"]["turn_detection"]
    assert detection == defaults.turn_detection_defaults("server_vad")
    assert session["audio"]["output"]["voice"] == defaults.SERVER_DEFAULT_VOICE


def test_every_server_event_name_is_a_known_openai_event_type() -> None:
    adapter = TypeAdapter(RealtimeServerEvent)
    known = set()
    for choice in adapter.json_schema()["$defs"].values():
        const = choice.get("properties", {}).get("type", {}).get("const")
        if const:
            known.add(const)
    ours = {str(m) for m in ServerEventType} - {"conversation.item.created"}  # beta spelling
    assert ours <= known, ours - known
    assert {str(m) for m in ClientEventType}


def test_parse_gives_typed_events_and_keeps_unknown_ones() -> None:
    events = [
        SESSION,
        *user_audio("u1", None),
        *transcription("u1", "hi"),
        *reply("a1", "u1", "r1", ["Hello."]),
    ]
    parsed = [server.parse(e) for e in events]
    untyped = {p.type for p in parsed if isinstance(p, server.Unknown)}
    assert untyped == {"response.output_item.added"}  # nothing acts on it: kept as it came
    assert all(p.raw is e and p.type == e["type"] for p, e in zip(parsed, events, strict=True))
    done = next(p for p in parsed if isinstance(p, server.ResponseDone))
    assert (done.response_id, done.status) == ("r1", "completed")

    unknown = server.parse({"type": "response.mcp_call.in_progress", "item_id": "x"})
    assert isinstance(unknown, server.Unknown) and unknown.raw["item_id"] == "x"
    assert isinstance(server.parse({}), server.Unknown)


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "response.done", "response": "not an object"},
        {"type": "conversation.item.added", "item": None},
        {"type": "error", "error": ["x"]},
        {"type": "input_audio_buffer.speech_started", "item_id": 5, "audio_start_ms": "x"},
        {"type": "response.output_audio_transcript.delta"},
    ],
)
def test_malformed_events_never_raise(raw: dict[str, object]) -> None:
    event = server.parse(raw)
    assert event.type == raw["type"]


def test_the_session_cap_is_recognised_by_code_or_by_openai_message() -> None:
    def error(code: str | None, message: str) -> server.ServerEvent:
        return server.parse({"type": "error", "error": {"code": code, "message": message}})

    cap = error("session_expired", "Your session hit the maximum duration of 60 minutes.")
    assert isinstance(cap, server.Error) and cap.session_cap
    by_message = error(None, "Your session hit the maximum duration of 60 minutes.")
    assert isinstance(by_message, server.Error) and by_message.session_cap
    other = error("unknown_parameter", "Unknown parameter: 'session.x'.")
    assert isinstance(other, server.Error) and not other.session_cap
    cut = server.parse(
        {
            "type": "response.done",
            "response": {
                "id": "r",
                "status": "completed",
                "output": [
                    {"id": "f", "type": "function_call", "call_id": "c", "name": "get_time"},
                    {"id": "m", "type": "message", "role": "assistant", "content": []},
                ],
            },
        }
    )
    assert isinstance(cut, server.ResponseDone)
    assert [(c.call_id, c.name, c.arguments) for c in cut.function_calls] == [
        ("c", "get_time", "{}")
    ]
