"""The echo stage on synthesised signals (real AEC3, no devices), the residual gate, the meter,
the far/near timeline, and the audio-path watches fixed with it."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rtc_voice.audio.echo import (
    MAX_FAR_BACKLOG,
    TEN_MS,
    EchoMeter,
    EchoStage,
    ResidualGate,
    WebRtcCanceller,
)
from rtc_voice.audio.pcm import FRAME_SAMPLES, RATE, SILENCE_DBFS, CapturedFrame, Pcm, rms_dbfs
from rtc_voice.audio.tracks import FIRST_FRAME_SECONDS, STALL_SECONDS, MicrophoneTrack
from tests.echo_room import ASSISTANT_VOICE, speech

ASSISTANT = (
    "The old stone bridge was built three hundred years ago by the people of the town, who "
    "carried every stone from the hills. Floods came often, and each time they repaired it."
)
USER = "Wait, wait, I have a question about that, please stop for a moment."


def read(path: Path) -> Pcm:
    with wave.open(str(path)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2").copy()


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pcm, Pcm]:
    folder = tmp_path_factory.mktemp("voices")
    far = read(speech(ASSISTANT, folder / "far.wav", voice=ASSISTANT_VOICE, wpm=170))
    user = read(speech(USER, folder / "user.wav"))
    return far, user


def room_echo(far: Pcm, *, delay_ms: float = 115, level_db: float = -10) -> np.ndarray:
    """A small room: the far end delayed, attenuated, with a decaying reverb tail."""
    rng = np.random.default_rng(7)
    response = np.zeros(RATE // 10)
    response[0] = 1.0
    response += rng.standard_normal(len(response)) * np.exp(-np.arange(len(response)) / 900) * 0.3
    response *= 10 ** (level_db / 20) / np.sqrt(np.sum(response**2))
    wet = np.convolve(far.astype(np.float64), response)[: len(far)]
    delay = int(RATE * delay_ms / 1000)
    return np.concatenate([np.zeros(delay), wet])[: len(far)]


def run(stage: EchoStage, far: Pcm, near: np.ndarray) -> Pcm:
    """Speaker and microphone in step: each 20 ms, what was played, then the microphone."""
    near16 = np.clip(near, -32768, 32767).astype(np.int16)
    out = np.zeros(len(near16) // FRAME_SAMPLES * FRAME_SAMPLES, np.int16)
    for start in range(0, len(out), FRAME_SAMPLES):
        stage.played(far[start : start + FRAME_SAMPLES])
        out[start : start + FRAME_SAMPLES] = stage.process(near16[start : start + FRAME_SAMPLES])
    return out


def open_gate() -> ResidualGate:
    return ResidualGate(attenuation_db=0.0)  # measures the canceller alone


@pytest.mark.timeout(30)
def test_the_canceller_removes_over_25_db_of_room_echo_after_a_second(
    voices: tuple[Pcm, Pcm],
) -> None:
    far, _ = voices
    echo = room_echo(far)
    out = run(EchoStage(WebRtcCanceller(), open_gate()), far, echo)
    after = slice(RATE, len(out))
    removed = rms_dbfs(echo[after].astype(np.int16)) - rms_dbfs(out[after])
    assert removed >= 25, f"only {removed:.1f} dB removed"


def test_the_canceller_is_told_the_stream_delay_only_when_it_changes() -> None:
    """AEC3 keeps the last stream delay it was given; each call to set it is a round trip
    through livekit's FFI, 100 times a second if made per frame."""
    canceller = WebRtcCanceller()
    told: list[int] = []
    set_delay = canceller._apm.set_stream_delay_ms
    canceller._apm.set_stream_delay_ms = lambda ms: (told.append(ms), set_delay(ms))  # type: ignore[method-assign]
    frame = (np.sin(np.arange(TEN_MS) / 7) * 3000).astype(np.int16)
    for delay in [40] * 50 + [44] * 50 + [900] * 3:  # out of range: clamped to 500
        canceller.far(frame)
        assert len(canceller.near(frame // 4, delay)) == TEN_MS
    assert told == [40, 44, 500]


@pytest.mark.timeout(30)
def test_double_talk_keeps_the_user_within_6_db(voices: tuple[Pcm, Pcm]) -> None:
    """The user talks over the assistant 3 s into the call: the whole stage (canceller and
    gate) passes the user's speech at nearly its own level."""
    far, user = voices
    user = (user * 0.7).astype(np.int16)  # about as loud at the microphone as the echo
    near = room_echo(far)
    at = 3 * RATE
    near[at : at + len(user)] += user
    out = run(EchoStage(WebRtcCanceller()), far, near)
    talk = slice(at, at + len(user))
    assert abs(rms_dbfs(out[talk]) - rms_dbfs(user)) <= 6
    echo_only = slice(RATE, at)
    assert rms_dbfs(out[echo_only]) < rms_dbfs(user) - 25  # and the echo around it is gone


def frames(level_dbfs: float) -> Pcm:
    """10 ms of a steady 300 Hz sine at this RMS level."""
    t = np.arange(TEN_MS) / RATE
    return (np.sin(2 * np.pi * 300 * t) * 32767 * np.sqrt(2) * 10 ** (level_dbfs / 20)).astype(
        np.int16
    )


def test_gate_holds_back_quiet_residue_while_the_far_end_plays() -> None:
    gate = ResidualGate(converge_ms=0, attenuation_db=30)
    gate.echo_heard = True
    for _ in range(5):
        gate.far(-15.0)
    residue = frames(-35)  # 20 dB under the far end: echo the canceller left
    gate.apply(residue, rms_dbfs(residue))
    out = gate.apply(residue, rms_dbfs(residue))
    assert rms_dbfs(out) == pytest.approx(-65, abs=1)
    assert gate.closed_frames == 2


def test_gate_lets_a_barge_in_through_at_once_and_holds_open() -> None:
    gate = ResidualGate(converge_ms=0, hold_ms=100)
    gate.echo_heard = True
    for _ in range(5):
        gate.far(-15.0)
    user = frames(-22)  # a user near the microphone: within 10 dB of the assistant
    assert gate.apply(user, rms_dbfs(user)) is user
    pause = frames(-40)  # a short dip between syllables stays open for the hold
    for _ in range(10):
        assert gate.apply(pause, rms_dbfs(pause)) is pause
    gate.apply(pause, rms_dbfs(pause))
    assert gate.gain < 1


def test_gate_is_strict_while_converging_and_open_when_the_far_end_is_silent() -> None:
    gate = ResidualGate(converge_ms=100)
    gate.far(-15.0)
    for _ in range(20):  # a microphone that delivers silence at first uses up no learning time
        gate.heard(-120.0)
    echo = frames(-20)  # unlearned echo, nearly as loud as the far end
    gate.apply(echo, rms_dbfs(echo))
    assert gate.converging and gate.gain < 1
    loud = frames(-12)  # louder than the assistant: a barge-in even now
    gate.apply(loud, rms_dbfs(loud))  # ramps up from closed within this frame
    assert gate.gain == 1 and gate.apply(loud, rms_dbfs(loud)) is loud
    for _ in range(10):
        gate.far(-15.0)
        gate.heard(-20.0)
    gate.echo_heard = True
    assert not gate.converging
    assert gate.apply(echo, rms_dbfs(echo)) is echo  # within the margin after converging
    for _ in range(40):
        gate.far(-120.0)
    quiet = frames(-60)
    assert not gate.far_active and gate.apply(quiet, rms_dbfs(quiet)) is quiet


def test_gate_far_envelope_is_the_loudest_far_frame_of_its_span() -> None:
    """The envelope is kept up to date frame by frame (not recomputed on every read); it must
    equal the loudest of the last span's frames at every step, as the loud ones come and go."""
    rng = np.random.default_rng(7)
    gate = ResidualGate(span_ms=80)  # 8 frames
    assert gate.far_envelope_dbfs == SILENCE_DBFS
    levels: list[float] = []
    for step in range(400):
        level = float(rng.choice([-120.0, -60.0, -30.0, -10.0, rng.uniform(-90, -5)]))
        if step % 50 < 10:
            level = -10.0  # runs of equal loud frames leave the span one by one
        gate.far(level)
        levels.append(level)
        assert gate.far_envelope_dbfs == max(levels[-8:])


def test_meter_reports_energy_removed_once_there_is_enough() -> None:
    meter = EchoMeter()
    before, after = frames(-20), frames(-50)
    for _ in range(24):
        meter.update(before, after)
    assert meter.removed_db is None
    meter.update(before, after)
    assert meter.removed_db == pytest.approx(30, abs=0.5)


class Recording:
    """A canceller that records the order of calls and passes audio through."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def far(self, frame: Pcm) -> None:
        assert len(frame) == TEN_MS
        self.calls.append("far")

    def near(self, frame: Pcm, delay_ms: int) -> Pcm:
        assert len(frame) == TEN_MS
        self.calls.append(f"near@{delay_ms}")
        return frame


def test_every_played_frame_is_fed_before_the_microphone_frame() -> None:
    canceller = Recording()
    stage = EchoStage(canceller)
    stage.played(np.zeros(3 * TEN_MS + 100, np.int16))  # a partial frame waits for the rest
    stage.process(np.zeros(FRAME_SAMPLES, np.int16), delay_ms=42)
    assert canceller.calls == ["far", "far", "far", "near@42", "near@42"]
    stage.played(np.zeros(TEN_MS - 100, np.int16))
    stage.process(np.zeros(TEN_MS, np.int16), delay_ms=42)
    assert canceller.calls[5:] == ["far", "near@42"]


def test_a_burst_of_far_end_keeps_only_the_newest() -> None:
    canceller = Recording()
    stage = EchoStage(canceller)
    stage.played(np.zeros(RATE, np.int16))  # a second at once (a stream's first burst)
    stage.process(np.zeros(TEN_MS, np.int16))
    assert canceller.calls.count("far") == MAX_FAR_BACKLOG // TEN_MS
    assert stage.dropped_far == (RATE - MAX_FAR_BACKLOG) // TEN_MS


class SlowStartSource:
    """A microphone whose first block arrives 2 s after the start (PulseAudio does this)."""

    def __init__(self) -> None:
        self.limits: list[float | None] = []

    async def read(self, stall_after: float | None = None) -> CapturedFrame | None:
        self.limits.append(stall_after)
        if len(self.limits) == 1 and stall_after is not None and stall_after < 2.0:
            await asyncio.sleep(stall_after)
            return None
        return CapturedFrame(np.zeros(FRAME_SAMPLES, np.int16), 0.0)

    def close(self) -> None:
        pass


async def test_a_slow_first_block_is_not_a_stalled_microphone() -> None:
    source = SlowStartSource()
    mic = MicrophoneTrack(source)
    stalls: list[bool] = []
    mic.on_stalled = lambda: stalls.append(True)
    async with asyncio.timeout(10):
        for _ in range(3):
            await mic.recv()
    mic.stop()
    assert stalls == []
    assert source.limits == [FIRST_FRAME_SECONDS, STALL_SECONDS, STALL_SECONDS]


def test_the_silence_watch_listens_to_the_raw_microphone() -> None:
    """Echo cancelled to silence is not a dead microphone."""

    class Source:
        async def read(self, stall_after: Any = None) -> CapturedFrame:
            return CapturedFrame(np.zeros(FRAME_SAMPLES, np.int16), 0.0, raw_dbfs=-30.0)

        def close(self) -> None:
            pass

    mic = MicrophoneTrack(Source())
    silent: list[bool] = []
    mic.on_silent = lambda: silent.append(True)

    async def many() -> None:
        for _ in range(250):  # 5 s of frames
            await mic.recv()

    asyncio.run(many())
    mic.stop()
    assert silent == [] and mic.watch.silent_ms == 0


def test_echo_report_finds_the_delay_and_says_when_there_is_no_echo() -> None:
    from rtc_voice.audio.echo import analyse, test_sound

    sound = test_sound(1.0)
    played = np.concatenate([np.zeros(RATE // 2, np.int16), sound, np.zeros(RATE // 2, np.int16)])
    lead, delay = 480 * 12, 4800  # far end fed 120 ms ahead; the echo takes 100 ms
    raw = np.zeros(len(played), np.int16)
    echo = (sound * 10 ** (-12 / 20)).astype(np.int16)
    at = RATE // 2 - lead + delay
    raw[at : at + len(echo)] = echo
    cleaned = (raw * 10 ** (-40 / 20)).astype(np.int16)
    report = analyse(played, raw, cleaned, lead, RATE // 2, RATE // 2 + len(sound))
    assert report.delay_ms == pytest.approx(100, abs=1)
    assert report.echo_level_db == pytest.approx(-12, abs=1)
    assert report.removed_db == pytest.approx(40, abs=2)
    assert report.verdict.endswith("removes 40 dB: fine.")
    silent = analyse(played, np.zeros_like(raw), np.zeros_like(raw), lead, RATE // 2, RATE)
    assert not silent.heard and "does not hear your speaker" in silent.verdict


def test_the_echo_path_resamples_a_speaker_that_is_not_at_48_khz() -> None:
    """A 44.1 kHz speaker: its played blocks reach the canceller as 48 kHz 10 ms frames, and
    the stream delay is the sum of PortAudio's two latencies."""
    from rtc_voice.audio.echo import EchoPath

    class Speaker:
        rate = 44100
        output_latency_s = 0.030
        tap_enabled = False

        def take_played(self) -> Pcm:
            return np.zeros(441 * 2, np.int16)  # 20 ms at 44.1 kHz

    class Microphone:
        input_latency_s = 0.012
        process: Any = None

    canceller = Recording()
    speaker, microphone = Speaker(), Microphone()
    path = EchoPath(microphone, speaker, EchoStage(canceller))  # type: ignore[arg-type]
    assert speaker.tap_enabled and microphone.process is path
    for _ in range(50):  # one second
        path(np.zeros(FRAME_SAMPLES, np.int16))
    assert 96 <= canceller.calls.count("far") <= 100  # 48 kHz frames, resampler delay aside
    assert canceller.calls[-1] == "near@42"
    path.close()
    assert not speaker.tap_enabled and microphone.process is None


def test_echo_cancellation_on_with_a_file_microphone_is_a_clear_error(tmp_path: Path) -> None:
    from rtc_voice.audio.pcm import silence
    from tests.test_talk import talk, write_wav

    quiet = write_wav(tmp_path / "quiet.wav", silence(500))
    auto = talk(tmp_path, "--local", "--input", str(quiet), "--output", "none", "--say", "hi")
    assert auto.returncode == 0, auto.stderr  # auto: files need no cancelling
    done = talk(
        tmp_path,
        "--local",
        "--input",
        str(quiet),
        "--output",
        "none",
        env={"RTC_VOICE_AUDIO_ECHO_CANCELLATION": "on"},
    )
    assert done.returncode == 10, done.stderr
    assert "Echo cancellation needs a microphone and a speaker device" in done.stderr
    assert "audio.echo_cancellation" in done.stderr and "Traceback" not in done.stderr


class Attenuating(Recording):
    """A canceller that takes 20 dB out of everything, as AEC3 does to echo."""

    def near(self, frame: Pcm, delay_ms: int) -> Pcm:
        super().near(frame, delay_ms)
        return (frame * 0.1).astype(np.int16)


@pytest.mark.parametrize(("canceller", "gated"), [(Recording, False), (Attenuating, True)])
def test_the_gate_acts_only_once_the_canceller_has_removed_echo(
    canceller: type[Recording], gated: bool
) -> None:
    """Headphones: nothing to cancel, so after the first 1.5 s a voice far quieter than the
    assistant goes through. Speakers: the canceller removes echo, and the gate holds back the
    rest."""
    stage = EchoStage(canceller(), ResidualGate(converge_ms=200))
    loud = np.concatenate([frames(-10)] * 2)  # the assistant
    quiet = np.concatenate([frames(-35)] * 2)  # 25 dB under it at the microphone
    for _ in range(50):  # one second
        stage.played(loud)
        out = stage.process(quiet)
    assert stage.gate.echo_heard is gated
    if gated:  # 20 dB by the canceller, then 30 dB by the gate (int16 rounding aside)
        assert rms_dbfs(out) < rms_dbfs(quiet) - 45
    else:
        assert rms_dbfs(out) == pytest.approx(rms_dbfs(quiet), abs=0.5)


# --- AEC3 rests while the speaker is silent ----------------------------------------------------


class Counting(WebRtcCanceller):
    """AEC3, counting the microphone frames it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.near_calls = 0

    def near(self, frame: Pcm, delay_ms: int) -> Pcm:
        self.near_calls += 1
        return super().near(frame, delay_ms)


def noise_at(count: int, dbfs: float) -> np.ndarray:
    return np.random.default_rng(3).standard_normal(count) * 32768 * 10 ** (dbfs / 20)


def replies_with_pauses(voices: tuple[Pcm, Pcm]) -> tuple[Pcm, list[int]]:
    """The assistant three times (whole, 4 s of it, whole) with 3 s pauses; where each starts."""
    far, _ = voices
    pause = np.zeros(3 * RATE, np.int16)
    parts = [pause[:RATE], far, pause, far[: 4 * RATE], pause, far]
    starts = [RATE, RATE + len(far) + len(pause), RATE + len(far) + 4 * RATE + 2 * len(pause)]
    return np.concatenate(parts), starts


@pytest.mark.timeout(60)
@pytest.mark.parametrize("level_db", [-10, -30])
def test_aec3_rests_in_pauses_and_cancels_as_well_when_the_speaker_plays_again(
    voices: tuple[Pcm, Pcm], level_db: float
) -> None:
    """Three replies with pauses between, in a room: resting AEC3 in the pauses (about 2 s of
    each, after the first second of silence) leaves out that much of its work, and each later
    reply's echo is removed from its first second as well as by a canceller that never rested
    (AEC3 alone, within 1 dB; the rest must not shift its far end against the microphone)."""
    far, starts = replies_with_pauses(voices)
    near = room_echo(far, level_db=level_db) + noise_at(len(far), -60)
    outs = []
    for rest in (False, True):
        canceller = Counting()
        stage = EchoStage(canceller, open_gate(), rest_in_silence=rest)
        outs.append(run(stage, far, near))
        worked = stage.near_frames - stage.rested_frames  # plus a frame or two per rest,
        assert worked <= canceller.near_calls <= worked + 2 * 3  # to keep the streams in step
        if rest:  # the lead-in silence (from 1 s) and two pauses (from 1 s after the echo)
            assert 3.5 * 100 <= stage.rested_frames <= 5 * 100
        else:
            assert stage.rested_frames == 0
    for at in starts[1:]:
        first = slice(at, at + RATE)
        echo = near[first].astype(np.int16)
        always, rested = (rms_dbfs(echo) - rms_dbfs(out[first]) for out in outs)
        assert rested >= always - 1.0, (always, rested)


def test_the_microphone_passes_untouched_while_aec3_rests() -> None:
    """The user speaks in a pause: from a second into the pause it is exactly what the
    microphone heard (no canceller, no gate), and AEC3 is given none of it."""
    canceller = Recording()
    stage = EchoStage(canceller, rest_in_silence=True)
    loud, quiet = np.concatenate([frames(-10)] * 2), np.concatenate([frames(-30)] * 2)
    silent = np.zeros(FRAME_SAMPLES, np.int16)
    for _ in range(50):  # a second of the assistant
        stage.played(loud)
        stage.process(quiet)
    outs = []
    for _ in range(100):  # two seconds of pause, the user talking
        stage.played(silent)
        outs.append(stage.process(quiet))
    assert stage.resting
    assert all(np.array_equal(out, quiet) for out in outs[51:])
    # 10 ms frames: a second of the assistant and the pause's first second, then nothing
    assert 198 <= canceller.calls.count("near@0") <= 200


def test_aec3_waits_out_a_long_echo_trip_before_resting() -> None:
    """Devices that take 800 ms to the speaker and back: the rest begins 1.3 s into the
    silence (the trip and a room's reverb), not after 1 s."""
    stage = EchoStage(Recording(), rest_in_silence=True)
    loud = np.concatenate([frames(-10)] * 2)
    silent = np.zeros(FRAME_SAMPLES, np.int16)
    stage.played(loud)
    stage.process(silent, delay_ms=800)
    rested_at = None
    for n in range(100):
        stage.played(silent)
        stage.process(silent, delay_ms=800)
        if stage.resting and rested_at is None:
            rested_at = n
    assert rested_at is not None and 63 <= rested_at <= 66  # 130 frames of 10 ms, 2 a step
