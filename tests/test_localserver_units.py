"""Pure parts of the local server: VAD, session validation/merge, reply plans, usage, audio."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from rtc_voice.audio.pcm import RATE, rms_dbfs
from rtc_voice.localserver import voice
from rtc_voice.localserver.responses import plan_reply, usage_for
from rtc_voice.localserver.sessions import (
    ParamError,
    default_session,
    merge_session,
    validate_session,
)
from rtc_voice.localserver.vad import EnergyVad, SpeechStarted, SpeechStopped, threshold_dbfs


def run_vad(vad: EnergyVad, pattern: list[tuple[float, int]]) -> list[object]:
    """pattern: (level dBFS, number of 20 ms frames)."""
    events: list[object] = []
    for level, frames in pattern:
        for _ in range(frames):
            events += vad.feed(level, 20)
    return events


def test_vad_threshold_maps_onto_dbfs() -> None:
    assert threshold_dbfs(0.0) == -70 and threshold_dbfs(0.5) == -45 and threshold_dbfs(1) == -20


def test_vad_start_with_prefix_padding_and_stop_after_silence() -> None:
    vad = EnergyVad(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500)
    events = run_vad(vad, [(-90, 25), (-20, 50), (-90, 24)])
    assert events == [SpeechStarted(audio_start_ms=200)]  # loud from 500 ms, minus 300
    events = run_vad(vad, [(-90, 1)])  # 500 ms of silence reached
    assert events == [SpeechStopped(audio_end_ms=1500, speech_ms=1000)]


def test_vad_ignores_clicks_and_quiet_noise() -> None:
    vad = EnergyVad(threshold=0.5)
    assert run_vad(vad, [(-20, 1), (-90, 10), (-50, 100), (-20, 1), (-60, 5)]) == []


def test_vad_higher_threshold_needs_louder_speech() -> None:
    assert run_vad(EnergyVad(threshold=0.9), [(-30, 20)]) == []
    assert run_vad(EnergyVad(threshold=0.5), [(-30, 20)]) != []


def test_session_update_merges_and_turn_detection_type_switch_resets_defaults() -> None:
    base = default_session(0)
    merged = merge_session(
        base,
        validate_session(
            {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}
        ),
    )
    assert merged["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "auto",
        "create_response": True,
        "interrupt_response": True,
    }
    assert merged["audio"]["output"] == base["audio"]["output"]
    tweaked = merge_session(
        base, {"type": "realtime", "audio": {"input": {"turn_detection": {"threshold": 0.8}}}}
    )
    assert tweaked["audio"]["input"]["turn_detection"]["threshold"] == 0.8
    assert tweaked["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500
    cleared = merge_session(
        base, {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
    )
    assert cleared["audio"]["input"]["turn_detection"] is None
    assert base["audio"]["input"]["turn_detection"] is not None  # no aliasing


@pytest.mark.parametrize(
    ("session", "code", "param"),
    [
        (
            {"type": "realtime", "tools": [{"type": "function", "name": "f", "strict": True}]},
            "unknown_parameter",
            "session.tools[0].strict",
        ),
        (
            {"type": "realtime", "tools": [{"type": "function"}]},
            "missing_required_parameter",
            "session.tools[0].name",
        ),
        ({"type": "transcription"}, "invalid_value", "session.type"),
        (
            {"type": "realtime", "output_modalities": ["audio", "text"]},
            "invalid_value",
            "session.output_modalities",
        ),
        (
            {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}},
            },
            "invalid_value",
            "session.audio.input.turn_detection.threshold",
        ),
        (
            {"type": "realtime", "audio": {"output": {"speed": 3}}},
            "invalid_value",
            "session.audio.output.speed",
        ),
        ({"type": "realtime", "audio": "loud"}, "invalid_type", "session.audio"),
    ],
)
def test_session_validation_errors(session: dict[str, object], code: str, param: str) -> None:
    with pytest.raises(ParamError) as info:
        validate_session(session)
    assert (info.value.code, info.value.param) == (code, param)


def item(id_: str, **fields: object) -> dict[str, object]:
    return {"id": id_, "type": "message", "role": "user", **fields}


def test_reply_plans() -> None:
    assert plan_reply([], [], {}).text.startswith("Hello. This is the rtc-voice local server")
    spoken = [item("a", content=[{"type": "input_audio"}])]
    assert plan_reply(spoken, [], {"a": 1840}).text == "I heard about 1.8 seconds of speech."
    assert plan_reply(spoken, [], {"a": 0}, audio_ms={"a": 2480}).text == (
        "I heard no speech, only 2.5 seconds of silence."
    )
    assert plan_reply(spoken, [], {"a": 40}, audio_ms={"a": 300}).text == (
        "I heard no speech, only 0.3 seconds of silence."  # 40 ms would read "0.0 s of speech"
    )
    typed = [item("b", content=[{"type": "input_text", "text": "hi"}])]
    assert plan_reply(typed, [], {}).text == "You said: hi"
    tools = [{"type": "function", "name": "lookup"}]
    call = [item("c", content=[{"type": "input_text", "text": '/call lookup {"q": 1}'}])]
    assert plan_reply(call, tools, {}).function == ("lookup", '{"q": 1}')
    assert plan_reply(call, [], {}).text == "There is no tool named lookup."
    bad = [item("d", content=[{"type": "input_text", "text": "/call lookup {oops"}])]
    assert plan_reply(bad, tools, {}).text == "The arguments for lookup are not valid JSON."
    result = [
        {"id": "e", "type": "function_call", "call_id": "k", "name": "lookup"},
        {"id": "f", "type": "function_call_output", "call_id": "k", "output": "42"},
    ]
    assert plan_reply(result, tools, {}).text == "The tool lookup returned: 42"


def test_usage_counts_text_audio_and_cached_tokens() -> None:
    items = [
        item("a", content=[{"type": "input_audio"}]),
        item("b", content=[{"type": "input_text", "text": "x" * 40}]),
    ]
    usage = usage_for(items, "y" * 40, {"a": 2000}, "z" * 8, 1500.0, cached=64)
    details = usage["input_token_details"]
    assert details["text_tokens"] == 20 and details["audio_tokens"] == 20
    assert details["cached_tokens"] == 40  # never more than the input
    assert usage["output_token_details"] == {"text_tokens": 2, "audio_tokens": 30}
    assert usage["total_tokens"] == 40 + 32


async def test_tone_pattern_when_espeak_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    voice._cache.clear()
    pcm = await voice.synthesize("one two three")
    assert len(pcm) == 3 * int(RATE * 0.23)
    assert -16 < rms_dbfs(pcm) < -10
    voice._cache.clear()


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None and not os.environ.get("CI"),
    reason="espeak-ng is not installed (CI installs it)",
)
async def test_espeak_speech_is_real_audio() -> None:
    voice._cache.clear()
    pcm = await voice.synthesize("I heard about two seconds of speech.")
    voice._cache.clear()
    seconds = len(pcm) / RATE
    assert 1.2 < seconds < 5
    assert rms_dbfs(pcm) > -35
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    voiced = spectrum[int(80 * seconds) : int(4000 * seconds)].sum() / spectrum.sum()
    assert voiced > 0.7  # energy sits in the speech band, unlike a pure tone it is spread out
    assert np.count_nonzero(spectrum > spectrum.max() * 0.1) > 20


async def test_the_audio_jitter_buffer_can_be_tuned_on_this_aiortc() -> None:
    from aiortc import RTCPeerConnection

    from rtc_voice.audio.tracks import PcmTrack
    from rtc_voice.rtc.compat import set_audio_jitter_buffer
    from rtc_voice.rtc.ice import rtc_configuration

    pc = RTCPeerConnection(rtc_configuration(()))
    pc.addTransceiver(PcmTrack(), direction="sendrecv")
    try:
        assert set_audio_jitter_buffer(pc, 1) == 1  # if aiortc moves it, this fails loudly
        buffer = pc.getTransceivers()[0].receiver._RTCRtpReceiver__jitter_buffer
        assert buffer._prefetch == 1
    finally:
        await pc.close()


def test_immediate_audio_jitter_buffer_releases_in_order_packets_at_once() -> None:
    from aiortc.rtp import RtpPacket

    from rtc_voice.rtc.compat import _immediate_audio_buffer

    def packet(seq: int) -> RtpPacket:
        p = RtpPacket(payload_type=111, sequence_number=seq, timestamp=seq * 960)
        p._data = bytes([seq])  # type: ignore[attr-defined]
        return p

    buffer = _immediate_audio_buffer()
    released = [buffer.add(packet(seq))[1] for seq in (100, 101, 103, 102, 104)]
    got = [f.timestamp // 960 if f is not None else None for f in released]
    # 103 arrives before 102: it waits for the gap; 102 fills it and goes out at once; the next
    # add releases 103, and 104 waits one step behind until the buffer catches up.
    assert got[:4] == [100, 101, None, 102]
    assert got[4] in (103, 104)
    assert released[0] is not None and released[0].data == bytes([100])


def test_loopback_hosts() -> None:
    from rtc_voice.rtc.ice import is_loopback_host

    for host in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback_host(host), host
    for host in ("0.0.0.0", "192.0.2.2", "10.0.0.1", "api.openai.com", "::", ""):
        assert not is_loopback_host(host), host


def test_input_buffer_counts_audio_and_voiced_audio_and_detects_turns() -> None:
    from rtc_voice.localserver.input_buffer import InputBuffer
    from rtc_voice.protocol.defaults import turn_detection_defaults

    buffer = InputBuffer(turn_detection_defaults("server_vad"))
    events = [e for level in [-20.0] * 10 + [-90.0] * 30 for e in buffer.feed(level, 20)]
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    assert (buffer.ms, buffer.voiced_ms) == (800, 200)
    buffer.committed()
    assert (buffer.ms, buffer.voiced_ms, buffer.pending_item_id) == (0, 0, None)

    manual = InputBuffer(None)  # manual turns: audio is counted, no turn events
    assert [e for level in [-20.0] * 10 + [-90.0] * 30 for e in manual.feed(level, 20)] == []
    assert manual.voiced_ms == 200
    manual.configure(turn_detection_defaults("semantic_vad"))
    assert manual.vad.now_ms == 800 and manual.vad.silence_duration_ms == 800


def test_items_are_placed_after_their_predecessor() -> None:
    from rtc_voice.localserver import items as store

    items: list[dict[str, object]] = []
    assert store.insert(items, {"id": "a"}, None) is None
    assert store.insert(items, {"id": "c"}, "a") == "a"
    assert store.insert(items, {"id": "b"}, "a") == "a"
    assert store.insert(items, {"id": "z"}, "root") is None
    assert [i["id"] for i in items] == ["z", "a", "b", "c"]
    assert store.find(items, "b") == {"id": "b"} and store.find(items, "x") is None
    assert store.last_id(items) == "c" and store.last_id([]) is None
    created = store.from_create_event(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "c1"},
        }
    )
    assert created["output"] == "" and created["status"] == "completed"
    assert created["id"].startswith("item_")
