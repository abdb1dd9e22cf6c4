"""Calls against the local server over real loopback WebRTC: every event validated by the
client helper against openai's unions, both ways."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from rtc_voice.audio.tracks import PcmTrack
from rtc_voice.localserver import LocalServer
from rtc_voice.rtc.compat import loopback_ice
from rtc_voice.rtc.ice import rtc_configuration
from tests.rtc_client import Client, speech_like, validate_server_event

RESPONSE_ORDER = [
    "response.created",
    "rate_limits.updated",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
    "output_audio_buffer.started",
    "response.output_audio_transcript.delta",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "response.output_item.done",
    "conversation.item.done",
    "response.done",
    "output_audio_buffer.stopped",
]


def squash(types: list[str]) -> list[str]:
    """Fold runs of the same type, and drop the (asynchronous) user transcription events."""
    out: list[str] = []
    for t in types:
        if "input_audio_transcription" in t:
            continue
        if not out or out[-1] != t:
            out.append(t)
    return out


async def test_spoken_turn_full_sequence(client: Client) -> None:
    assert client.events[0]["type"] == "session.created"
    client.mic.play(speech_like(1200))
    started = await client.wait_for("input_audio_buffer.speech_started")
    stopped = await client.wait_for("input_audio_buffer.speech_stopped")
    committed = await client.wait_for("input_audio_buffer.committed")
    user_added = await client.wait_for("conversation.item.added")
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    assert user_added["item"]["id"] == committed["item_id"]
    assert user_added["item"]["role"] == "user" and user_added["previous_item_id"] is None
    assert 0 <= started["audio_start_ms"] < stopped["audio_end_ms"]
    mark = client.events.index(user_added)
    done = await client.wait_for("output_audio_buffer.stopped", within=20)
    types = client.types(mark + 2)
    assert squash(types) == RESPONSE_ORDER, types
    final = next(e for e in client.events if e["type"] == "response.done")["response"]
    assert final["status"] == "completed"
    transcript = final["output"][0]["content"][0]["transcript"]
    assert transcript == "I heard about 1.2 seconds of speech."
    deltas = "".join(
        e["delta"] for e in client.events if e["type"] == "response.output_audio_transcript.delta"
    )
    assert deltas == transcript
    assistant_added = [e for e in client.events if e["type"] == "conversation.item.added"][1]
    assert assistant_added["previous_item_id"] == committed["item_id"]
    usage = final["usage"]
    assert usage["input_token_details"]["audio_tokens"] in (12, 13)  # 10 per second, ±1 frame
    assert usage["output_token_details"]["audio_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    transcription = await client.find(
        "conversation.item.input_audio_transcription.completed", within=5
    )
    assert transcription["item_id"] == committed["item_id"]
    assert transcription["transcript"] == "[speech 1.2 s]"
    assert done["response_id"] == final["id"]
    # audio energy arrived both ways: the server heard us (VAD), and we heard the reply
    assert max(client.levels) > -35


async def test_text_message_echo_and_previous_item_chain(client: Client) -> None:
    client.say("hello there")
    done = await client.wait_for("response.done")
    text = done["response"]["output"][0]["content"][0]["transcript"]
    assert text == "You said: hello there"
    added = [e for e in client.events if e["type"] == "conversation.item.added"]
    assert added[0]["item"]["content"][0] == {"type": "input_text", "text": "hello there"}
    assert added[1]["previous_item_id"] == added[0]["item"]["id"]
    await client.wait_for("output_audio_buffer.stopped")
    client.say("second")
    await client.wait_for("response.done")
    later = [e for e in client.events if e["type"] == "conversation.item.added"][2]
    assert later["previous_item_id"] == added[1]["item"]["id"]


async def test_response_create_while_active_is_an_error(client: Client) -> None:
    client.say("a long enough message to keep the response busy for a while")
    await client.wait_for("response.created")
    client.send({"type": "response.create", "event_id": "evt_dup"})
    error = await client.wait_for("error")
    assert error["error"]["code"] == "conversation_already_has_active_response"
    assert error["error"]["event_id"] == "evt_dup"
    assert (await client.wait_for("response.done"))["response"]["status"] == "completed"


async def test_response_cancel_stops_audio_and_keeps_only_what_was_said(client: Client) -> None:
    client.say("one two three four five six seven eight nine ten eleven twelve")
    await client.wait_for("response.output_audio_transcript.delta")
    await asyncio.sleep(0.3)
    client.send({"type": "response.cancel"})
    cleared = await client.wait_for("output_audio_buffer.cleared")
    done = await client.wait_for("response.done")
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "client_cancelled"
    assert cleared["response_id"] == done["response"]["id"]
    heard = done["response"]["output"][0]["content"][0]["transcript"]
    assert heard and len(heard) < len("You said: one two three four five six seven eight nine")
    assert done["response"]["output"][0]["status"] == "incomplete"
    assert "output_audio_buffer.stopped" not in client.types()
    quiet_from = len(client.levels) + 10
    await asyncio.sleep(0.6)
    assert max(client.levels[quiet_from:]) < -90  # the reply audio really stopped
    client.send({"type": "response.cancel", "event_id": "evt_none"})
    assert (await client.wait_for("error"))["error"]["code"] == "response_cancel_not_active"


async def test_output_audio_buffer_clear_cancels_the_reply(client: Client) -> None:
    client.say("one two three four five six seven eight nine ten")
    await client.wait_for("output_audio_buffer.started")
    client.send({"type": "output_audio_buffer.clear"})
    await client.wait_for("output_audio_buffer.cleared")
    done = await client.wait_for("response.done")
    assert done["response"]["status"] == "cancelled"


async def test_output_audio_buffer_clear_with_nothing_playing_is_valid(client: Client) -> None:
    client.send({"type": "output_audio_buffer.clear"})
    first = await client.wait_for("output_audio_buffer.cleared")
    client.say("hi")
    done = await client.wait_for("response.done")
    client.send({"type": "output_audio_buffer.clear"})
    later = await client.wait_for("output_audio_buffer.cleared")
    client.check_valid()
    assert first["response_id"].startswith("resp_")
    assert later["response_id"] == done["response"]["id"]


async def test_speech_during_reply_interrupts_with_turn_detected(client: Client) -> None:
    client.say("one two three four five six seven eight nine ten eleven twelve thirteen")
    await client.wait_for("output_audio_buffer.started")
    client.mic.play(speech_like(800, lead_ms=0))
    await client.wait_for("input_audio_buffer.speech_started")
    cleared = await client.wait_for("output_audio_buffer.cleared")
    done = await client.wait_for(
        "response.done", lambda e: e["response"]["status"] != "in_progress"
    )
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "turn_detected"
    assert cleared["response_id"] == done["response"]["id"]
    # and the new turn is answered
    reply = await client.wait_for("response.done", within=20)
    assert reply["response"]["output"][0]["content"][0]["transcript"].startswith("I heard about")


async def test_session_update_merges_or_errors_without_change(client: Client) -> None:
    client.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": "Be brief.",
                "audio": {"output": {"voice": "cedar"}},
            },
        }
    )
    updated = (await client.wait_for("session.updated"))["session"]
    assert updated["instructions"] == "Be brief."
    assert updated["audio"]["output"]["voice"] == "cedar"
    assert updated["audio"]["input"]["transcription"]["model"] == "gpt-4o-mini-transcribe"

    client.conn.channel.send(
        json.dumps(
            {
                "type": "session.update",
                "event_id": "evt_t",
                "session": {"type": "realtime", "temperature": 0.7},
            }
        )
    )
    error = (await client.wait_for("error"))["error"]
    assert (error["code"], error["param"], error["event_id"]) == (
        "unknown_parameter",
        "session.temperature",
        "evt_t",
    )
    client.conn.channel.send(
        json.dumps({"type": "session.update", "session": {"instructions": "x"}})
    )
    error = (await client.wait_for("error"))["error"]
    assert (error["code"], error["param"]) == ("missing_required_parameter", "session.type")

    client.send({"type": "session.update", "session": {"type": "realtime"}})
    again = (await client.wait_for("session.updated"))["session"]
    assert again["instructions"] == "Be brief."  # the rejected updates changed nothing
    assert "temperature" not in again


async def test_bad_json_and_unknown_events_are_errors_and_the_call_survives(
    client: Client,
) -> None:
    client.conn.channel.send("{not json")
    assert (await client.wait_for("error"))["error"]["code"] == "invalid_json"
    client.conn.channel.send(json.dumps({"type": "response.audio.delta", "event_id": "e1"}))
    error = (await client.wait_for("error"))["error"]
    assert (error["code"], error["param"], error["event_id"]) == ("invalid_value", "type", "e1")
    client.say("still here")
    done = await client.wait_for("response.done")
    assert done["response"]["output"][0]["content"][0]["transcript"] == "You said: still here"


async def test_function_call_round_trip(client: Client) -> None:
    client.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "tools": [
                    {
                        "type": "function",
                        "name": "get_time",
                        "description": "Current time",
                        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
                    }
                ],
            },
        }
    )
    await client.wait_for("session.updated")
    client.say('/call get_time {"tz": "UTC"}')
    args_done = await client.wait_for("response.function_call_arguments.done")
    assert args_done["name"] == "get_time"
    assert json.loads(args_done["arguments"]) == {"tz": "UTC"}
    deltas = [
        e["delta"] for e in client.events if e["type"] == "response.function_call_arguments.delta"
    ]
    assert "".join(deltas) == args_done["arguments"]
    done = await client.wait_for("response.done")
    item = done["response"]["output"][0]
    assert item["type"] == "function_call" and item["call_id"] == args_done["call_id"]
    assert "output_audio_buffer.started" not in client.types()

    client.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "function_call_output",
                "call_id": args_done["call_id"],
                "output": "12:00",
            },
        }
    )
    client.send({"type": "response.create"})
    spoken = await client.wait_for("response.done")
    assert spoken["response"]["output"][0]["content"][0]["transcript"] == (
        "The tool get_time returned: 12:00"
    )


async def test_manual_turns_commit_and_empty_commit(local_server: LocalServer) -> None:
    client = await Client.open(
        local_server.base_url, {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
    )
    try:
        client.send({"type": "input_audio_buffer.clear"})
        await client.wait_for("input_audio_buffer.cleared")
        client.send({"type": "input_audio_buffer.commit", "event_id": "c0"})
        error = (await client.wait_for("error"))["error"]
        assert error["code"] == "input_audio_buffer_commit_empty"
        client.mic.play(speech_like(1000))
        await asyncio.sleep(1.6)
        assert "input_audio_buffer.speech_started" not in client.types()  # no VAD when manual
        client.send({"type": "input_audio_buffer.commit"})
        committed = await client.wait_for("input_audio_buffer.committed")
        client.send({"type": "response.create"})
        done = await client.wait_for("response.done")
        text = done["response"]["output"][0]["content"][0]["transcript"]
        assert text == "I heard about 1.0 seconds of speech."
        assert committed["previous_item_id"] is None
    finally:
        await client.close()


async def test_a_push_to_talk_turn_over_silence_is_called_silence(
    local_server: LocalServer,
) -> None:
    """A push-to-talk turn held while nobody spoke: the answer and the transcript give the
    silence's length, not "0.0 seconds of speech"."""
    session = {
        "type": "realtime",
        "audio": {
            "input": {
                "turn_detection": None,
                "transcription": {"model": "gpt-4o-mini-transcribe"},
            }
        },
    }
    client = await Client.open(local_server.base_url, session)
    try:
        client.send({"type": "input_audio_buffer.clear"})
        await client.wait_for("input_audio_buffer.cleared")
        await asyncio.sleep(1.2)  # the client's track sends silence meanwhile
        client.send({"type": "input_audio_buffer.commit"})
        committed = await client.wait_for("input_audio_buffer.committed")
        client.send({"type": "response.create"})
        done = await client.wait_for("response.done")
        text = done["response"]["output"][0]["content"][0]["transcript"]
        assert re.fullmatch(r"I heard no speech, only 1\.[0-9] seconds of silence\.", text), text
        transcription = await client.find(
            "conversation.item.input_audio_transcription.completed", within=5
        )
        assert transcription["item_id"] == committed["item_id"]
        assert re.fullmatch(r"\[silence 1\.[0-9] s\]", transcription["transcript"])
    finally:
        await client.close()


async def test_text_only_modality_has_no_audio_events(local_server: LocalServer) -> None:
    client = await Client.open(
        local_server.base_url, {"type": "realtime", "output_modalities": ["text"]}
    )
    try:
        client.say("quiet")
        done = await client.wait_for("response.done")
        assert done["response"]["output"][0]["content"] == [
            {"type": "output_text", "text": "You said: quiet"}
        ]
        assert not [t for t in client.types() if "audio" in t]
    finally:
        await client.close()


async def test_session_cap_closes_the_call() -> None:
    async with LocalServer(max_call_seconds=1.0) as server:
        client = await Client.open(server.base_url)
        try:
            error = (await client.wait_for("error", within=5))["error"]
            assert error["code"] == "session_expired"
            assert "maximum duration of 1 seconds" in error["message"]
            async with asyncio.timeout(10):
                await client.closed.wait()
            async with asyncio.timeout(5):
                while server.calls:  # noqa: ASYNC110 - the server forgets the call after close
                    await asyncio.sleep(0.05)
        finally:
            await client.close()


async def test_browser_style_raw_flow(local_server: LocalServer) -> None:
    """What a page from OpenAI's WebRTC guide does, with only the base URL changed."""
    async with httpx.AsyncClient(timeout=10) as http:
        minted = await http.post(
            local_server.base_url + "/realtime/client_secrets",
            headers={"Authorization": "Bearer sk-anything"},
            json={"session": {"type": "realtime", "model": "gpt-realtime"}},
        )
        ek = minted.json()["value"]
        pc = RTCPeerConnection(rtc_configuration(()))
        pc.addTrack(PcmTrack())
        channel = pc.createDataChannel("oai-events")
        messages: asyncio.Queue[str] = asyncio.Queue()
        channel.on("message", messages.put_nowait)
        with loopback_ice():
            await pc.setLocalDescription(await pc.createOffer())
        answer = await http.post(
            local_server.base_url + "/realtime/calls",
            content=pc.localDescription.sdp,
            headers={"Authorization": f"Bearer {ek}", "Content-Type": "application/sdp"},
        )
        assert answer.status_code == 201
        await pc.setRemoteDescription(RTCSessionDescription(answer.text, "answer"))
        try:
            first = json.loads(await asyncio.wait_for(messages.get(), 10))
            validate_server_event(first)
            assert first["type"] == "session.created"
            assert first["session"]["model"] == "gpt-realtime"
        finally:
            await pc.close()


async def test_a_replayed_conversation_is_accepted_in_order(client: Client) -> None:
    """The items a reconnect sends (Conversation.replay_events) land in order, without errors."""
    from rtc_voice.conversation import Conversation
    from tests.test_conversation import apply_all, ev, reply

    conv = Conversation()
    typed = {
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_text", "text": "what time is it"}],
    }
    call = {
        "type": "function_call",
        "call_id": "c",
        "name": "get_time",
        "arguments": "{}",
        "status": "completed",
    }
    output = {"type": "function_call_output", "call_id": "c", "output": "noon"}
    apply_all(
        conv,
        [
            ev("conversation.item.done", previous_item_id=None, item={"id": "u", **typed}),
            ev("conversation.item.done", previous_item_id="u", item={"id": "f", **call}),
            ev("conversation.item.done", previous_item_id="f", item={"id": "o", **output}),
            *reply("a", "o", "r", ["It is ", "noon."]),
        ],
    )
    before = len(client.events)
    for event in conv.replay_events():
        client.send(event)
    done = [await client.wait_for("conversation.item.done") for _ in range(4)]
    assert [e["item"]["id"] for e in done] == ["replay_0", "replay_1", "replay_1_out", "replay_2"]
    assert "error" not in client.types(before)
    client.say("and now?")
    reply = await client.wait_for("response.done")
    assert reply["response"]["status"] == "completed"


async def test_a_failing_task_is_logged_and_ends_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in one of a call's tasks was lost; now the log says it and the call ends."""
    from rtc_voice.localserver.call import LocalCall

    async def broken(self: LocalCall, item: object, speech_ms: int) -> None:
        raise RuntimeError("transcriber fell over")

    monkeypatch.setattr(LocalCall, "_transcribe", broken)
    lines: list[str] = []
    async with LocalServer(log=lines.append) as server:
        session = {
            "type": "realtime",
            "audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}},
        }
        client = await Client.open(server.base_url, session)
        try:
            client.mic.play(speech_like(800))
            async with asyncio.timeout(15):
                await client.closed.wait()
        finally:
            await client.close()
    assert any("internal error: RuntimeError: transcriber fell over" in line for line in lines), (
        lines
    )
    assert any(line.endswith("(internal error)") for line in lines), lines


async def test_an_interrupt_clears_the_output_buffer_once(client: Client) -> None:
    """`i` sends response.cancel then output_audio_buffer.clear: one `cleared`, not two."""
    client.say("one two three four five six seven eight nine ten eleven twelve")
    await client.wait_for("output_audio_buffer.started")
    client.send({"type": "response.cancel"})
    client.send({"type": "output_audio_buffer.clear"})
    await client.wait_for("response.done")
    await asyncio.sleep(0.5)
    assert client.types().count("output_audio_buffer.cleared") == 1
