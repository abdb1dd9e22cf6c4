"""Conversation state from event sequences shaped like the GA server's (see protocol notes)."""

from __future__ import annotations

import itertools
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from rtc_voice.conversation import Conversation, FunctionCall, Usage
from rtc_voice.errors import ExitCode, FileError
from rtc_voice.eventlog import EventLog
from rtc_voice.transcript import TranscriptWriter
from tests.rtc_client import validate_server_event

_ids = itertools.count()


def ev(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "event_id": f"event_{next(_ids)}", **fields}


def user_audio(item_id: str, prev: str | None) -> list[dict[str, Any]]:
    item = {
        "id": item_id,
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_audio", "transcript": None}],
    }
    return [
        ev("input_audio_buffer.speech_started", item_id=item_id, audio_start_ms=0),
        ev("input_audio_buffer.speech_stopped", item_id=item_id, audio_end_ms=900),
        ev("input_audio_buffer.committed", item_id=item_id, previous_item_id=prev),
        ev("conversation.item.added", item=item, previous_item_id=prev),
        ev("conversation.item.done", item=item, previous_item_id=prev),
    ]


def transcription(item_id: str, text: str) -> list[dict[str, Any]]:
    return [
        ev(
            "conversation.item.input_audio_transcription.delta",
            item_id=item_id,
            content_index=0,
            delta=text,
        ),
        ev(
            "conversation.item.input_audio_transcription.completed",
            item_id=item_id,
            content_index=0,
            transcript=text,
            usage={"type": "duration", "seconds": 1},
        ),
    ]


USAGE = {
    "total_tokens": 300,
    "input_tokens": 200,
    "output_tokens": 100,
    "input_token_details": {
        "text_tokens": 120,
        "audio_tokens": 80,
        "image_tokens": 0,
        "cached_tokens": 64,
        "cached_tokens_details": {"text_tokens": 64, "audio_tokens": 0, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 20, "audio_tokens": 80},
}


def reply(
    item_id: str,
    prev: str,
    resp: str,
    words: list[str],
    *,
    status: str = "completed",
    heard: str | None = None,
    reason: str | None = None,
) -> list[dict[str, Any]]:
    item = {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    ids = {"response_id": resp, "item_id": item_id, "output_index": 0, "content_index": 0}
    events = [
        ev("response.created", response={"id": resp, "status": "in_progress"}),
        ev("response.output_item.added", response_id=resp, output_index=0, item=item),
        ev("conversation.item.added", item=item, previous_item_id=prev),
        ev("output_audio_buffer.started", response_id=resp),
    ]
    events += [ev("response.output_audio_transcript.delta", **ids, delta=w) for w in words]
    text = heard if heard is not None else "".join(words)
    done_item = {
        **item,
        "status": "completed" if status == "completed" else "incomplete",
        "content": [{"type": "output_audio", "transcript": text}],
    }
    if status == "completed":
        events.append(ev("response.output_audio_transcript.done", **ids, transcript=text))
    else:
        events.append(ev("output_audio_buffer.cleared", response_id=resp))
    events += [
        ev("conversation.item.done", item=done_item, previous_item_id=prev),
        ev(
            "response.done",
            response={
                "id": resp,
                "status": status,
                "output": [done_item],
                "usage": USAGE,
                "status_details": {"type": status, "reason": reason} if reason else None,
            },
        ),
    ]
    if status == "completed":
        events.append(ev("output_audio_buffer.stopped", response_id=resp))
    return events


SESSION = ev(
    "session.created",
    session={
        "type": "realtime",
        "model": "gpt-realtime",
        "audio": {
            "input": {"transcription": {"model": "gpt-4o-mini-transcribe"}},
            "output": {"voice": "marin"},
        },
    },
)


def apply_all(conv: Conversation, events: list[dict[str, Any]]) -> None:
    """Apply hand-built events, each first checked against openai's server-event types."""
    for event in events:
        validate_server_event(event)
        conv.apply(event)


def apply_one(conv: Conversation, event: dict[str, Any]) -> None:
    apply_all(conv, [event])


def test_user_transcript_arriving_after_the_reply_keeps_its_place() -> None:
    conv = Conversation(clock=lambda: 1000.0)
    apply_all(conv, [SESSION, *user_audio("u1", None)])
    assert conv.turns()[0].awaiting_transcript
    apply_all(conv, reply("a1", "u1", "r1", ["Hi ", "there."]))
    apply_all(conv, transcription("u1", "hello"))
    turns = conv.turns()
    assert [(t.role, t.text, t.status) for t in turns] == [
        ("user", "hello", "completed"),
        ("assistant", "Hi there.", "completed"),
    ]
    assert turns[1].previous_item_id == "u1"
    assert (conv.model, conv.voice) == ("gpt-realtime", "marin")


def test_newly_final_waits_for_earlier_turns() -> None:
    conv = Conversation()
    done: set[str] = set()
    apply_all(conv, [SESSION, *user_audio("u1", None), *reply("a1", "u1", "r1", ["Hi."])])
    assert conv.newly_final(done) == []  # the reply waits for the user's transcript
    apply_all(conv, transcription("u1", "hey"))
    assert [t.item_id for t in conv.newly_final(done)] == ["u1", "a1"]
    assert conv.newly_final(done) == []


def test_cancelled_reply_is_interrupted_with_what_was_heard() -> None:
    conv = Conversation()
    apply_all(conv, [SESSION, *user_audio("u1", None), *transcription("u1", "go on")])
    apply_all(
        conv,
        reply(
            "a1",
            "u1",
            "r1",
            ["one ", "two ", "three ", "four"],
            status="cancelled",
            heard="one two",
            reason="turn_detected",
        ),
    )
    turn = conv.turns()[1]
    assert (turn.status, turn.text) == ("interrupted", "one two")
    assert conv.speaking == "listening" and conv.active_response is None


def test_speaking_states() -> None:
    conv = Conversation()
    apply_one(conv, ev("input_audio_buffer.speech_started", item_id="u", audio_start_ms=0))
    assert conv.speaking == "you"
    apply_one(conv, ev("input_audio_buffer.speech_stopped", item_id="u", audio_end_ms=10))
    apply_one(conv, ev("output_audio_buffer.started", response_id="r"))
    assert conv.speaking == "assistant" and conv.assistant_speaking
    conv.interrupt_locally()
    assert conv.speaking == "listening"


def test_unknown_and_beta_events_are_logged_but_change_nothing() -> None:
    """Deliberately not GA events, so not validated."""
    conv, log = Conversation(), EventLog()
    for event in (
        ev("response.audio_transcript.delta", item_id="x", delta="beta"),
        ev("something.new", foo=1),
        {"no_type": True},
    ):
        conv.apply(event)
        log.add(event, "server")
    assert conv.turns() == [] and log.events_seen == 3
    assert [line.type for line in log.lines] == [
        "response.audio_transcript.delta",
        "something.new",
        "",
    ]


def test_beta_item_created_name_is_handled() -> None:
    conv = Conversation()
    apply_one(
        conv,
        ev(
            "conversation.item.created",
            previous_item_id=None,
            item={
                "id": "u9",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "typed"}],
            },
        ),
    )
    assert (conv.turns()[0].text, conv.turns()[0].typed) == ("typed", True)


def test_items_insert_after_their_predecessor_not_by_arrival() -> None:
    conv = Conversation()
    for item_id, prev in (("a", None), ("c", "a"), ("b", "a")):
        apply_one(
            conv,
            ev(
                "conversation.item.added",
                previous_item_id=prev,
                item={
                    "id": item_id,
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": item_id}],
                },
            ),
        )
    assert [t.item_id for t in conv.turns()] == ["a", "b", "c"]


def test_function_call_turn_collects_arguments_and_output() -> None:
    conv = Conversation()
    call = {
        "id": "f1",
        "type": "function_call",
        "call_id": "c1",
        "name": "get_time",
        "arguments": "",
        "status": "in_progress",
    }
    apply_all(
        conv,
        [
            ev("conversation.item.added", item=call, previous_item_id=None),
            ev(
                "response.function_call_arguments.delta",
                response_id="r",
                item_id="f1",
                output_index=0,
                call_id="c1",
                delta='{"tz":',
            ),
            ev(
                "response.function_call_arguments.done",
                response_id="r",
                item_id="f1",
                output_index=0,
                call_id="c1",
                arguments='{"tz":"UTC"}',
                name="get_time",
            ),
            ev(
                "response.done",
                response={
                    "id": "r",
                    "status": "completed",
                    "output": [{**call, "arguments": '{"tz":"UTC"}', "status": "completed"}],
                },
            ),
        ],
    )
    turn = conv.turns()[0]
    assert isinstance(turn, FunctionCall)
    assert (turn.name, turn.arguments, turn.final) == ("get_time", '{"tz":"UTC"}', False)
    apply_one(
        conv,
        ev(
            "conversation.item.added",
            previous_item_id="f1",
            item={"id": "o1", "type": "function_call_output", "call_id": "c1", "output": "12:00"},
        ),
    )
    assert turn.output == "12:00" and turn.final


def test_log_folds_deltas_of_one_item_even_when_interleaved() -> None:
    log = EventLog()
    ids = {"response_id": "r", "item_id": "a", "output_index": 0, "content_index": 0}
    for i in range(5000):
        log.add(ev("response.output_audio_transcript.delta", **ids, delta=f"w{i} "), "server")
        if i == 10:
            log.add(
                ev(
                    "conversation.item.input_audio_transcription.delta",
                    item_id="u",
                    content_index=0,
                    delta="late",
                ),
                "server",
            )
    lines = [(line.type, line.count) for line in log.lines]
    assert lines == [
        ("response.output_audio_transcript.delta", 5000),
        ("conversation.item.input_audio_transcription.delta", 1),
    ]
    assert log.lines[0].summary.endswith("w4999 '")


def test_errors_are_kept() -> None:
    conv, log = Conversation(), EventLog()
    error = ev(
        "error",
        error={
            "type": "invalid_request_error",
            "code": "unknown_parameter",
            "message": "Unknown parameter: 'session.x'.",
        },
    )
    apply_one(conv, error)
    log.add(error, "server")
    assert conv.errors == ["unknown_parameter: Unknown parameter: 'session.x'."]
    assert log.lines[-1].error


def test_usage_and_cost_follow_the_protocol_formula() -> None:
    usage = Usage()
    usage.add(USAGE)
    usage.add(USAGE)
    prices = {
        "text_in": 4.0,
        "text_cached": 0.4,
        "text_out": 16.0,
        "audio_in": 32.0,
        "audio_cached": 0.4,
        "audio_out": 64.0,
    }
    per = ((120 - 64) * 4.0 + 64 * 0.4 + 20 * 16.0 + 80 * 32.0 + 80 * 64.0) / 1e6
    assert usage.cost(prices) == pytest.approx(2 * per)
    assert usage.cost(None) is None
    assert usage.as_json()["input_tokens"] == 400 and usage.as_json()["cached_tokens"] == 128
    assert usage.summary(83.9, 0.01234) == (
        "01:23 on the call; 2 responses, 400 input and 200 output tokens, about $0.0123."
    )
    assert (
        Usage().summary(5, None) == "00:05 on the call; 0 responses, 0 input and 0 output tokens."
    )


def test_transcript_jsonl_in_order_private_and_finished(tmp_path: Path) -> None:
    conv = Conversation(clock=lambda: 1_700_000_000.0)
    path = tmp_path / "t.jsonl"
    writer = TranscriptWriter(path)
    apply_all(conv, [SESSION, *user_audio("u1", None), *reply("a1", "u1", "r1", ["Hi."])])
    writer.update(conv)
    assert not path.exists()  # the reply waits for the user's transcript: nothing to write yet
    apply_all(conv, transcription("u1", "hello"))
    writer.update(conv)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(x["role"], x["text"], x["status"]) for x in lines] == [
        ("user", "hello", "completed"),
        ("assistant", "Hi.", "completed"),
    ]
    assert lines[1]["previous_item_id"] == "u1" and lines[0]["started_at"].startswith("2023")
    apply_all(conv, [*user_audio("u2", "a1")])  # never transcribed: the call ends first
    writer.finish(conv, 0.0123)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[2]["item_id"] == "u2" and lines[2]["status"] == "failed"
    assert lines[3]["type"] == "usage" and lines[3]["cost_usd"] == 0.0123
    assert lines[3]["input_tokens"] == 200


def test_transcript_markdown_and_bad_extension(tmp_path: Path) -> None:
    conv = Conversation()
    apply_all(
        conv,
        [
            SESSION,
            *user_audio("u1", None),
            *transcription("u1", "hey"),
            *reply(
                "a1",
                "u1",
                "r1",
                ["a ", "b"],
                status="cancelled",
                heard="a",
                reason="client_cancelled",
            ),
        ],
    )
    writer = TranscriptWriter(tmp_path / "t.md")
    writer.finish(conv, None)
    text = (tmp_path / "t.md").read_text()
    assert text.startswith("# rtc-voice call")
    assert "**You**" in text and ": hey" in text
    assert "**Assistant**" in text and ": a *(interrupted)*" in text
    assert "over 1 response." in text
    with pytest.raises(FileError, match="Cannot tell the transcript format") as bad:
        TranscriptWriter(tmp_path / "t.txt")
    assert bad.value.exit_code == ExitCode.AUDIO  # as --record's unknown extension


def test_markdown_transcript_footer_renders_as_rules_and_paragraphs(tmp_path: Path) -> None:
    """The network line used to sit right above `---`, which Markdown reads as a heading
    underline: the summary rendered as a big H2 title ("over 1 turns", too)."""
    from markdown_it import MarkdownIt

    from rtc_voice.call.netstats import NetworkHealth

    conv = Conversation()
    apply_all(conv, [SESSION, *user_audio("u1", None), *transcription("u1", "hey")])
    apply_all(conv, reply("a1", "u1", "r1", ["Hi."]))
    network = NetworkHealth().summary()
    network.update(turns=1, turn_latency_p50_ms=538.0, turn_latency_p95_ms=538.0, loss_pct=0.0)
    writer = TranscriptWriter(tmp_path / "t.md")
    writer.finish(conv, 0.0054, network)
    text = (tmp_path / "t.md").read_text()
    tokens = MarkdownIt().parse(text)
    headings = [t for t in tokens if t.type == "heading_open"]
    assert [t.tag for t in headings] == ["h1"], text  # only the call's own title
    assert sum(t.type == "hr" for t in tokens) == 2, text
    paragraphs = [t.content for t in tokens if t.type == "inline"]
    assert any(p.startswith("Network: turn latency p50 538 ms") for p in paragraphs), text
    assert "over 1 turn;" in text and any(p.startswith("Usage:") for p in paragraphs)


def test_replay_events_carry_the_conversation_to_a_new_session() -> None:
    """What a reconnect sends first: valid client events, in order, chained."""
    from tests.rtc_client import validate_client_event

    conv = Conversation()
    apply_all(conv, [SESSION, *user_audio("u1", None), *transcription("u1", "what time is it")])
    call = {
        "id": "f1",
        "type": "function_call",
        "call_id": "c1",
        "name": "get_time",
        "arguments": "{}",
        "status": "completed",
    }
    apply_one(conv, ev("conversation.item.added", item=call, previous_item_id="u1"))
    apply_one(
        conv,
        ev(
            "conversation.item.added",
            previous_item_id="f1",
            item={"id": "o1", "type": "function_call_output", "call_id": "c1", "output": "noon"},
        ),
    )
    apply_all(conv, reply("a1", "f1", "r1", ["It is ", "noon."]))
    apply_all(conv, reply("a2", "a1", "r2", ["And"], status="cancelled", heard="And"))
    apply_one(conv, ev("input_audio_buffer.speech_started", item_id="u2", audio_start_ms=0))
    events = conv.replay_events()
    for event in events:
        validate_client_event(event)
    items = [e["item"] for e in events]
    assert [(i["type"], i.get("role"), i["id"]) for i in items] == [
        ("message", "user", "replay_0"),
        ("function_call", None, "replay_1"),
        ("function_call_output", None, "replay_1_out"),
        ("message", "assistant", "replay_2"),
        ("message", "assistant", "replay_3"),
    ]
    assert items[0]["content"] == [{"type": "input_text", "text": "what time is it"}]
    assert items[3]["content"] == [{"type": "output_text", "text": "It is noon."}]
    assert items[4]["content"][0]["text"] == "And"  # what was heard before the cut
    assert [e.get("previous_item_id") for e in events] == [
        None,
        "replay_0",
        "replay_1",
        "replay_1_out",
        "replay_2",
    ]
