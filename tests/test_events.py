"""Every client event rtc-voice builds passes openai's client-event types, unknown keys included."""

from __future__ import annotations

from rtc_voice import events
from rtc_voice.tools import TOOLS
from tests.rtc_client import validate_client_event


def test_client_event_builders_match_openai_types() -> None:
    built = [
        events.user_message("hi"),
        events.function_call_output("call_1", '{"ok": true}'),
        events.session_tools(TOOLS),
        events.RESPONSE_CREATE,
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
