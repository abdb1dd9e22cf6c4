"""Every client event rtc-voice builds passes openai's client-event types, unknown keys included."""

from __future__ import annotations

from rtc_voice.config import Settings
from rtc_voice.protocol import client as events
from rtc_voice.tools import default_registry
from tests.rtc_client import validate_client_event
from tests.support import validate_client_secret_request


def test_client_event_builders_match_openai_types() -> None:
    built = [
        events.user_message("hi"),
        events.function_call_output("call_1", '{"ok": true}'),
        events.session_tools(default_registry().definitions()),
        events.response_create(),
        events.response_cancel(),
        events.output_audio_buffer_clear(),
        events.input_audio_buffer_clear(),
        events.input_audio_buffer_commit(),
    ]
    for event in built:
        validate_client_event(event)
    assert built[0]["item"]["content"] == [{"type": "input_text", "text": "hi"}]
    assert built[1]["item"] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"ok": true}',
    }
    assert built[2]["session"]["tools"][0]["name"] == "get_time"
    assert [e["type"] for e in built[3:]] == [
        "response.create",
        "response.cancel",
        "output_audio_buffer.clear",
        "input_audio_buffer.clear",
        "input_audio_buffer.commit",
    ]


def test_default_settings_build_a_valid_client_secret_request() -> None:
    validate_client_secret_request(events.client_secret_request(Settings()))
