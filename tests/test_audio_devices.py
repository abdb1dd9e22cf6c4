"""Real PortAudio streams on the private PulseAudio daemon the test run starts (tests/pulse.py).

In CI these must run: a missing virtual device is a failure there, not a skip.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rtc_voice.app import app
from rtc_voice.audio import devices as audio
from rtc_voice.audio.devices import _StreamResampler
from rtc_voice.audio.pcm import FRAME_SAMPLES, RATE, rms_dbfs, tone
from rtc_voice.audio.tracks import MicrophoneTrack
from rtc_voice.errors import AudioError
from tests.pulse import PrivatePulse
from tests.test_audio_units import peak_hz

pytestmark = pytest.mark.audio


@pytest.fixture(scope="module", autouse=True)
def virtual_audio(pulse: PrivatePulse) -> None:
    problem = None
    try:
        found = audio.list_devices()
        if not found:
            problem = problem or "PortAudio lists no devices"
        else:
            result = audio.probe(audio.select(None, "output", found), "output", RATE)
            if not result.ok:
                problem = problem or f"the default speaker cannot open: {result.error}"
    except AudioError as exc:
        problem = problem or exc.message
    if problem:
        message = f"virtual audio devices are missing ({problem}); run .ci/audio-setup"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


async def feed_in_real_time(sink: audio.OutputSink, samples: np.ndarray) -> None:
    """Like aiortc delivering 20 ms frames: on an absolute schedule, not drifting sleeps."""
    start = time.monotonic()
    for n, i in enumerate(range(0, len(samples), FRAME_SAMPLES)):
        sink.write(samples[i : i + FRAME_SAMPLES])
        await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))


async def test_speaker_tone_comes_back_from_the_monitor_microphone() -> None:
    found = audio.list_devices()
    sink = audio.OutputSink(audio.select(None, "output", found))
    source = audio.InputSource(audio.select(None, "input", found))
    mic = MicrophoneTrack(source)
    sink.start()
    source.start()
    try:
        async with asyncio.timeout(5):
            await sink.wait_running()
        player = asyncio.ensure_future(feed_in_real_time(sink, tone(1000, 1500, dbfs=-20)))
        frames, pts = [], []
        async with asyncio.timeout(10):
            for _ in range(90):
                frame = await mic.recv()
                frames.append(frame.to_ndarray().reshape(-1))
                pts.append(frame.pts)
        await player
        assert pts == [n * FRAME_SAMPLES for n in range(90)]  # monotonic, 20 ms apart
        assert all(len(f) == FRAME_SAMPLES for f in frames)
        recorded = np.concatenate(frames)
        loud = recorded[np.abs(recorded) > 1000]
        assert len(loud) > RATE * 0.8, "the tone did not come back"
        start = int(np.argmax(np.abs(recorded) > 1000))
        middle = recorded[start + 4800 : start + 4800 + RATE // 2]
        assert peak_hz(middle) == pytest.approx(1000, abs=3)
        assert rms_dbfs(middle) == pytest.approx(-20, abs=2)
        assert sink.underruns == 0 and source.dropped_frames == 0
        assert sink.played_ms == pytest.approx(1500, abs=40)
    finally:
        mic.stop()
        sink.close()


async def test_mute_sends_silence_and_flush_drops_the_buffer() -> None:
    found = audio.list_devices()
    source = audio.InputSource(audio.select(None, "input", found))
    mic = MicrophoneTrack(source)
    mic.muted = True
    source.start()
    sink = audio.OutputSink(audio.select(None, "output", found))
    sink.start()
    try:
        async with asyncio.timeout(5):
            await sink.wait_running()
        sink.write(tone(440, 100))
        assert sink.depth_ms == pytest.approx(100, abs=20)  # the callback may have taken some
        assert sink.flush() == pytest.approx(100, abs=20)
        assert sink.depth_ms == 0
        async with asyncio.timeout(5):
            frames = [await mic.recv() for _ in range(5)]
        assert all(not f.to_ndarray().any() for f in frames)
        assert [f.pts for f in frames] == [0, 960, 1920, 2880, 3840]
    finally:
        mic.stop()
        sink.close()


async def test_audio_that_piles_up_comes_back_down() -> None:
    sink = audio.OutputSink(audio.select(None, "output"))
    sink.start()
    try:
        async with asyncio.timeout(5):
            await sink.wait_running()
        sink.write(np.zeros(RATE // 10, np.int16))  # a hiccup: 100 ms arrive at once
        depths: list[float] = []
        start = time.monotonic()
        async with asyncio.timeout(10):
            for n in range(175):  # 3.5 s in real time
                sink.write(np.zeros(FRAME_SAMPLES, np.int16))
                depths.append(sink.depth_ms)
                await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))
        assert max(depths[:10]) >= 100
        assert max(depths[-25:]) <= 50  # floor + frame + callback block, with room
        assert sink.playout.shed_quiet > 0 and sink.underruns == 0
    finally:
        sink.close()


async def test_audio_written_before_the_speaker_runs_does_not_pile_up() -> None:
    sink = audio.OutputSink(audio.select(None, "output"))
    sink.start()  # and feed at once, as `talk` does
    try:
        start = time.monotonic()
        depth_when_running = None
        async with asyncio.timeout(10):
            for n in range(500):
                sink.write(np.zeros(FRAME_SAMPLES, np.int16))
                if sink._running.is_set():
                    depth_when_running = sink.depth_ms
                    break
                await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))
        assert depth_when_running is not None, "the speaker never ran"
        assert depth_when_running <= 30 + 20
    finally:
        sink.close()


def test_stream_resampler_is_continuous_across_blocks() -> None:
    resampler = _StreamResampler(44100, RATE)
    src = tone(440, 1000, dbfs=-12, rate=44100)
    out = np.concatenate([resampler(src[i : i + 882]) for i in range(0, len(src), 882)])
    body = out[4800:-4800].astype(np.int32)
    assert peak_hz(out[4800:-4800]) == pytest.approx(440, abs=2)
    assert np.max(np.abs(np.diff(body))) < 800  # no clicks at block edges (sine step ~ 400)


def test_devices_json_lists_and_selects(runner: CliRunner) -> None:
    result = runner.invoke(app, ["devices", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    names = [d["name"] for d in data["devices"]]
    assert "default" in names and "pulse" in names
    assert data["selected"]["input"] is not None and data["selected"]["output"] is not None
    assert data["probe"] is None


def test_devices_loads_portaudio_and_nothing_heavy() -> None:
    """`devices` should cost little more than PortAudio's own query: no numpy, no asyncio."""
    code = (
        "import sys\n"
        "from rtc_voice.app import app\n"
        "try:\n    app(['devices', '--json'], prog_name='rtc-voice')\n"
        "except SystemExit:\n    pass\n"
        "heavy = {'aiortc', 'av', 'numpy', 'asyncio', 'httpx', 'keyring', 'aiohttp', 'pydantic'}\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(heavy & loaded), 'sounddevice' in loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert '"devices"' in out.stdout  # it really listed them
    assert out.stdout.strip().splitlines()[-1] == "[] True"


def test_devices_loads_none_of_talks_machinery() -> None:
    """Reading settings for `devices` loads neither the tool declarations nor the call's
    modules: only the command that runs is built, and settings need no tool machinery."""
    code = (
        "import sys\n"
        "from rtc_voice.app import main\n"
        "sys.argv = ['rtc-voice', 'devices']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "watched = ('rtc_voice.tools', 'rtc_voice.call', 'rtc_voice.protocol.server')\n"
        "print(sorted(m for m in sys.modules if m.startswith(watched)))\n"
    )
    env = {**os.environ, "COLUMNS": "120"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    assert "Audio devices" in out.stdout and "Microphone: #" in out.stdout  # it listed them
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_devices_probe_reports_every_device_openable(runner: CliRunner) -> None:
    result = runner.invoke(app, ["devices", "--probe", "--json"])
    assert result.exit_code == 0, result.output
    probe = json.loads(result.stdout)["probe"]
    assert {(p["kind"], p["rate"]) for p in probe} >= {("input", 48000), ("output", 48000)}
    assert all(p["ok"] for p in probe), probe
    table = runner.invoke(app, ["devices", "--probe"], env={"COLUMNS": "120"})
    assert "Probe (mono, really opened)" in table.stdout and "Microphone: #" in table.stdout


def test_selection_errors_against_real_devices(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(AudioError, match="No audio device matches 'theremin'") as info:
        audio.select("theremin", "input")
    assert "default" in (info.value.hint or "")
    monkeypatch.setenv("RTC_VOICE_AUDIO_INPUT_DEVICE", "theremin")
    result = runner.invoke(app, ["devices"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Microphone: No audio device matches 'theremin'" in result.stdout


async def test_a_microphone_that_stops_is_reported_once_and_timing_goes_on() -> None:
    source = audio.InputSource(audio.select(None, "input"))
    mic = MicrophoneTrack(source)
    stalls: list[bool] = []
    mic.on_stalled = lambda: stalls.append(True)
    source.start()
    try:
        async with asyncio.timeout(10):
            await mic.recv()
            source._stream.stop()  # what an unplugged device looks like to us: no callbacks
            await asyncio.sleep(0.1)  # blocks already handed to the loop land first
            source._frames.clear()
            frames = [await mic.recv() for _ in range(3)]
        assert stalls == [True]
        assert [f.pts for f in frames] == [960, 1920, 2880]
        assert all(not f.to_ndarray().any() for f in frames)
    finally:
        mic.stop()


async def test_trimming_in_write_never_corrupts_a_block_being_played() -> None:
    """The callback fills PortAudio's buffer while `write` trims the ring from the loop's
    thread; no block may come out torn. Samples carry their own position, so each played block
    must count up by one."""
    import threading
    from types import SimpleNamespace

    sink = audio.OutputSink(audio.select(None, "output"), prime_ms=10, max_ms=20)
    status = SimpleNamespace(output_underflow=False)
    info = SimpleNamespace(outputBufferDacTime=0.0, currentTime=0.0)
    bad: list[np.ndarray] = []
    stop = threading.Event()

    def device() -> None:  # a fake PortAudio thread pulling 10 ms blocks
        while not stop.is_set():
            out = bytearray(480 * 2)  # what the raw stream hands the callback: int16 bytes
            sink._callback(out, 480, info, status)
            block = np.frombuffer(out, np.int16).astype(np.int32)
            time.sleep(0.0005)
            nonzero = block[block != 0]
            if len(nonzero) > 1 and np.any(np.diff(nonzero) % 30000 != 1):
                bad.append(block)

    thread = threading.Thread(target=device, daemon=True)
    thread.start()
    try:
        counter = 1
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not bad:
            chunk = (np.arange(counter, counter + 720) - 1) % 30000 + 1
            counter += 720
            sink.write(chunk.astype(np.int16))  # faster than real time: trims every time
            time.sleep(0.0002)  # noqa: ASYNC251 (the writer must not yield to the loop)
    finally:
        stop.set()
        thread.join(5)
        sink.close()
    assert sink.trimmed_samples > 0
    assert not bad, f"{len(bad)} played blocks were overwritten while being copied out"


async def test_a_speaker_that_stops_is_reported_once() -> None:
    sink = audio.OutputSink(audio.select(None, "output"))
    stalls: list[bool] = []
    reported = asyncio.Event()
    sink.on_stalled = lambda: (stalls.append(True), reported.set())
    sink.start()
    try:
        started = time.monotonic()
        assert sink.check_running(started + 2.0)  # a slow start is not a stop
        async with asyncio.timeout(5):
            await sink.wait_running()
        for _ in range(10):
            sink.write(tone(440, 20))
            await asyncio.sleep(0.02)
        assert stalls == []
        sink._stream.abort()  # what an unplugged device looks like to us: the stream ends
        async with asyncio.timeout(5):
            await reported.wait()
        await asyncio.sleep(1.2)
        sink.write(tone(440, 20))  # no callbacks for over a second: already reported
        assert stalls == [True] and not sink.check_running()
    finally:
        sink.close()


async def test_a_speaker_without_callbacks_is_noticed_by_the_watch() -> None:
    sink = audio.OutputSink(audio.select(None, "output"))
    stalls: list[bool] = []
    sink.on_stalled = lambda: stalls.append(True)
    sink.start()
    try:
        async with asyncio.timeout(5):
            await sink.wait_running()
        now = time.monotonic()
        assert sink.check_running(now)
        assert not sink.check_running(now + 1.5)  # as if callbacks had stopped
        assert stalls == [True]
    finally:
        sink.close()


def test_alsa_error_messages_do_not_reach_stderr() -> None:
    """ALSA prints errors (mid-call: 'underrun occurred') through its handler to stderr; once
    rtc-voice has loaded PortAudio that handler prints nothing. An unknown PCM name makes real
    libasound report an error through the same path."""
    import subprocess
    import sys

    code = (
        "import ctypes, sys\n"
        "from rtc_voice.audio.devices import sounddevice\n"
        "if sys.argv[1] == 'loaded':\n    sounddevice()\n"
        "lib = ctypes.CDLL('libasound.so.2')\n"
        "pcm = ctypes.c_void_p()\n"
        "rc = lib.snd_pcm_open(ctypes.byref(pcm), b'rtc_voice_no_such_pcm', 0, 0)\n"
        "print(rc)\n"
    )
    runs = {
        mode: subprocess.run(
            [sys.executable, "-c", code, mode], capture_output=True, text=True, timeout=60
        )
        for mode in ("bare", "loaded")
    }
    for done in runs.values():
        assert int(done.stdout) < 0, done.stderr  # the open really failed in ALSA
    assert "ALSA lib" in runs["bare"].stderr  # what a user saw before
    assert "ALSA lib" not in runs["loaded"].stderr


QUIET_WINDOWS = """
import os, sys, threading
from rtc_voice.audio.catalog import quiet_stderr

def other_thread():
    print("a warning from another thread", file=sys.stderr, flush=True)

with quiet_stderr():
    os.write(2, b"ALSA lib pcm.c:2664:(snd_pcm_open_noupdate) Unknown PCM cards.pcm.rear\\n")
    os.write(2, b"Expression 'ret' failed in 'src/hostapi/alsa/pa_linux_alsa.c', line: 1736\\n")
    os.write(2, b"Cannot connect to server socket err = No such file or directory\\n")
    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()
    os.write(2, b"JackShmReadWritePtr::~JackShmReadWritePtr - Init not done for -1\\n")

# two threads' windows overlapping: the first closes while the second is open
first_open, second_open, first_closed = threading.Event(), threading.Event(), threading.Event()

def second():
    first_open.wait()
    with quiet_stderr():
        second_open.set()
        first_closed.wait()
        os.write(2, b"ALSA lib conf.c:5180:(snd_config_expand) Evaluate error\\n")
        print("written while the second window was open", file=sys.stderr, flush=True)

worker = threading.Thread(target=second)
worker.start()
with quiet_stderr():
    first_open.set()
    second_open.wait()
first_closed.set()
worker.join()
print("after every window", file=sys.stderr, flush=True)

# stderr moved between windows (as pytest's capture does): a window passes lines on to the
# stderr of its time and puts that one back
moved = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.dup2(moved, 2)
with quiet_stderr():
    os.write(2, b"ALSA lib pulse.c:242:(pulse_connect) PulseAudio: Unable to connect\\n")
    os.write(2, b"to the moved stderr, in a window\\n")
print("to the moved stderr, after", file=sys.stderr, flush=True)
"""


@pytest.mark.timeout(30)
def test_quiet_stderr_drops_portaudios_noise_and_nothing_else(tmp_path: Path) -> None:
    """PortAudio loads and lists devices on a worker thread inside `quiet_stderr` while other
    threads go on: their stderr must get through, ALSA's, PortAudio's and JACK's must not, and
    windows on two threads at once must leave stderr working."""
    moved = tmp_path / "moved-stderr"
    moved.touch()
    out = subprocess.run(
        [sys.executable, "-c", QUIET_WINDOWS, str(moved)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == [  # in order: a window passes its lines on as it closes
        "a warning from another thread",
        "written while the second window was open",
        "after every window",
    ]
    assert moved.read_text().splitlines() == [
        "to the moved stderr, in a window",
        "to the moved stderr, after",
    ]
