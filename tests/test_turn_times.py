"""Transcript times and statuses that mean what they say (issue 11): a spoken turn lasts from
speech start to speech stop, a cut reply ends when it was cut, only the documented statuses are
written, and a second call in a Markdown transcript gets its own heading."""

from __future__ import annotations

import json
from pathlib import Path

from rtc_voice.conversation import Conversation, Message, final_status
from rtc_voice.eventlog import LogLine
from rtc_voice.transcript import TranscriptWriter
from rtc_voice.ui.plain import turn_line
from rtc_voice.ui.render import log_row
from tests.test_conversation import SESSION, apply_one, ev, reply, transcription, user_audio


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_spoken_turn_lasts_from_speech_start_to_speech_stop() -> None:
    clock = Clock()
    conv = Conversation(clock=clock)
    apply_one(conv, SESSION)
    started, stopped, *rest = user_audio("u1", None)
    apply_one(conv, started)
    clock.now += 4.4  # the user speaks for 4.4 s
    apply_one(conv, stopped)
    clock.now += 0.5  # the item arrives after the VAD's silence
    for event in rest:
        apply_one(conv, event)
    clock.now += 2.0  # the transcript, later still
    for event in transcription("u1", "a long sentence"):
        apply_one(conv, event)
    turn = conv.turn("u1")
    assert turn is not None
    assert turn.started_at == 1_700_000_000.0
    assert turn.ended_at == 1_700_000_004.4


def test_a_reply_cut_by_the_user_ends_at_the_cut() -> None:
    clock = Clock()
    conv = Conversation(clock=clock)
    events = [SESSION, *user_audio("u1", None), *transcription("u1", "hi")]
    events += reply("a1", "u1", "r1", ["one ", "two ", "three"], status="cancelled", heard="one")
    done_at = next(n for n, e in enumerate(events) if e["type"] == "output_audio_buffer.cleared")
    for event in events[:done_at]:
        apply_one(conv, event)
    clock.now += 3.0
    conv.interrupt_locally()  # `i` or barge-in, 3 s into the reply
    cut = clock.now
    clock.now += 0.4  # the server's confirmation comes later
    for event in events[done_at:]:
        apply_one(conv, event)
    turn = conv.turn("a1")
    assert turn is not None and turn.status == "interrupted" and turn.ended_at == cut


def test_a_finished_reply_cut_while_still_playing_ends_at_the_cut() -> None:
    clock = Clock()
    conv = Conversation(clock=clock)
    for event in [SESSION, *user_audio("u1", None), *reply("a1", "u1", "r1", ["long reply"])]:
        if event["type"] == "output_audio_buffer.stopped":
            continue  # the audio is still playing after response.done
        apply_one(conv, event)
    apply_one(conv, ev("output_audio_buffer.started", response_id="r1"))
    clock.now += 2.0
    conv.interrupt_locally()
    cut = clock.now
    clock.now += 0.3
    apply_one(
        conv, ev("conversation.item.truncated", item_id="a1", content_index=0, audio_end_ms=2000)
    )
    turn = conv.turn("a1")
    assert turn is not None and turn.status == "interrupted" and turn.ended_at == cut


def test_a_truncated_turn_always_gets_an_end() -> None:
    clock = Clock()
    conv = Conversation(clock=clock)
    for event in [SESSION, *reply("a1", "u0", "r1", ["x"])[:4]]:
        apply_one(conv, event)
    clock.now += 1.0
    apply_one(
        conv, ev("conversation.item.truncated", item_id="a1", content_index=0, audio_end_ms=900)
    )
    turn = conv.turn("a1")
    assert turn is not None and turn.ended_at == clock.now


def test_only_the_documented_statuses_are_shown_or_written(tmp_path: Path) -> None:
    clock = Clock()
    conv = Conversation(clock=clock)
    for event in [SESSION, *reply("a1", "u0", "r1", ["half a sent"])[:5]]:
        apply_one(conv, event)
    turn = conv.turn("a1")
    assert isinstance(turn, Message) and turn.status == "in_progress"
    assert final_status(turn) == "interrupted"
    assert turn_line(turn) == "assistant: half a sent [interrupted]"  # not [in_progress]
    path = tmp_path / "t.jsonl"
    clock.now += 1.5  # the user quits mid-reply
    writer = TranscriptWriter(path)
    writer.finish(conv, None)
    record = json.loads(path.read_text().splitlines()[0])
    assert record["status"] == "interrupted" and record["ended_at"] is not None
    assert record["ended_at"] != record["started_at"]


def test_each_call_in_a_markdown_transcript_has_its_own_heading(tmp_path: Path) -> None:
    path = tmp_path / "calls.md"
    for words in ("first call", "second call"):
        conv = Conversation()
        apply_one(conv, SESSION)
        for event in [*user_audio("u1", None), *transcription("u1", words)]:
            apply_one(conv, event)
        writer = TranscriptWriter(path)
        writer.update(conv)
        writer.finish(conv, None)
    text = path.read_text()
    assert text.count("# rtc-voice call, ") == 2
    second = text.index("# rtc-voice call, ", 1)
    assert text[second - 2 : second] == "\n\n"  # a heading of its own, not glued to Usage
    assert "first call" in text[:second] and "second call" in text[second:]


def test_a_folded_log_line_shows_whole_words_at_80_columns() -> None:
    text = "".join(f"word{n} " for n in range(200))  # deltas folded into one line
    line = LogLine(
        0.0, "server", "response.output_audio_transcript.delta", "", count=200, text=text
    )
    row = log_row(line, 76).plain  # 80 columns less the box
    quoted = row[row.index("'") + 1 : row.rindex("'")]
    assert quoted.startswith("…word") and quoted.endswith("word199")
    assert len(row) <= 76
