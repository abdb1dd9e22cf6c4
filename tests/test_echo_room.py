"""Echo cancellation end to end: `rtc-voice talk --local` on the devices of an echo room (a
private PulseAudio daemon where the speaker's sound comes back into the microphone 60 ms later,
10 dB quieter, through a small room's reverb; tests/echo_room.py)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.echo_room import EchoRoom, speech
from tests.pulse import PulseUnavailable
from tests.support import rtc_voice

pytestmark = pytest.mark.audio

# The local server answers a typed message with "You said: <its first 300 characters>".
LONG = (
    "Please tell me, slowly and carefully, about the long history of the old stone bridge over "
    "the river, about the people who built it, about the floods, the repairs, the festivals "
    "held on it every summer, and about why the town still loves it so much, even though the "
    "new road bridge carries all of the traffic now."
)


@pytest.fixture(scope="module")
def room() -> Iterator[EchoRoom]:
    try:
        echo_room = EchoRoom.start(delay_ms=60, level_db=-10)
    except PulseUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"cannot build the echo room: {exc}")
        pytest.skip(f"cannot build the echo room: {exc}")
    yield echo_room
    echo_room.stop()


@pytest.fixture(scope="module")
def user_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speech(
        "Excuse me, I have a question about that.",
        tmp_path_factory.mktemp("speech") / "user.wav",
    )


@dataclass
class Call:
    """What happened in one call, from the server events `talk --json` printed."""

    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def of(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, e) for t, e in self.events if e["type"] == kind]

    @property
    def responses(self) -> list[dict[str, Any]]:
        return [e["response"] for _, e in self.of("response.done")]

    def cancelled_by_speech(self) -> list[float]:
        return [
            t
            for t, e in self.of("response.done")
            if (e["response"].get("status_details") or {}).get("reason") == "turn_detected"
        ]

    def assistant_seconds(self) -> float:
        """Seconds of assistant audio played, from each reply's start to its end."""
        starts = {e["response_id"]: t for t, e in self.of("output_audio_buffer.started")}
        return sum(
            t - starts[e["response"]["id"]]
            for t, e in self.of("response.done")
            if e["response"]["id"] in starts
        )


def run_call(
    room: EchoRoom,
    tmp_path: Path,
    *args: str,
    on_event: Callable[[float, dict[str, Any], subprocess.Popen[str]], bool],
    timeout: float,
) -> Call:
    """Run `talk --local --json --say LONG` in the room until `on_event` returns True (then
    SIGTERM) or `timeout` seconds pass."""
    env = {**os.environ, **room.env, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    proc = subprocess.Popen(
        rtc_voice("talk", "--local", "--json", "--say", LONG, *args),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(timeout, proc.terminate)
    watchdog.start()
    call = Call()
    start = time.monotonic()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            now = time.monotonic() - start
            call.events.append((now, event))
            if on_event(now, event, proc):
                proc.terminate()
        proc.wait(20)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        stderr = proc.stderr.read() if proc.stderr else ""
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode in (0, 143), stderr
    assert call.events, stderr
    return call


@pytest.mark.timeout(90)
def test_with_echo_cancellation_no_reply_is_cut_by_its_own_echo(
    room: EchoRoom, user_wav: Path, tmp_path: Path
) -> None:
    """A long reply, then two spoken questions each answered: over 20 s of assistant speech in
    the room, no reply cancelled, every reply finished, and the user still heard between (while
    AEC3 rests: the speaker is silent then)."""
    players: list[subprocess.Popen[bytes]] = []
    done: list[str] = []

    def on_event(now: float, event: dict[str, Any], proc: subprocess.Popen[str]) -> bool:
        if event["type"] != "response.done":
            return False
        done.append(event["response"]["status"])
        if len(done) >= 3 or done[-1] != "completed":
            return True
        players.append(room.say(user_wav))  # the user asks after the reply, not over it
        return False

    call = run_call(room, tmp_path, on_event=on_event, timeout=75)
    for player in players:
        player.wait(10)
    statuses = [r["status"] for r in call.responses]
    assert statuses == ["completed"] * 3, statuses
    assert call.cancelled_by_speech() == []
    assert len(call.of("input_audio_buffer.speech_started")) == 2  # the user, twice
    assert call.assistant_seconds() >= 20
    # AEC3 rested while the speaker was silent (the user asking) and cancelled again after
    stats = [e for _, e in call.of("rtc_voice.stats")]
    states = [e["echo"] for e in stats]
    assert "resting" in states and "cancelling" in states[states.index("resting") :], states
    assert stats[-1]["echo_rested_s"] > 0


@pytest.mark.timeout(60)
def test_a_real_barge_in_is_still_detected(room: EchoRoom, user_wav: Path, tmp_path: Path) -> None:
    """The user speaks 4 s into the long reply: the server hears it and cancels the reply."""
    spoke_at: list[float] = []
    players: list[subprocess.Popen[bytes]] = []

    def on_event(now: float, event: dict[str, Any], proc: subprocess.Popen[str]) -> bool:
        if event["type"] == "output_audio_buffer.started" and not players:

            def speak() -> None:
                spoke_at.append(time.monotonic() - begun + now)
                players.append(room.say(user_wav))

            begun = time.monotonic()
            timer = threading.Timer(4.0, speak)
            timer.daemon = True
            timer.start()
        return event["type"] == "response.done" and bool(spoke_at)

    call = run_call(room, tmp_path, on_event=on_event, timeout=45)
    for player in players:
        player.wait(10)
    assert spoke_at, "the reply never started"
    cancelled = call.cancelled_by_speech()
    assert len(cancelled) == 1, call.responses
    started = [t for t, _ in call.of("input_audio_buffer.speech_started")]
    assert len(started) == 1 and spoke_at[0] < started[0] < spoke_at[0] + 1.5


@pytest.mark.timeout(60)
def test_without_echo_cancellation_the_reply_interrupts_itself(
    room: EchoRoom, tmp_path: Path
) -> None:
    """--no-aec in the same room: the microphone hears the reply, the server takes it for the
    user and cancels the reply, with nobody speaking."""

    def on_event(now: float, event: dict[str, Any], proc: subprocess.Popen[str]) -> bool:
        return event["type"] == "response.done"

    call = run_call(room, tmp_path, "--no-aec", on_event=on_event, timeout=30)
    assert call.responses and call.responses[0]["status"] == "cancelled"
    assert len(call.cancelled_by_speech()) == 1


@pytest.mark.timeout(60)
def test_devices_echo_test_measures_the_room(room: EchoRoom, tmp_path: Path) -> None:
    """The room's speaker comes back 60 ms later (plus the devices' latencies) at -10 dB, and
    through the reverb: the echo test finds that, and that the canceller removes it."""
    env = {**os.environ, **room.env, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    done = subprocess.run(
        rtc_voice("devices", "--echo-test", "--json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert 60 <= report["delay_ms"] <= 200
    assert -16 <= report["echo_level_db"] <= -6
    assert report["removed_db"] >= 25
    assert report["verdict"].startswith("Your speaker reaches the microphone at -1")
    assert report["verdict"].endswith("fine.")
    text = subprocess.run(
        rtc_voice("devices", "--echo-test"),
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=45,
        stdin=subprocess.DEVNULL,
    )
    assert "Echo delay:" in text.stdout and "Removed by echo cancellation:" in text.stdout
