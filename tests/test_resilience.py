"""Resilient calls: a dropped network noticed in seconds and resumed with the conversation, the
session cap rolled over, signals in every phase. Real loopback calls against the local server,
whose network rehearsal (--network, --drop-after) cuts and impairs them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rtc_voice.audio.pcm import silence, tone
from rtc_voice.audio.wavfile import WavWriter
from rtc_voice.call.health import LinkWatch, Lost, Probe
from rtc_voice.call.supervisor import CallSupervisor, TalkOptions
from rtc_voice.config import load_settings
from rtc_voice.conversation import Conversation
from rtc_voice.errors import ExitCode
from rtc_voice.localserver.netem import Impairment, NetworkSpecError, PacketFate, parse_network
from rtc_voice.protocol import client as proto
from rtc_voice.ui.plain import LinePresenter
from tests.rtc_client import validate_client_event, validate_server_event
from tests.support import FAKE_KEY, rtc_voice


def write_wav(path: Path, pcm: np.ndarray) -> Path:
    writer = WavWriter(path)
    writer.write(pcm)
    writer.close()
    return path


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- the link watch (pure, time as a parameter) -------------------------------------------------


def streaming(watch: LinkWatch, start: float, seconds: float) -> float:
    """Feed 20 ms frames from `start` for `seconds`; returns the time of the last one."""
    t = start
    for _ in range(int(seconds / 0.02)):
        t += 0.02
        watch.audio(t)
    return t


@pytest.mark.parametrize(
    ("name", "feed", "ask_at", "kwargs", "expected"),
    [
        ("continuous audio stops for 1 s", "idle stream", 1.0, {}, "no audio"),
        ("continuous audio, 0.9 s gap (jitter, a hiccup)", "idle stream", 0.9, {}, None),
        ("audio only while speaking; quiet after", "dtx", 1.4, {}, None),
        ("audio only while speaking; quiet for 1.5 s", "dtx", 1.5, {}, "probe"),
        ("audio stops mid-reply on a DTX server", "dtx speaking", 1.0, {}, "no audio"),
        ("reply running, nothing at all for 2.5 s", "nothing", 2.5, {"reply": True}, "nothing"),
        ("reply running, 2.4 s of nothing: probed", "nothing", 2.4, {"reply": True}, "probe"),
        ("no reply running, 1.4 s of nothing (idle DTX)", "nothing", 1.4, {}, None),
        ("ICE failed", "idle stream", 0.1, {"ice": "failed"}, "failed"),
        ("peer connection failed", "idle stream", 0.1, {"conn": "failed"}, "failed"),
    ],
)
def test_link_watch_table(
    name: str, feed: str, ask_at: float, kwargs: dict[str, Any], expected: str | None
) -> None:
    watch = LinkWatch(started=0.0)
    last = 0.0
    if feed == "idle stream":
        last = streaming(watch, 0.0, 2.0)
    elif feed == "dtx":
        watch.assistant_speaking(True)
        last = streaming(watch, 0.0, 2.0)
        watch.assistant_speaking(False)
    elif feed == "dtx speaking":
        watch.assistant_speaking(True)
        last = streaming(watch, 0.0, 2.0)
    verdict = watch.assess(
        last + ask_at,
        ice_state=kwargs.get("ice", "completed"),
        connection_state=kwargs.get("conn", "connected"),
        reply_running=kwargs.get("reply", False),
    )
    if expected is None:
        assert verdict is None, name
    elif expected == "probe":
        assert isinstance(verdict, Probe), name
    else:
        assert isinstance(verdict, Lost), name
        assert expected in verdict.reason
        assert verdict.silent_since <= last + ask_at


def test_link_watch_probes_a_quiet_server_before_calling_it_lost() -> None:
    watch = LinkWatch(started=0.0)
    watch.assistant_speaking(True)
    last = streaming(watch, 0.0, 2.0)  # a DTX server: audio only while the assistant speaks
    watch.assistant_speaking(False)
    assert watch.assess(last + 1.4) is None
    assert isinstance(watch.assess(last + 1.5), Probe)
    watch.probed(last + 1.5)
    assert watch.assess(last + 2.4) is None  # waiting for the answer, no second probe
    watch.event(last + 1.6)  # session.updated: still there
    assert watch.assess(last + 2.6) is None
    assert isinstance(watch.assess(last + 3.1), Probe)  # quiet again: ask again
    watch.probed(last + 3.1)
    assert watch.assess(last + 4.1) == Lost("no answer from the server for 2.5 s", last + 1.6)
    assert watch.probes == 2


def test_a_call_cut_before_its_audio_got_going_is_probed() -> None:
    watch = LinkWatch(started=10.0)
    for t in (10.02, 10.04, 10.06):
        watch.audio(t)
    assert isinstance(watch.assess(11.6), Probe)
    watch.probed(11.6)
    assert watch.assess(12.6) == Lost("no answer from the server for 2.5 s", 10.06)


def test_link_watch_events_count_as_heard() -> None:
    watch = LinkWatch(started=0.0)
    watch.event(2.0)
    assert isinstance(watch.assess(4.4, reply_running=True), Probe)
    assert watch.assess(4.5, reply_running=True) == Lost(
        "nothing from the server for 2.5 s during a reply", 2.0
    )


# --- the network rehearsal (pure parts) ---------------------------------------------------------


def test_network_specs_and_presets() -> None:
    assert parse_network("jitter=30ms,loss=2%") == Impairment(jitter_ms=30, loss=0.02)
    assert parse_network(" Mobile ") == Impairment(delay_ms=40, jitter_ms=30, loss=0.02)
    assert parse_network("lossy").loss == 0.05
    assert parse_network("loss=2%,seed=7") == Impairment(loss=0.02, seed=7)
    for bad, says in (
        ("jitter=30", None),  # unit optional: fine
        ("jitter=30s", "jitter is given in ms"),
        ("wobble=3ms", "expected delay=MS"),
        ("loss=120%", "at most 100%"),
        ("", "names no impairment"),
        ("seed=7", "names no impairment"),
        ("loss=2%,seed=1.5", "seed is a whole number"),
        ("loss=2%,seed=7ms", "seed is a whole number"),
    ):
        if says is None:
            assert parse_network(bad).jitter_ms == 30
            continue
        with pytest.raises(NetworkSpecError, match=says):
            parse_network(bad)


def test_packet_fate_drops_and_delays_as_asked() -> None:
    fate = PacketFate(Impairment(delay_ms=10, jitter_ms=30, loss=0.05), seed=7)
    delays = [fate() for _ in range(20_000)]
    kept = [d for d in delays if d is not None]
    assert fate.dropped == len(delays) - len(kept)
    assert 0.04 < fate.dropped / len(delays) < 0.06
    assert min(kept) >= 0.010 and max(kept) <= 0.070
    assert abs(sum(kept) / len(kept) - 0.040) < 0.002  # delay + mean jitter
    clean = PacketFate(Impairment())
    assert {clean() for _ in range(100)} == {0.0}


def test_bad_network_flags_are_usage_errors(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    for args, says in (
        (["serve", "--network", "jitter=3s"], "Invalid --network"),
        (["serve", "--drop-after", "0"], "Invalid value 0 for the flag --drop-after"),
        (["talk", "--network", "lossy"], "built-in server only"),
    ):
        done = subprocess.run(rtc_voice(*args), env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == ExitCode.USAGE, done.stderr
        assert says in done.stderr


# --- the replayed context (validated against openai's types) ------------------------------------


def test_replay_is_every_turn_in_order_chained_and_valid() -> None:
    conv = Conversation(clock=lambda: 1.0)
    events: list[dict[str, Any]] = [
        {"type": "conversation.item.added", "previous_item_id": None,
         "item": {"id": "item_u1", "type": "message", "role": "user", "status": "completed",
                  "content": [{"type": "input_text", "text": "What time is it?"}]}},
        {"type": "response.function_call_arguments.done", "response_id": "resp_1",
         "item_id": "item_f1", "output_index": 0, "call_id": "call_1", "name": "get_time",
         "arguments": "{}"},
        {"type": "conversation.item.added", "previous_item_id": "item_u1",
         "item": {"id": "item_f1", "type": "function_call", "call_id": "call_1",
                  "name": "get_time", "arguments": "{}", "status": "completed"}},
        {"type": "conversation.item.added", "previous_item_id": "item_f1",
         "item": {"id": "item_o1", "type": "function_call_output", "call_id": "call_1",
                  "output": "{\"local_time\": \"12:00\"}"}},
        {"type": "response.output_audio_transcript.delta", "response_id": "resp_2",
         "item_id": "item_a1", "output_index": 0, "content_index": 0, "delta": "It is noon, "},
    ]  # fmt: skip
    for event in events:
        conv.apply(event)
    conv.connection_lost()  # the reply was cut off after its first words
    items = conv.replay_items()
    replay = proto.replay(items)
    for event in replay:
        validate_client_event(event)
    assert [e["previous_item_id"] for e in replay] == [
        "root",
        "item_u1",
        "item_f1",
        "item_f1_out",
    ]
    assert [(e["item"]["type"], e["item"].get("role")) for e in replay] == [
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
        ("message", "assistant"),
    ]
    assert replay[0]["item"]["content"] == [{"type": "input_text", "text": "What time is it?"}]
    assert replay[3]["item"]["content"] == [{"type": "output_text", "text": "It is noon, "}]
    assert conv.turns()[-1].status == "interrupted"
    validate_client_event(proto.liveness_probe())  # the link watch's probe, too


# --- a real call dropped mid-reply --------------------------------------------------------------


class Recording(LinePresenter):
    def __init__(self) -> None:
        super().__init__(out=StringIO(), err=StringIO())
        self.client_events: list[dict[str, Any]] = []
        self.server_events: list[dict[str, Any]] = []
        self.local_events: list[dict[str, Any]] = []
        self.notices: list[str] = []

    def event(self, event: Mapping[str, Any], direction: str) -> None:
        kept = {"client": self.client_events, "server": self.server_events}
        kept.get(direction, self.local_events).append(dict(event))

    def notice(self, text: str, *, error: bool = False) -> None:
        self.notices.append(text)


@pytest.mark.timeout(60)
async def test_a_call_dropped_mid_reply_resumes_with_its_context(tmp_path: Path) -> None:
    speech = np.concatenate(
        [silence(300), tone(300, 1200, dbfs=-18), silence(5000), tone(300, 1000, dbfs=-18)]
    )
    wav = write_wav(tmp_path / "two-questions.wav", np.concatenate([speech, silence(500)]))
    transcript = tmp_path / "t.jsonl"
    presenter = Recording()
    options = TalkOptions(
        local=True,
        input=str(wav),
        output="none",
        transcript=transcript,
        max_duration=40,
        drop_after=3.0,  # the reply to the first question starts about 2 s in
    )
    call = CallSupervisor(load_settings(env={}), options, presenter, api_key=None)
    code = await call.run()
    assert code == ExitCode.OK, (call.end_reason, presenter.notices)
    assert call.end_reason == "the input file was sent and answered"

    # found lost long before aiortc would (24-36 s), and resumed once
    assert len(call.reconnects) == 1
    assert call.reconnects[0] < 3.0
    assert any("reconnecting…" in n for n in presenter.notices)

    # everything sent validates; the context came first on the new call, chained
    for event in presenter.client_events:
        validate_client_event(event)
    for event in presenter.server_events:
        validate_server_event(event)
    replayed = [e for e in presenter.client_events if e["type"] == "conversation.item.create"]
    assert [(e["item"]["role"], e["previous_item_id"]) for e in replayed] == [
        ("user", "root"),
        ("assistant", replayed[0]["item"]["id"]),
    ]
    assert replayed[0]["item"]["content"][0]["text"] == "[speech 1.2 s]"
    assert "I heard about 1.2 seconds of speech.".startswith(
        replayed[1]["item"]["content"][0]["text"]
    )
    # the transcript: every turn once, the gap marked where it happened
    lines = jsonl(transcript)
    kinds = [(x["type"], x.get("role"), x.get("status")) for x in lines]
    assert kinds == [
        ("turn", "user", "completed"),
        ("turn", "assistant", "interrupted"),
        ("gap", None, None),
        ("turn", "user", "completed"),
        ("turn", "assistant", "completed"),
        ("network", None, None),
        ("usage", None, None),
    ]
    turns = [x for x in lines if x["type"] == "turn"]
    assert len({t["item_id"] for t in turns}) == 4
    assert turns[3]["text"] == "I heard about 1.0 seconds of speech."  # the next question
    assert turns[2]["previous_item_id"] == turns[1]["item_id"]  # the new call continued it
    assert lines[2]["reason"].startswith("no audio from the server")
    summary = lines[-2]
    assert summary["reconnects"] == 1 and summary["turns"] == 2  # both replies were heard
    assert 500 < summary["turn_latency_p50_ms"] < 5000  # counted from the end of speech
    assert summary["packets_received"] > 100
    # the event log and --json got rtc-voice's own lines
    notes = [e["type"] for e in presenter.local_events]
    assert [n for n in notes if n != "rtc_voice.turn"] == ["rtc_voice.reconnected"]
    assert notes.count("rtc_voice.turn") == 2
    assert any(line.direction == "local" for line in call.log.lines)


@pytest.mark.timeout(60)
def test_without_reconnect_a_lost_network_is_exit_11_in_seconds(tmp_path: Path) -> None:
    quiet = write_wav(tmp_path / "quiet.wav", silence(20_000))
    started = time.monotonic()
    done = subprocess.run(
        rtc_voice(
            "talk", "--local", "--no-reconnect", "--drop-after", "1", "--input", str(quiet),
            "--output", "none",
        ),
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=50,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == ExitCode.CALL, done.stderr
    assert "the connection to the server was lost (no audio from the server" in done.stderr
    assert time.monotonic() - started < 15  # the input file is 20 s long: it did not wait


def test_rollover_timing_is_pure() -> None:
    from rtc_voice.call.rollover import quiet, rollover_start, session_deadline

    assert session_deadline({"expires_at": 1_000_060}, wall_now=1_000_000, now=5.0) == 65.0
    assert session_deadline({}, wall_now=1_000_000, now=5.0) == 3605.0  # 60 minutes
    assert session_deadline({"expires_at": True}, wall_now=0, now=0) == 3600.0
    assert rollover_start(deadline=3600, lead=60, opened=0) == 3540
    assert rollover_start(deadline=20, lead=60, opened=0) == 10  # never in the first half
    assert quiet(speaking="listening", reply_running=False, awaiting_transcripts=False)
    assert not quiet(speaking="assistant", reply_running=False, awaiting_transcripts=False)
    assert not quiet(speaking="listening", reply_running=True, awaiting_transcripts=False)
    assert not quiet(speaking="listening", reply_running=False, awaiting_transcripts=True)


@pytest.mark.timeout(60)
async def test_a_cap_that_cuts_a_reply_is_followed_by_a_new_session(tmp_path: Path) -> None:
    """A session too busy to roll over (a reply runs through its last seconds): the cap ends
    it, and the conversation goes on in a new session, as after a drop."""
    speech = np.concatenate(
        [silence(300), tone(300, 2000, dbfs=-18), silence(4500), tone(300, 800, dbfs=-18)]
    )
    wav = write_wav(tmp_path / "q.wav", np.concatenate([speech, silence(500)]))
    presenter = Recording()
    options = TalkOptions(
        local=True, input=str(wav), output="none", max_duration=40, session_seconds=6.0
    )
    call = CallSupervisor(load_settings(env={}), options, presenter, api_key=None)
    assert await call.run() == ExitCode.OK, (call.end_reason, presenter.notices)
    assert any("maximum duration; reconnecting…" in n for n in presenter.notices)
    assert len(call.reconnects) >= 1 and call.rollovers == []
    turns = [(t.role, t.status) for t in call.conversation.turns()]
    assert turns[0] == ("user", "completed") and len(turns) == 4
    assert turns[-2:] == [("user", "completed"), ("assistant", "completed")]
    assert call.conversation.turns()[-1].text == "I heard about 0.8 seconds of speech."


@pytest.mark.timeout(60)
async def test_a_call_that_is_only_waiting_to_leave_does_not_roll_over(tmp_path: Path) -> None:
    """The input file is sent and answered; the call leaves once it has been quiet a moment.
    A rollover window opening in that moment must not mint a key and open a session only to
    hang it up (it once raced the cap's reconnect in the test above)."""
    speech = np.concatenate([silence(300), tone(300, 800, dbfs=-18), silence(500)])
    wav = write_wav(tmp_path / "q.wav", speech)
    presenter = Recording()
    options = TalkOptions(  # a 9 s cap: the rollover window opens at 4.5 s, as the call settles
        local=True, input=str(wav), output="none", max_duration=30, session_seconds=9.0
    )
    call = CallSupervisor(load_settings(env={}), options, presenter, api_key=None)
    assert await call.run() == ExitCode.OK, (call.end_reason, presenter.notices)
    assert call.end_reason == "the input file was sent and answered"
    assert [(t.role, t.status) for t in call.conversation.turns()] == [
        ("user", "completed"),
        ("assistant", "completed"),
    ]
    assert call.rollovers == [] and call.reconnects == []


@pytest.mark.timeout(90)
async def test_a_scripted_call_rolls_over_before_the_cap_and_every_question_is_answered(
    tmp_path: Path,
) -> None:
    """A session cap of 13 s, a lead of 5 s, a 30 s call: no reply is cut, nothing is lost."""
    question = np.concatenate([tone(300, 800, dbfs=-18), silence(4200)])
    wav = write_wav(tmp_path / "script.wav", np.concatenate([silence(300), *[question] * 6]))
    presenter = Recording()
    settings = load_settings(env={"RTC_VOICE_NETWORK_ROLLOVER_LEAD_SECONDS": "5"})
    options = TalkOptions(
        local=True, input=str(wav), output="none", max_duration=60, session_seconds=13.0
    )
    call = CallSupervisor(settings, options, presenter, api_key=None)
    assert await call.run() == ExitCode.OK, (call.end_reason, presenter.notices)
    assert len(call.rollovers) >= 2  # at about 8 s, 16 s, 24 s (if the input has not ended)
    assert call.reconnects == []  # the cap never struck
    assert not any("maximum duration" in n for n in presenter.notices)
    turns = call.conversation.turns()
    assert [(t.role, t.status) for t in turns] == [
        ("user", "completed"),
        ("assistant", "completed"),
    ] * 6
    assert all(t.text == "I heard about 0.8 seconds of speech." for t in turns[1::2])
    for event in presenter.client_events:
        validate_client_event(event)


# --- signals in every phase ---------------------------------------------------------------------


@pytest.fixture
def hung_http() -> Iterator[str]:
    """A socket that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join(2)
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("how", "sig", "code"),
    [
        ("minting", signal.SIGINT, ExitCode.INTERRUPTED),
        ("minting", signal.SIGTERM, ExitCode.TERMINATED),
        ("posting the offer", signal.SIGINT, ExitCode.INTERRUPTED),
    ],
)
def test_a_signal_during_a_hung_request_exits_at_once(
    tmp_path: Path, hung_http: str, how: str, sig: signal.Signals, code: ExitCode
) -> None:
    quiet = write_wav(tmp_path / "quiet.wav", silence(2_000))
    args = ["talk", "--base-url", hung_http, "--input", str(quiet), "--output", "none"]
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "OPENAI_API_KEY": FAKE_KEY}
    if how == "posting the offer":
        args += ["--token", "ek_" + "2" * 32]
        env.pop("OPENAI_API_KEY")
    proc = subprocess.Popen(
        rtc_voice(*args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    time.sleep(2.5)  # the request is in flight and hangs (the connect timeout is 15 s)
    assert proc.poll() is None, proc.communicate()
    sent = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == code, err
    assert time.monotonic() - sent < 5, "it waited for the request instead of leaving"
    assert "Traceback" not in err and FAKE_KEY not in err


@pytest.mark.timeout(90)
def test_a_vanished_server_is_never_exit_0(
    tmp_path: Path, served: tuple[subprocess.Popen[str], str]
) -> None:
    """The server process dies mid-call: the call is found lost, every reconnect attempt is
    refused, and the exit code says so (8: network) after the bounded attempts."""
    proc, url = served
    quiet = write_wav(tmp_path / "quiet.wav", silence(40_000))
    talk = subprocess.Popen(
        rtc_voice("talk", "--base-url", url, "--json", "--input", str(quiet), "--output", "none"),
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "OPENAI_API_KEY": FAKE_KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert talk.stdout is not None
    for line in talk.stdout:  # connected
        if json.loads(line)["type"] == "session.updated":
            break
    proc.kill()
    proc.wait(10)
    _, err = talk.communicate(timeout=60)
    assert talk.returncode == ExitCode.NETWORK, err
    assert "reconnecting…" in err
    assert "the call could not be resumed after 5 attempts" in err
    assert FAKE_KEY not in err and "Traceback" not in err


# --- network health ------------------------------------------------------------------------------


def reading(at: float, received: int, lost: int, rx: int, tx: int) -> Any:
    from rtc_voice.rtc.stats import NetworkStats

    return NetworkStats(
        at=at,
        round_trip_ms=12.0,
        jitter_ms=3.0,
        packets_received=received,
        packets_lost=lost,
        packets_sent=received,
        remote_packets_lost=0,
        bytes_sent=tx,
        bytes_received=rx,
    )


def test_health_figures_per_interval_and_turn_latency() -> None:
    from rtc_voice.call.netstats import NetworkHealth

    health = NetworkHealth(silence_duration_ms=500)
    health.reading(reading(0.0, 0, 0, 0, 0))
    snap = health.reading(reading(1.0, 49, 1, 8000, 6000))
    assert snap.loss_in_pct == 2.0 and snap.kbps_in == 64.0 and snap.kbps_out == 48.0
    health.speech_stopped(10.0)  # the person stopped at 9.5
    assert health.reply_audio(10.2, level_dbfs=-90) is None  # silence is not the reply
    assert health.reply_audio(10.3, level_dbfs=-20, playout_ms=40) == pytest.approx(840)
    assert health.reply_audio(10.32, level_dbfs=-20) is None  # counted once per turn
    health.speech_stopped(20.0)
    health.turn_cancelled()  # spoke again before any reply
    assert health.reply_audio(21.0, level_dbfs=-20) is None
    health.new_call()  # the next call's counters restart at 0
    health.reading(reading(30.0, 10, 0, 100, 100))
    shown = health.snapshot(underruns=2, reconnects=1)
    assert shown.status() == "rtt 12 ms · jitter 3 ms · turn 840 ms · 1 reconnect"
    assert not shown.slow
    summary = health.summary(reconnects=1)
    assert summary["packets_received"] == 59 and summary["packets_lost"] == 1
    assert summary["turn_latency_p50_ms"] == 840.0 and summary["loss_pct"] == 1.67
    assert shown.as_event()["type"] == "rtc_voice.stats"


def test_stats_lines_are_rounded_like_the_summary() -> None:
    """--json's per-second figures, as aiortc's readings make them, read like the summary's:
    ms and kbit/s to 0.1, percentages to 0.01, not 0.4583333333333333."""
    from rtc_voice.call.netstats import NetworkHealth
    from rtc_voice.rtc.stats import NetworkStats

    def raw(at: float, received: int, lost: int, rx: int, tx: int) -> NetworkStats:
        return NetworkStats(
            at=at,
            round_trip_ms=1.1324882507324219,
            jitter_ms=0.4583333333333333,
            packets_received=received,
            packets_lost=lost,
            packets_sent=received + 5,
            remote_packets_lost=1,
            bytes_sent=tx,
            bytes_received=rx,
        )

    health = NetworkHealth()
    health.reading(raw(0.0, 0, 0, 0, 0))
    health.reading(raw(1.0003, 47, 1, 2001, 21583))
    event = health.snapshot(playout_ms=41.66666).as_event()
    printed = json.loads(json.dumps(event))
    assert printed["jitter_ms"] == 0.5 and printed["rtt_ms"] == 1.1
    assert printed["kbps_in"] == 16.0 and printed["kbps_out"] == 172.6
    assert printed["loss_in_pct"] == 2.08 and printed["loss_out_pct"] == 1.92
    assert printed["playout_ms"] == 41.7 and printed["concealed_ms"] == 0.0
    assert printed["turns"] == 0 and isinstance(printed["turns"], int)


LOSS_SEED = 18  # 2.0% of the first 150-700 packets


@pytest.mark.timeout(60)
async def test_jitter_and_loss_are_counted_on_a_real_call(tmp_path: Path) -> None:
    """The local server impairs its audio (30 ms jitter, 2% loss): the client counts the loss
    and the jitter it receives, every second, and --json gets the figures."""
    speech = np.concatenate([silence(300), tone(300, 1000, dbfs=-18), silence(4500)])
    wav = write_wav(tmp_path / "q.wav", speech)
    presenter = Recording()
    options = TalkOptions(
        local=True,
        input=str(wav),
        output="none",
        max_duration=30,
        network=f"jitter=30ms,loss=2%,seed={LOSS_SEED}",  # seeded: the loss count is repeatable
        json=True,
    )
    call = CallSupervisor(load_settings(env={}), options, presenter, api_key=None)
    assert await call.run() == ExitCode.OK, (call.end_reason, presenter.notices)
    stats = [e for e in presenter.local_events if e["type"] == "rtc_voice.stats"]
    assert len(stats) >= 3
    health = call.health
    total = health.packets_received + health.packets_lost
    assert total > 200
    assert 0.003 < health.packets_lost / total < 0.06  # 2% of a few hundred packets
    assert max(s["jitter_ms"] or 0 for s in stats) > 5  # a clean loopback path shows ~0-1 ms
    assert health.turn_ms, "the reply's latency was measured"
    assert call.network is not None and call.network.loss_in_pct is not None
    assert health.concealed > 0  # the adaptive buffer gave up on lost packets; faded over
    assert stats[-1]["concealed_ms"] == health.concealed * 20
    for line in stats:  # as --json prints them: no 0.4583333333333333
        assert all(
            len(repr(value).partition(".")[2]) <= 2
            for value in line.values()
            if isinstance(value, float)
        ), line


def test_the_status_line_shows_the_network_item() -> None:
    from rtc_voice.ui.render import View, footer_lines, header

    def footer(view: View) -> list[str]:
        return [line.plain for line in footer_lines(view, 120, False, 10)]

    view = View(model="gpt-realtime", voice="marin", phase="connected", network="rtt 12 ms")
    assert any("rtt 12 ms" in line for line in footer(view))
    assert not any("rtt" in line for line in footer(View(phase="connected")))
    slow = footer_lines(
        View(phase="connected", network="turn 1400 ms", network_bad=True), 120, False, 10
    )
    line = next(line for line in slow if "turn 1400 ms" in line.plain)
    start = line.plain.index("turn 1400 ms")
    assert any("red" in str(span.style) for span in line.spans if span.start <= start < span.end)
    assert "reconnecting" in header(View(phase="reconnecting"), 120).plain


@pytest.mark.timeout(60)
def test_ctrl_c_while_reconnecting_to_a_frozen_server_exits_130_at_once(
    tmp_path: Path, served: tuple[subprocess.Popen[str], str]
) -> None:
    """The server freezes (SIGSTOP): the call goes silent, is found lost, and the new key
    request hangs on a socket that accepts and never answers; Ctrl-C leaves at once."""
    proc, url = served
    quiet = write_wav(tmp_path / "quiet.wav", silence(40_000))
    talk = subprocess.Popen(
        rtc_voice("talk", "--base-url", url, "--input", str(quiet), "--output", "none"),
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "OPENAI_API_KEY": FAKE_KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        time.sleep(3.0)  # connected, audio streaming
        proc.send_signal(signal.SIGSTOP)
        assert talk.stderr is not None
        line = talk.stderr.readline()  # the first notice: found lost, reconnecting
        assert "reconnecting…" in line, line
        time.sleep(1.0)  # the new key request is in flight and hangs
        sent = time.monotonic()
        talk.send_signal(signal.SIGINT)
        _, err = talk.communicate(timeout=20)
        assert talk.returncode == ExitCode.INTERRUPTED, err
        assert time.monotonic() - sent < 5
        assert "Traceback" not in err and FAKE_KEY not in line + err
    finally:
        proc.send_signal(signal.SIGCONT)
        if talk.poll() is None:
            talk.kill()
            talk.wait(10)
