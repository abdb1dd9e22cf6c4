"""`rtc-voice talk` end to end over real loopback WebRTC against the local server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import wave
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rtc_voice.audio.pcm import RATE, rms_dbfs, silence, tone
from rtc_voice.audio.wavfile import WavWriter
from rtc_voice.call.supervisor import CallSupervisor, TalkOptions
from rtc_voice.config import load_settings
from rtc_voice.errors import ExitCode
from rtc_voice.ui.plain import LinePresenter
from tests.relay import TcpRelay
from tests.rtc_client import validate_client_event, validate_server_event
from tests.support import FAKE_KEY, Lines, Reply, ScriptedServer, openai_error, rtc_voice

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "cli" / "rtc_voice" / "data" / "hello.wav"


def talk(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), **(env or {})}
    full_env.pop("OPENAI_API_KEY", None) if env is None or "OPENAI_API_KEY" not in env else None
    return subprocess.run(
        rtc_voice("talk", *args),
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,  # relative paths in a test land in its own folder
    )


def write_wav(path: Path, pcm: np.ndarray) -> Path:
    writer = WavWriter(path)
    writer.write(pcm)
    writer.close()
    return path


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(
            -1, wav.getnchannels()
        )


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_spoken_file_in_reply_out_transcript_and_recording(tmp_path: Path) -> None:
    out, rec, transcript = tmp_path / "out.wav", tmp_path / "rec.wav", tmp_path / "t.jsonl"
    done = talk(
        tmp_path,
        "--local",
        "--input",
        str(HELLO),
        "--output",
        str(out),
        "--transcript",
        str(transcript),
        "--record",
        str(rec),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "you: [speech 4.4 s]",
        "assistant: I heard about 4.4 seconds of speech.",
    ]
    assert "Call ended: the input file was sent and answered." in done.stderr
    lines = jsonl(transcript)
    user, assistant, network, usage = lines
    ended = done.stderr.splitlines()[-2:]  # the end of the call, then what it came to
    assert ended[0] == "Call ended: the input file was sent and answered."
    assert re.fullmatch(
        rf"\d\d:\d\d on the call; 1 response, {usage['input_tokens']} input and "
        rf"{usage['output_tokens']} output tokens, about \${usage['cost_usd']:.4f}\.",
        ended[1],
    ), ended
    assert network["type"] == "network" and network["turns"] == 1
    assert network["reconnects"] == 0 and network["turn_latency_p50_ms"] > 500
    assert (user["type"], user["role"], user["status"]) == ("turn", "user", "completed")
    assert (assistant["role"], assistant["status"]) == ("assistant", "completed")
    assert assistant["previous_item_id"] == user["item_id"]
    assert assistant["text"] == "I heard about 4.4 seconds of speech."
    assert usage["type"] == "usage" and usage["output_audio_tokens"] > 0
    assert usage["cost_usd"] > 0
    played = read_wav(out)[:, 0]
    assert rms_dbfs(played) > -45 and len(played) > RATE * 2  # the spoken reply is in it
    stereo = read_wav(rec)
    assert stereo.shape[1] == 2
    assert rms_dbfs(stereo[:, 0]) > -40  # you, as sent
    assert rms_dbfs(stereo[:, 1]) > -45  # the assistant, as played
    first_you = int(np.argmax(np.abs(stereo[:, 0]) > 2000))
    first_assistant = int(np.argmax(np.abs(stereo[:, 1]) > 2000))
    assert first_assistant > first_you + RATE * 4  # the reply comes after 4.4 s of speech


def test_say_and_every_client_event_validates(tmp_path: Path) -> None:
    """In-process, so each event the client sends passes openai's client-event types."""
    import asyncio
    from io import StringIO

    sent: list[dict[str, Any]] = []
    received: list[dict[str, Any]] = []

    class Checking(LinePresenter):
        def event(self, event: Mapping[str, Any], direction: str) -> None:
            if direction == "client":
                validate_client_event(dict(event))
                sent.append(dict(event))
            else:
                validate_server_event(dict(event))
                received.append(dict(event))

    quiet = write_wav(tmp_path / "quiet.wav", silence(1500))
    out = StringIO()
    session = CallSupervisor(
        load_settings(env={}),
        TalkOptions(
            local=True,
            input=str(quiet),
            output="none",
            say=("hello from a test",),
            transcript=tmp_path / "t.jsonl",
        ),
        Checking(out=out, err=StringIO()),
        api_key=None,
    )
    code = asyncio.run(session.run())
    assert code == ExitCode.OK
    assert out.getvalue().splitlines() == [
        "you: hello from a test",
        "assistant: You said: hello from a test",
    ]
    kinds = [e["type"] for e in sent]
    assert kinds[:3] == ["session.update", "conversation.item.create", "response.create"]
    assert sent[0]["session"]["tools"][0]["name"] == "get_time"
    assert received[0]["type"] == "session.created"
    assert [t["role"] for t in jsonl(tmp_path / "t.jsonl")[:2]] == ["user", "assistant"]


def test_function_call_runs_the_tool_and_the_result_is_spoken(tmp_path: Path) -> None:
    quiet = write_wav(tmp_path / "quiet.wav", silence(1000))
    transcript = tmp_path / "t.jsonl"
    done = talk(
        tmp_path,
        "--local",
        "--input",
        str(quiet),
        "--output",
        "none",
        "--say",
        "/call get_time {}",
        "--transcript",
        str(transcript),
    )
    assert done.returncode == 0, done.stderr
    lines = jsonl(transcript)
    call = next(x for x in lines if x["type"] == "function_call")
    assert call["name"] == "get_time" and call["arguments"] == "{}"
    assert "local_time" in json.loads(call["output"])
    spoken = [x for x in lines if x["type"] == "turn" and x["role"] == "assistant"]
    assert spoken[-1]["text"].startswith("The tool get_time returned: {")
    assert any(line.startswith("function: get_time({}) -> ") for line in done.stdout.splitlines())


def test_speaking_over_the_reply_interrupts_it(tmp_path: Path) -> None:
    speech = np.concatenate(
        [
            silence(300),
            tone(300, 1200, dbfs=-18),
            silence(1100),
            tone(300, 1000, dbfs=-18),
            silence(400),
        ]
    )
    wav = write_wav(tmp_path / "barge.wav", speech)
    transcript = tmp_path / "t.jsonl"
    done = talk(
        tmp_path,
        "--local",
        "--input",
        str(wav),
        "--output",
        "none",
        "--transcript",
        str(transcript),
    )
    assert done.returncode == 0, done.stderr
    turns = [x for x in jsonl(transcript) if x["type"] == "turn"]
    assert [(t["role"], t["status"]) for t in turns] == [
        ("user", "completed"),
        ("assistant", "interrupted"),
        ("user", "completed"),
        ("assistant", "completed"),
    ]
    assert len(turns[1]["text"]) < len("I heard about 1.2 seconds of speech.")
    assert turns[3]["text"] == "I heard about 1.0 seconds of speech."
    assert "[interrupted]" in done.stdout


def test_json_mode_prints_server_events(tmp_path: Path) -> None:
    quiet = write_wav(tmp_path / "quiet.wav", silence(800))
    done = talk(
        tmp_path, "--local", "--json", "--input", str(quiet), "--output", "none", "--say", "hi"
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["type"] == "session.created"
    assert "response.done" in [e["type"] for e in events]
    for event in events:
        if not event["type"].startswith("rtc_voice."):  # our own lines (network stats)
            validate_server_event(event)


@pytest.mark.parametrize("served", [("--max-duration", "3")], indirect=True)
def test_session_cap_ends_the_call_cleanly(
    tmp_path: Path, served: tuple[subprocess.Popen[str], str]
) -> None:
    _, url = served
    long_quiet = write_wav(tmp_path / "long.wav", silence(20000))
    done = talk(
        tmp_path,
        "--base-url",
        url,
        "--input",
        str(long_quiet),
        "--output",
        "none",
        "--no-reconnect",
        env={"OPENAI_API_KEY": FAKE_KEY},
    )
    assert done.returncode == 0, done.stderr
    assert "maximum duration" in done.stderr
    assert FAKE_KEY not in done.stdout + done.stderr


def test_standard_key_never_leaks_and_goes_only_to_mint_and_hangup(
    tmp_path: Path, served: tuple[subprocess.Popen[str], str]
) -> None:
    proc, url = served
    transcript = tmp_path / "t.md"
    done = talk(
        tmp_path,
        "--base-url",
        url,
        "--input",
        str(HELLO),
        "--output",
        "none",
        "--transcript",
        str(transcript),
        env={"OPENAI_API_KEY": FAKE_KEY},
    )
    assert done.returncode == 0, done.stderr
    for text in (done.stdout, done.stderr, transcript.read_text()):
        assert FAKE_KEY not in text and "ek_" not in text
    proc.terminate()
    _, log = proc.communicate(timeout=20)
    assert "minted ek_" in log and " started: " in log and "(hung up)" in log


def test_expired_or_unknown_token_is_an_auth_error(
    tmp_path: Path, served: tuple[subprocess.Popen[str], str]
) -> None:
    _, url = served
    done = talk(
        tmp_path,
        "--base-url",
        url,
        "--token",
        "ek_" + "0" * 32,
        "--output",
        "none",
        "--input",
        str(HELLO),
    )
    assert done.returncode == ExitCode.AUTH
    assert "Error: Incorrect API key provided" in done.stderr
    assert "ephemeral key is invalid or expired" in done.stderr


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        ([], ExitCode.AUTH, "rtc-voice talk --local"),
        (["--local", "--input", "missing.wav"], ExitCode.AUDIO, "does not exist"),
        (
            ["--local", "--input", str(HELLO), "--transcript", "t.txt"],
            ExitCode.AUDIO,  # a file talk writes that cannot be used, as --record x.xyz
            "Cannot tell the transcript format",
        ),
        (["--token", "sk-nope"], ExitCode.USAGE, "--token takes an ephemeral key"),
        (["--local", "--max-duration", "0"], ExitCode.USAGE, "--max-duration"),
    ],
)
def test_bad_input_is_one_sentence_with_a_code(
    tmp_path: Path, args: list[str], code: int, fragment: str
) -> None:
    done = talk(tmp_path, *args)
    assert done.returncode == code, done.stderr
    assert fragment in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("flag", ["--input", "--output", "--record"])
def test_a_folder_given_for_an_audio_file_says_so(tmp_path: Path, flag: str) -> None:
    """A folder was taken for a device name ('No audio device matches …'), or, for --record,
    for a file with an unknown extension."""
    folder = tmp_path / "calls"
    folder.mkdir()
    others = {"--input": ["--output", "none"], "--output": ["--input", "none"]}
    args = others.get(flag, ["--input", "none", "--output", "none"])
    done = talk(tmp_path, "--local", flag, str(folder), *args, timeout=60)
    assert done.returncode == ExitCode.AUDIO, done.stderr
    assert f"{folder}" in done.stderr and "is a directory" in done.stderr
    assert "\nHint: " in done.stderr and "No audio device" not in done.stderr
    assert "Cannot tell which audio format" not in done.stderr


def test_a_bad_device_name_from_the_config_file_or_environment_says_where_it_came_from(
    tmp_path: Path,
) -> None:
    """`talk` with no --input said only "No audio device matches 'usb-headset'", a name the
    user never typed on this command line."""
    config = tmp_path / "rtc.toml"
    config.write_text('[audio]\ninput_device = "usb-headset"\n')
    done = talk(tmp_path, "--local", "--config", str(config), "--output", "none", timeout=60)
    assert done.returncode == ExitCode.AUDIO, done.stderr
    assert f"'usb-headset' (set by audio.input_device in {config})" in done.stderr
    assert "or pick one for this call with --input" in done.stderr
    by_env = talk(
        tmp_path, "--local", "--input", "none", env={"RTC_VOICE_AUDIO_OUTPUT_DEVICE": "#99"}
    )
    assert by_env.returncode == ExitCode.AUDIO, by_env.stderr
    assert "(set by RTC_VOICE_AUDIO_OUTPUT_DEVICE)" in by_env.stderr
    flagged = talk(tmp_path, "--local", "--config", str(config), "--input", "usb-headset")
    assert flagged.returncode == ExitCode.AUDIO and "set by" not in flagged.stderr


def test_unreachable_host_is_a_network_error(tmp_path: Path) -> None:
    done = talk(
        tmp_path,
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--input",
        str(HELLO),
        "--output",
        "none",
        env={"OPENAI_API_KEY": FAKE_KEY},
    )
    assert done.returncode == ExitCode.NETWORK
    assert "Cannot reach 127.0.0.1:9" in done.stderr and FAKE_KEY not in done.stderr


def test_connect_timeout_names_the_stalled_step(tmp_path: Path) -> None:
    """An answer whose peer is gone: HTTP works, ICE never completes."""
    import asyncio

    from aiortc import RTCPeerConnection, RTCSessionDescription

    from rtc_voice.audio.tracks import PcmTrack
    from rtc_voice.rtc.compat import loopback_ice
    from rtc_voice.rtc.ice import rtc_configuration

    async def dead_answer() -> str:
        offerer, answerer = (
            RTCPeerConnection(rtc_configuration(())),
            RTCPeerConnection(rtc_configuration(())),
        )
        offerer.addTransceiver(PcmTrack(), direction="sendrecv")
        offerer.createDataChannel("oai-events")
        with loopback_ice():
            await offerer.setLocalDescription(await offerer.createOffer())
            await answerer.setRemoteDescription(
                RTCSessionDescription(offerer.localDescription.sdp, "offer")
            )
            await answerer.setLocalDescription(await answerer.createAnswer())
        sdp = str(answerer.localDescription.sdp)
        await offerer.close()
        await answerer.close()
        return sdp

    answer = asyncio.run(dead_answer())
    with ScriptedServer() as server:
        server.script(
            Reply(
                201,
                answer,
                {"Content-Type": "application/sdp", "Location": "/v1/realtime/calls/rtc_dead"},
            )
        )
        done = talk(
            tmp_path,
            "--base-url",
            server.base_url,
            "--token",
            "ek_" + "1" * 32,
            "--input",
            str(HELLO),
            "--output",
            "none",
            env={"RTC_VOICE_NETWORK_CONNECT_TIMEOUT": "3"},
        )
    assert done.returncode == ExitCode.CALL
    assert "did not connect within 3 s: stalled at the ICE step" in done.stderr


def test_sigterm_hangs_up_and_finishes_the_transcript(tmp_path: Path) -> None:
    import signal

    long_quiet = write_wav(tmp_path / "long.wav", silence(30_000))
    transcript = tmp_path / "t.jsonl"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    proc = subprocess.Popen(
        rtc_voice(
            "talk",
            "--local",
            "--json",
            "--input",
            str(long_quiet),
            "--output",
            "none",
            "--say",
            "still there?",
            "--transcript",
            str(transcript),
        ),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    Lines(proc.stdout).until(  # wait until the typed message has been answered
        lambda line: json.loads(line)["type"] == "response.done", within=60
    )
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.TERMINATED == 143
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    lines = jsonl(transcript)
    assert [x.get("role") for x in lines[:2]] == ["user", "assistant"]
    assert lines[-1]["type"] == "usage" and lines[-1]["responses"] == 1


def test_malformed_sdp_answer_is_a_protocol_error_and_the_call_is_hung_up(
    tmp_path: Path, http_server: ScriptedServer
) -> None:
    """aiortc's SDP parser raises AssertionError on this answer; the server made a call."""
    http_server.script(
        Reply(200, {"value": "ek_" + "2" * 32, "expires_at": 4_000_000_000}),
        Reply(
            201,
            "v=0\r\nm=audio x\r\n",
            {"Content-Type": "application/sdp", "Location": "/v1/realtime/calls/rtc_bad1"},
        ),
        Reply(200, ""),
    )
    done = talk(
        tmp_path,
        "--base-url",
        http_server.base_url,
        "--input",
        str(HELLO),
        "--output",
        "none",
        env={"OPENAI_API_KEY": FAKE_KEY},
    )
    assert done.returncode == ExitCode.PROTOCOL, done.stderr
    assert "SDP answer that cannot be used" in done.stderr and "Traceback" not in done.stderr
    paths = [r.path for r in http_server.requests]
    assert paths == [
        "/v1/realtime/client_secrets",
        "/v1/realtime/calls",
        "/v1/realtime/calls/rtc_bad1/hangup",
    ]
    assert http_server.requests[2].headers["authorization"] == f"Bearer {FAKE_KEY}"


@pytest.mark.parametrize("existing", [True, False])
def test_a_run_that_fails_before_the_call_writes_no_transcript(
    tmp_path: Path, http_server: ScriptedServer, existing: bool
) -> None:
    http_server.script(Reply(401, openai_error("Incorrect API key provided.", "invalid_api_key")))
    transcript = tmp_path / "t.jsonl"
    if existing:
        transcript.write_text('{"type": "usage", "responses": 3}\n')
    before = transcript.read_text() if existing else None
    failures = [
        (["--local", "--input", "missing.wav"], ExitCode.AUDIO),
        (["--base-url", http_server.base_url, "--input", str(HELLO)], ExitCode.AUTH),
    ]
    for args, code in failures:
        done = talk(
            tmp_path,
            *args,
            "--output",
            "none",
            "--transcript",
            str(transcript),
            env={"OPENAI_API_KEY": FAKE_KEY},
        )
        assert done.returncode == code, done.stderr
        assert (transcript.read_text() if transcript.exists() else None) == before


def test_an_unwritable_transcript_is_a_file_error_before_the_call(tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "t.jsonl"
    done = talk(
        tmp_path, "--local", "--input", str(HELLO), "--output", "none", "--transcript", str(target)
    )
    assert done.returncode == ExitCode.AUDIO, done.stderr
    assert f"Error: Cannot write the transcript {target}" in done.stderr
    assert "Traceback" not in done.stderr and "the call" not in done.stdout


def test_any_audio_file_in_and_out_by_extension(tmp_path: Path) -> None:
    import av

    from rtc_voice.audio.wavfile import open_writer, read_audio

    flac = tmp_path / "hello.flac"
    writer = open_writer(flac)
    writer.write(read_audio(HELLO))
    writer.close()
    out, rec = tmp_path / "reply.ogg", tmp_path / "call.mp3"
    done = talk(
        tmp_path, "--local", "--input", str(flac), "--output", str(out), "--record", str(rec)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "you: [speech 4.4 s]"
    for path, name in ((out, "ogg"), (rec, "mp3")):
        with av.open(str(path)) as container:
            assert container.format.name == name
            assert len(read_audio(path)) > RATE  # more than a second of the call


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--input", "missing.flac"], "The input file missing.flac does not exist."),
        (["--input", str(HELLO), "--record", "call.xyz"], "Cannot tell which audio format"),
        (["--input", str(HELLO), "--output", "reply.aac"], "Cannot tell which audio format"),
    ],
)
def test_audio_file_mistakes_are_one_sentence(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    done = talk(tmp_path, "--local", *args)
    assert done.returncode == ExitCode.AUDIO, done.stderr
    assert fragment in done.stderr and "Traceback" not in done.stderr
    assert "No microphone" not in done.stderr


def test_a_run_that_fails_before_the_call_leaves_recordings_alone(
    tmp_path: Path, http_server: ScriptedServer
) -> None:
    http_server.script(Reply(401, openai_error("Incorrect API key provided.", "invalid_api_key")))
    rec, out = tmp_path / "call.flac", tmp_path / "reply.wav"
    rec.write_bytes(b"an earlier call")
    out.write_bytes(b"an earlier reply")
    done = talk(
        tmp_path,
        "--base-url",
        http_server.base_url,
        "--input",
        str(HELLO),
        "--output",
        str(out),
        "--record",
        str(rec),
        env={"OPENAI_API_KEY": FAKE_KEY},
    )
    assert done.returncode == ExitCode.AUTH, done.stderr
    assert rec.read_bytes() == b"an earlier call" and out.read_bytes() == b"an earlier reply"
    nowhere = tmp_path / "no-such-folder" / "call.wav"
    early = talk(tmp_path, "--local", "--input", str(HELLO), "--record", str(nowhere))
    assert early.returncode == ExitCode.AUDIO
    assert f"Cannot write the recording {nowhere}: the folder" in early.stderr


def test_mint_call_and_hang_up_share_one_http_connection(
    tmp_path: Path, served: tuple[subprocess.Popen[str], str]
) -> None:
    """Each new connection costs a TCP (on the Internet, also a TLS) handshake before the
    request: the key request, POST /calls and the hang-up reuse one."""
    from urllib.parse import urlsplit

    proc, url = served
    upstream = urlsplit(url)
    proxy = TcpRelay((upstream.hostname or "127.0.0.1", upstream.port or 80))
    try:
        done = talk(
            tmp_path,
            "--base-url",
            f"http://127.0.0.1:{proxy.port}/v1",
            "--input",
            "none",
            "--output",
            "none",
            "--say",
            "one connection",
            env={"OPENAI_API_KEY": FAKE_KEY},
        )
    finally:
        proxy.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "assistant: You said: one connection"
    proc.terminate()
    _, log = proc.communicate(timeout=20)
    assert "minted ek_" in log and " started: " in log and "(hung up)" in log
    assert proxy.connections == 1


@pytest.mark.timeout(60)
def test_a_silent_microphone_is_one_warning_not_a_repeated_error(
    tmp_path: Path, pulse: Any
) -> None:
    """The private PulseAudio's default source delivers digital silence: over a 13 s call the
    notice comes once (one stretch of silence) and reads as a warning, since the call goes on;
    it was printed as `error:`."""
    done = talk(tmp_path, "--local", "--output", "none", "--max-duration", "13", timeout=45)
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "delivered only silence" in line]
    assert len(said) == 1, done.stderr
    assert said[0].startswith("Warning: the microphone"), said
    assert "error" not in said[0].lower(), said
