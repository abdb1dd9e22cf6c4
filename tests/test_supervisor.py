"""call/supervisor.py: every task is owned and awaited, and a failure anywhere ends the call with
a sentence (real local calls over loopback WebRTC; faults injected where they really happen)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rtc_voice.app import app
from rtc_voice.audio.pcm import silence
from rtc_voice.audio.tracks import PcmTrack
from rtc_voice.audio.wavfile import WavWriter
from rtc_voice.call.controls import CallSnapshot, Controls, HangUp
from rtc_voice.call.supervisor import CallSupervisor, InternalError, TalkOptions
from rtc_voice.config import load_settings
from rtc_voice.errors import ExitCode
from rtc_voice.ui.plain import LinePresenter

pytestmark = pytest.mark.timeout(60)


def quiet_wav(tmp_path: Path, ms: float = 20_000) -> Path:
    path = tmp_path / "quiet.wav"
    writer = WavWriter(path)
    writer.write(silence(ms))
    writer.close()
    return path


class Recording(LinePresenter):
    """A line presenter that remembers what it was told and can hang up once connected."""

    def __init__(self) -> None:
        super().__init__(out=StringIO(), err=StringIO())
        self.closed_with: list[Any] | None = None
        self.snapshot: Callable[[], CallSnapshot] = CallSnapshot

    def bind(self, controls: Controls, snapshot: Callable[[], CallSnapshot]) -> None:
        super().bind(controls, snapshot)
        self.snapshot = snapshot

    def close(self, turns: Any) -> None:
        self.closed_with = list(turns)

    async def connected(self) -> None:
        while self.snapshot().phase != "connected":  # noqa: ASYNC110 - polling a snapshot
            await asyncio.sleep(0.02)


def supervisor(tmp_path: Path, presenter: Recording, **options: Any) -> CallSupervisor:
    opts = TalkOptions(
        local=True, input=str(quiet_wav(tmp_path)), output="none", max_duration=20, **options
    )
    return CallSupervisor(load_settings(env={}), opts, presenter, api_key=None)


def assert_all_tasks_done(call: CallSupervisor) -> None:
    assert call._tasks == set()  # each removes itself once done: none was left running
    assert call.state.phase == "ended"


async def test_a_failing_screen_ends_the_call_with_a_sentence(tmp_path: Path) -> None:
    class BrokenScreen(Recording):
        async def run(self) -> None:
            await self.connected()
            raise RuntimeError("the renderer fell over")

    presenter = BrokenScreen()
    call = supervisor(tmp_path, presenter)
    code = await call.run()
    assert code == ExitCode.FAILURE
    assert isinstance(call.failure, InternalError)
    assert call.failure.message == (
        "Internal error in the screen: RuntimeError: the renderer fell over"
    )
    assert presenter.closed_with is not None
    assert_all_tasks_done(call)


async def test_a_failing_event_handler_ends_the_call(tmp_path: Path) -> None:
    class BrokenEvents(Recording):
        def event(self, event: Mapping[str, Any], direction: str) -> None:
            if direction == "server" and event["type"] == "response.done":
                raise KeyError("usage")

    call = supervisor(tmp_path, BrokenEvents(), say=("hello",))
    assert await call.run() == ExitCode.FAILURE
    assert call.failure is not None
    assert call.failure.message == "Internal error in the event pump: KeyError: 'usage'"
    assert_all_tasks_done(call)


async def test_a_failing_microphone_track_ends_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiortc would swallow this and stop the track: the microphone would go silent unnoticed
    until --max-duration. Only the microphone's track fails (the one the call hooked): the
    embedded local server's reply track is a PcmTrack too, and failing it instead leaves the
    microphone running until --max-duration."""
    original = PcmTrack._next_frame
    frames = 0

    async def failing(self: PcmTrack) -> Any:
        nonlocal frames
        if self.on_error is not None:
            frames += 1
            if frames == 25:
                raise RuntimeError("the capture buffer is gone")
        return await original(self)

    monkeypatch.setattr(PcmTrack, "_next_frame", failing)
    call = supervisor(tmp_path, Recording())
    assert await call.run() == ExitCode.FAILURE
    assert call.failure is not None
    assert call.failure.message == (
        "Internal error in the microphone: RuntimeError: the capture buffer is gone"
    )
    assert_all_tasks_done(call)


def full_disk(tmp_path: Path) -> Path:
    """A .wav path whose every write fails with ENOSPC, as on a full disk."""
    path = tmp_path / "rec.wav"
    path.symlink_to("/dev/full")
    return path


async def test_a_full_disk_under_the_recording_ends_the_call(tmp_path: Path) -> None:
    call = supervisor(tmp_path, Recording(), record=full_disk(tmp_path))
    assert await call.run() == ExitCode.AUDIO
    assert call.failure is not None
    assert call.failure.message == (
        "Writing the recording or transcript failed: No space left on device."
    )
    assert_all_tasks_done(call)


async def test_hanging_up_awaits_every_task_and_keeps_the_exit_code(tmp_path: Path) -> None:
    class HangsUp(Recording):
        async def run(self) -> None:
            await self.connected()
            self.controls.send(HangUp("you hung up"))
            await asyncio.sleep(3600)  # cancelled on the way out

    call = supervisor(tmp_path, HangsUp())
    assert await call.run() == ExitCode.OK
    assert call.failure is None and call.end_reason == "you hung up"
    assert_all_tasks_done(call)


@pytest.mark.parametrize("debug", [False, True])
def test_the_cli_prints_the_sentence_and_the_traceback_only_with_debug(
    tmp_path: Path, debug: bool
) -> None:
    args = ["--debug"] if debug else []
    result = CliRunner().invoke(
        app,
        [
            *args,
            "talk",
            "--local",
            "--input",
            str(quiet_wav(tmp_path)),
            "--output",
            "none",
            "--record",
            str(full_disk(tmp_path)),
            "--max-duration",
            "20",
        ],
    )
    assert result.exit_code == ExitCode.AUDIO
    out = result.output + result.stderr
    assert "Error: Writing the recording or transcript failed: No space left on device." in out
    assert "Check the disk space" in out
    assert ("Traceback" in out and "OSError: [Errno 28]" in out) is debug


async def test_the_offer_is_made_while_the_key_request_is_in_flight(tmp_path: Path) -> None:
    from rtc_voice.credentials import ApiKey
    from tests.support import Reply, ScriptedServer, openai_error

    seen_while_minting: list[bool] = []

    class Watching(Recording):
        async def run(self) -> None:
            while self.snapshot().phase != "minting":  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            while self.snapshot().phase == "minting":
                offer = call._offer
                seen_while_minting.append(offer is not None and offer.done())
                await asyncio.sleep(0.01)

    with ScriptedServer() as server:
        server.script(
            Reply(200, {"value": "ek_slow", "expires_at": 2**31}, delay=1.0),
            Reply(401, openai_error("Incorrect API key provided: ek_…slow.", "invalid_api_key")),
        )
        settings = load_settings(env={"RTC_VOICE_BASE_URL": server.base_url})
        opts = TalkOptions(input=str(quiet_wav(tmp_path)), output="none")
        call = CallSupervisor(settings, opts, Watching(), api_key=ApiKey("sk-test-key", "env"))
        assert await call.run() == ExitCode.AUTH
    assert seen_while_minting[-1] is True  # the peer and its offer were ready before the key
    assert [r.path for r in server.requests] == [
        "/v1/realtime/client_secrets",
        "/v1/realtime/calls",
    ]
    assert_all_tasks_done(call)


# --- the devices open while the key is minted and the call is created ----------------------


class SpeakerHook:
    """Wraps audio.devices.OutputSink: each open first waits (bounded, on whichever thread opens
    it) until the local server's log shows `waits_for`, noting what the server had seen by
    then; `broken` then opens a device index PortAudio does not have (a real open failure)."""

    def __init__(self, log: list[str], waits_for: str, *, broken: bool = False) -> None:
        self.log, self.waits_for, self.broken = log, waits_for, broken
        self.seen_at_open: list[str] = []
        self.order: list[str] = []  # "opened" and "started", as they happen

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import dataclasses
        import threading
        import time

        from rtc_voice.audio import devices

        hook = self

        class HookedSpeaker(devices.OutputSink):
            def __init__(self, device: Any, **kwargs: Any) -> None:
                deadline = time.monotonic() + 8.0
                while time.monotonic() < deadline and not any(
                    hook.waits_for in line for line in list(hook.log)
                ):
                    threading.Event().wait(0.01)  # not the loop's sleep: this may be any thread
                hook.seen_at_open = list(hook.log)
                if hook.broken:
                    device = dataclasses.replace(device, index=10_000)
                super().__init__(device, **kwargs)
                hook.order.append("opened")

            def start(self) -> None:
                hook.order.append("started")
                super().start()

        monkeypatch.setattr(devices, "OutputSink", HookedSpeaker)


async def _talk_with_devices(
    hook: SpeakerHook, log: list[str], presenter: Recording
) -> tuple[CallSupervisor, ExitCode, Any]:
    from rtc_voice.credentials import ApiKey
    from rtc_voice.localserver import LocalServer

    server = LocalServer(log=log.append)
    await server.start()
    try:
        settings = load_settings(env={"RTC_VOICE_BASE_URL": server.base_url})
        opts = TalkOptions(max_duration=20)  # the default microphone and speaker
        call = CallSupervisor(settings, opts, presenter, api_key=ApiKey("sk-test-key", "env"))
        code = await call.run()
    finally:
        await server.stop()
    return call, code, server


@pytest.mark.audio
async def test_the_key_and_the_call_go_out_while_the_speaker_opens(
    tmp_path: Path, pulse: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening the devices no longer comes before the key request: the speaker's open waits
    here until the server has minted the key and created the call (it would wait in vain if
    the open came first), and media starts only once the speaker is open."""
    log: list[str] = []
    hook = SpeakerHook(log, " started: ")
    hook.install(monkeypatch)

    class HangUpWhenUp(Recording):
        async def run(self) -> None:
            await self.connected()
            while "started" not in hook.order:  # noqa: ASYNC110 - media starts after the open
                await asyncio.sleep(0.02)
            assert self.controls is not None
            self.controls.send(HangUp("test over"))
            await asyncio.sleep(3600)  # cancelled on the way out

    call, code, _ = await _talk_with_devices(hook, log, HangUpWhenUp())
    assert code == ExitCode.OK, call.failure
    minted = [line for line in hook.seen_at_open if line.startswith("minted ek_")]
    created = [line for line in hook.seen_at_open if " started: " in line]
    assert minted and created  # both before the speaker had opened
    assert hook.order == ["opened", "started"]
    assert any("(hung up)" in line for line in log)
    assert_all_tasks_done(call)


@pytest.mark.audio
async def test_a_speaker_failing_after_the_call_was_created_hangs_it_up(
    tmp_path: Path, pulse: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The speaker fails to open once the key is minted and the call created: the same sentence
    and exit code as a speaker failing first, the created call hung up, nothing left open."""
    log: list[str] = []
    hook = SpeakerHook(log, " started: ", broken=True)
    hook.install(monkeypatch)
    presenter = Recording()
    call, code, server = await _talk_with_devices(hook, log, presenter)
    assert code == ExitCode.AUDIO
    assert call.failure is not None
    assert call.failure.message.startswith("Cannot open speaker ")
    assert "rtc-voice devices --probe" in (call.failure.hint or "")
    assert any(" started: " in line for line in hook.seen_at_open)  # the call existed
    assert any("(hung up)" in line for line in log)  # and was hung up
    assert server.calls == {}
    assert call.mic is not None and call.mic.track.readyState == "ended"
    assert call.mic.track.source._closed  # the microphone stream opened alongside is closed
    assert "started" not in hook.order  # media never started
    assert_all_tasks_done(call)


# --- what the talk path loads, and how ----------------------------------------------------

BLAS_THREADS = """
import ctypes, json, os
from rtc_voice.call.supervisor import _import_media
_import_media()
lib = next(line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line)
blas = ctypes.CDLL(lib)
get = None
for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
             "openblas_get_num_threads"):
    if hasattr(blas, name):
        get = getattr(blas, name)
        break
print(json.dumps([get(), os.environ.get("OPENBLAS_NUM_THREADS")]))
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: OpenBLAS starts no threads")
@pytest.mark.parametrize(("user_value", "threads"), [(None, 1), ("2", 2)])
def test_the_media_stack_loads_numpy_with_one_blas_thread(
    user_value: str | None, threads: int
) -> None:
    """numpy's OpenBLAS would start a spinning thread per core while the call connects: talk
    loads it with one, unless the user set OPENBLAS_NUM_THREADS (then theirs holds); either way
    the environment children inherit is the user's own."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if user_value is not None:
        env["OPENBLAS_NUM_THREADS"] = user_value
    out = subprocess.run(
        [sys.executable, "-c", BLAS_THREADS],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert json.loads(out) == [threads, user_value]


class HangUpAfterSomeAudio(Recording):
    """Hangs up once the speaker has taken 10 writes (`writes`, filled by a watched speaker):
    the reply is playing."""

    def __init__(self, writes: list[Any]) -> None:
        super().__init__()
        self.writes = writes

    async def run(self) -> None:
        await self.connected()
        while len(self.writes) < 10:  # noqa: ASYNC110 - the reply playing
            await asyncio.sleep(0.02)
        assert self.controls is not None
        self.controls.send(HangUp("test over"))
        await asyncio.sleep(3600)  # cancelled on the way out


@pytest.mark.audio
async def test_echo_cancellation_is_set_up_after_media_starts_and_before_anything_plays(
    tmp_path: Path, pulse: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading livekit and AEC3 no longer comes before the call is up: here the canceller is
    made only once the assistant's first audio has arrived (it would wait in vain if media
    waited for it), and still nothing reaches the speaker before echo cancellation is on;
    what arrived meanwhile plays after."""
    import threading
    import time

    from rtc_voice.audio import devices, echo
    from rtc_voice.credentials import ApiKey
    from rtc_voice.localserver import LocalServer

    calls: list[CallSupervisor] = []
    made: list[bool] = []  # per canceller: did the reply's audio arrive before it was made
    writes: list[bool] = []  # per speaker write: was echo cancellation on

    class SlowCanceller(echo.WebRtcCanceller):
        def __init__(self, **kwargs: Any) -> None:
            deadline = time.monotonic() + 8.0
            while time.monotonic() < deadline and not getattr(calls[0], "_far_held", None):
                threading.Event().wait(0.01)  # a worker thread: not the loop's sleep
            made.append(bool(getattr(calls[0], "_far_held", None)))
            super().__init__(**kwargs)

    class WatchedSpeaker(devices.OutputSink):
        def write(self, samples: Any) -> None:
            writes.append(calls[0].echo is not None)
            super().write(samples)

    monkeypatch.setattr(echo, "WebRtcCanceller", SlowCanceller)
    monkeypatch.setattr(devices, "OutputSink", WatchedSpeaker)

    server = LocalServer()
    await server.start()
    try:
        settings = load_settings(env={"RTC_VOICE_BASE_URL": server.base_url})
        opts = TalkOptions(max_duration=20, say=("Hello there, how are you today?",))
        call = CallSupervisor(
            settings, opts, HangUpAfterSomeAudio(writes), api_key=ApiKey("sk-test-key", "env")
        )
        calls.append(call)
        code = await call.run()
    finally:
        await server.stop()
    assert code == ExitCode.OK, call.failure
    assert made == [True]  # media ran, and the reply arrived, while AEC3 was being set up
    assert len(writes) >= 10 and all(writes)  # played, and only with echo cancellation on
    assert call.echo is not None and call.echo.stage.far_frames > 0  # it heard what played
    assert_all_tasks_done(call)


class _NoLivekit:
    """Stands in for echo.WebRtcCanceller when livekit cannot load (its real error)."""

    def __init__(self, **kwargs: Any) -> None:
        from rtc_voice.audio.echo import NO_LIVEKIT_HINT
        from rtc_voice.errors import AudioError

        raise AudioError(
            "Echo cancellation is unavailable: the livekit package cannot be loaded "
            "(No module named 'livekit').",
            hint=NO_LIVEKIT_HINT,
        )


@pytest.mark.audio
@pytest.mark.parametrize("mode", ["on", "auto"])
async def test_echo_cancellation_that_cannot_load_once_media_runs(
    mode: str, tmp_path: Path, pulse: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """livekit missing, found out now after media starts: "on" still ends the call with the
    same sentence and exit code (the call hung up, nothing left open); "auto" says echo
    cancellation is off and the call goes on, its audio playing."""
    from rtc_voice.audio import devices, echo
    from rtc_voice.credentials import ApiKey
    from rtc_voice.localserver import LocalServer

    writes: list[int] = []

    class CountedSpeaker(devices.OutputSink):
        def write(self, samples: Any) -> None:
            writes.append(len(samples))
            super().write(samples)

    monkeypatch.setattr(echo, "WebRtcCanceller", _NoLivekit)
    monkeypatch.setattr(devices, "OutputSink", CountedSpeaker)

    log: list[str] = []
    server = LocalServer(log=log.append)
    await server.start()
    presenter = HangUpAfterSomeAudio(writes)
    try:
        settings = load_settings(
            env={"RTC_VOICE_BASE_URL": server.base_url}, flags={"echo_cancellation": mode}
        )
        opts = TalkOptions(max_duration=20, say=("Hello there, how are you today?",))
        call = CallSupervisor(settings, opts, presenter, api_key=ApiKey("sk-test-key", "env"))
        code = await call.run()
    finally:
        await server.stop()
    assert call.echo is None
    if mode == "on":
        assert code == ExitCode.AUDIO
        assert call.failure is not None
        assert call.failure.message.startswith("Echo cancellation is unavailable")
        assert any("(hung up)" in line for line in log)
        assert server.calls == {}
        assert writes == []  # nothing played without the echo cancellation asked for
    else:
        assert code == ExitCode.OK, call.failure
        assert len(writes) >= 10
        assert "Echo cancellation is off for this call." in presenter.err.getvalue()
    assert_all_tasks_done(call)
