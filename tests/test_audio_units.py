"""Pure audio parts: ring buffer, levels, downmix, resampling, framing, WAV files, selection."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from rtc_voice.audio.devices import Device, select
from rtc_voice.audio.pcm import RATE, SILENCE_DBFS, Ring, resample, rms_dbfs, silence, to_mono, tone
from rtc_voice.audio.tracks import PcmTrack, SilenceWatch
from rtc_voice.audio.wavfile import EncodedWriter, WavWriter, open_writer, read_audio
from rtc_voice.errors import AudioError, ExitCode


def peak_hz(samples: np.ndarray, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def test_ring_fifo_wraps_and_counts_overflow() -> None:
    ring = Ring(8)
    ring.write(np.arange(1, 6, dtype=np.int16))
    out = np.zeros(3, np.int16)
    assert ring.read_into(out) == 3 and out.tolist() == [1, 2, 3]
    ring.write(np.arange(6, 12, dtype=np.int16))  # wraps; 8 would fit, we hold 2 + 6 = 8
    assert len(ring) == 8 and ring.dropped == 0
    ring.write(np.array([12, 13], np.int16))  # drops the two oldest
    assert ring.dropped == 2
    out = np.zeros(10, np.int16)
    assert ring.read_into(out) == 8
    assert out[:8].tolist() == [6, 7, 8, 9, 10, 11, 12, 13]
    ring.write(np.arange(20, dtype=np.int16))  # more than capacity: keeps the newest 8
    assert ring.read_into(out) == 8 and out[:8].tolist() == list(range(12, 20))
    ring.write(np.ones(3, np.int16))
    assert ring.clear() == 3 and len(ring) == 0


def test_levels() -> None:
    assert rms_dbfs(np.zeros(960, np.int16)) == SILENCE_DBFS
    assert rms_dbfs(np.zeros(0, np.int16)) == SILENCE_DBFS
    assert rms_dbfs(tone(440, 100, dbfs=-20)) == pytest.approx(-20, abs=0.3)
    full = np.full(960, 32767, np.int16)
    assert rms_dbfs(full) == pytest.approx(0, abs=0.01)


def test_downmix_averages_channels() -> None:
    stereo = np.array([100, 300, -50, 50, 32767, 32767], np.int16)
    assert to_mono(stereo, 2).tolist() == [200, 0, 32767]
    mono = np.array([1, 2, 3], np.int16)
    assert to_mono(mono, 1).tolist() == [1, 2, 3]


def test_downmix_of_two_channels_is_the_floor_of_the_mean_at_full_scale() -> None:
    """Stereo (every decoded Opus frame) takes its own fast path; it must give exactly the
    integer mean, rounded down, that any other channel count gets, extremes included."""
    rng = np.random.default_rng(3)
    stereo = rng.integers(-32768, 32768, 2 * 960).astype(np.int16)
    stereo[:4] = [-32768, -32768, 32767, -32768]
    expected = stereo.reshape(-1, 2).astype(np.int64).sum(axis=1) // 2
    assert to_mono(stereo, 2).tolist() == expected.tolist()
    assert to_mono(stereo.reshape(1, -1), 2).tolist() == expected.tolist()  # as decoders give it


@pytest.mark.parametrize("rate_in", [8000, 16000, 22050, 24000, 44100])
def test_resampling_keeps_frequency_level_and_duration(rate_in: int) -> None:
    src = tone(700, 500, dbfs=-12, rate=rate_in)
    out = resample(src, rate_in)
    assert abs(len(out) - RATE // 2) < RATE * 0.01
    assert peak_hz(out[2000:-2000]) == pytest.approx(700, abs=3)
    assert rms_dbfs(out[2000:-2000]) == pytest.approx(-12, abs=0.5)


def test_silence_watch_trips_once_and_rearms() -> None:
    watch = SilenceWatch(after_ms=100)
    assert [watch.feed(-120, 20) for _ in range(5)] == [False] * 4 + [True]
    assert watch.feed(-120, 20) is False  # only once
    watch.feed(-30, 20)
    assert [watch.feed(-95, 20) for _ in range(5)][-1] is True


async def test_pcm_track_frames_timing_and_drain() -> None:
    drained: list[bool] = []
    track = PcmTrack(on_drained=lambda: drained.append(True))
    track.play(tone(440, 50))
    frames = [await track.recv() for _ in range(4)]
    assert [f.pts for f in frames] == [0, 960, 1920, 2880]
    assert all(f.samples == 960 and f.sample_rate == RATE for f in frames)
    assert drained == [True] and track.played_ms == 50
    assert rms_dbfs(frames[3].to_ndarray().reshape(-1)) == SILENCE_DBFS
    track.play(tone(440, 100))
    track.muted = True
    assert rms_dbfs((await track.recv()).to_ndarray().reshape(-1)) == SILENCE_DBFS
    track.clear()
    assert not track.playing


def write_wav(path: Path, samples: bytes, *, rate: int, channels: int, width: int) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(samples)
    return path


@pytest.mark.parametrize(
    ("width", "channels", "rate"), [(2, 2, 44100), (1, 1, 8000), (3, 1, 16000), (4, 2, 48000)]
)
def test_read_wav_any_format_to_48k_mono(
    tmp_path: Path, width: int, channels: int, rate: int
) -> None:
    base = tone(500, 400, dbfs=-10, rate=rate).astype(np.int32)
    if width == 1:
        raw = ((base >> 8) + 128).astype(np.uint8).tobytes()
    elif width == 3:
        wide = (base << 8).astype("<i4").tobytes()
        raw = b"".join(wide[i : i + 3] for i in range(0, len(wide), 4))  # low 3 bytes
    elif width == 4:
        raw = (base << 16).astype("<i4").tobytes()
    else:
        raw = base.astype("<i2").tobytes()
    if channels == 2:
        step = width
        frames = [raw[i : i + step] for i in range(0, len(raw), step)]
        raw = b"".join(f + f for f in frames)
    path = write_wav(tmp_path / "in.wav", raw, rate=rate, channels=channels, width=width)
    pcm = read_audio(path)
    assert abs(len(pcm) - int(RATE * 0.4)) < RATE * 0.01
    assert peak_hz(pcm[1000:-1000]) == pytest.approx(500, abs=3)
    assert rms_dbfs(pcm[1000:-1000]) == pytest.approx(-10, abs=0.6)


def test_read_audio_errors(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="does not exist"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "fake.wav").write_text("not a wav at all")
    with pytest.raises(AudioError, match="is not an audio file rtc-voice can read") as info:
        read_audio(tmp_path / "fake.wav")
    assert info.value.exit_code == ExitCode.AUDIO
    with pytest.raises(AudioError, match="is a directory"):
        read_audio(tmp_path)


@pytest.mark.parametrize(
    "sox_args",
    [
        ["-b", "24", "-e", "signed-integer", "-c", "2", "-r", "44100"],  # WAVE_FORMAT_EXTENSIBLE
        ["-b", "32", "-e", "signed-integer", "-c", "1", "-r", "16000"],
        ["-b", "32", "-e", "floating-point", "-c", "1", "-r", "48000"],
        ["-b", "24", "-c", "1", "-r", "22050", "FLAC"],
    ],
    ids=["24-bit-extensible", "32-bit", "float", "flac"],
)
def test_read_audio_reads_what_sox_writes(tmp_path: Path, sox_args: list[str]) -> None:
    import shutil
    import subprocess

    if shutil.which("sox") is None:
        pytest.skip("sox is not installed (.ci/audio-setup installs it)")
    *args, kind = sox_args if sox_args[-1] == "FLAC" else [*sox_args, "WAV"]
    path = tmp_path / ("in.flac" if kind == "FLAC" else "in.wav")
    subprocess.run(
        ["sox", "-n", *args, str(path), "synth", "0.4", "sine", "500", "vol", "0.3"],
        check=True,
        timeout=30,
    )
    pcm = read_audio(path)
    assert abs(len(pcm) - int(RATE * 0.4)) < RATE * 0.01
    assert peak_hz(pcm[1000:-1000]) == pytest.approx(500, abs=3)
    assert rms_dbfs(pcm[1000:-1000]) == pytest.approx(-13.5, abs=1.0)  # 0.3 of full scale


@pytest.mark.parametrize("suffix", [".flac", ".mp3", ".ogg", ".opus"])
def test_encoded_files_round_trip_by_extension(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"out{suffix}"
    writer = open_writer(path, channels=2)
    assert isinstance(writer, EncodedWriter)
    left = tone(500, 500, dbfs=-10)
    stereo = np.empty(len(left) * 2, np.int16)
    stereo[0::2], stereo[1::2] = left, 0
    for start in range(0, len(stereo), 1920):  # 20 ms frames, as a call writes them
        writer.write(stereo[start : start + 1920])
    writer.close()
    assert path.stat().st_mode & 0o777 == 0o600
    pcm = read_audio(path)  # mono mix of left and silent right: about 6 dB lower
    assert abs(len(pcm) - RATE // 2) < RATE * 0.05
    middle = pcm[len(pcm) // 4 : -len(pcm) // 4]
    assert peak_hz(middle) == pytest.approx(500, abs=5)
    assert rms_dbfs(middle) == pytest.approx(-16, abs=1.5)


def test_an_unknown_extension_is_refused_with_the_formats(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"Cannot tell which audio format") as info:
        open_writer(tmp_path / "call.xyz")
    assert info.value.hint is not None and ".flac" in info.value.hint
    assert not (tmp_path / "call.xyz").exists()


def test_wav_writer_is_private_and_readable_while_open(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    writer = WavWriter(path, channels=2)
    writer.write(np.zeros(960 * 2, np.int16))
    assert path.stat().st_mode & 0o777 == 0o600
    with wave.open(str(path)) as wav:  # the header is already right before close
        assert (wav.getnframes(), wav.getnchannels(), wav.getframerate()) == (960, 2, RATE)
    writer.write(np.ones(960 * 2, np.int16))
    writer.close()
    with wave.open(str(path)) as wav:
        assert wav.getnframes() == 1920


DEVICES = [
    Device(0, "Built-in Microphone", "Core Audio", 2, 0, 48000, True, False),
    Device(1, "Built-in Output", "Core Audio", 0, 2, 48000, False, True),
    Device(2, "USB Headset", "Core Audio", 1, 2, 44100, False, False),
    Device(3, "USB Mic Pro", "Core Audio", 1, 0, 48000, False, False),
]


def test_select_default_index_and_name() -> None:
    assert select(None, "input", DEVICES).index == 0
    assert select("", "output", DEVICES).index == 1
    assert select("2", "output", DEVICES).index == 2
    assert select(2, "input", DEVICES).index == 2
    assert select("headset", "input", DEVICES).index == 2
    assert select("BUILT-IN out", "output", DEVICES).index == 1
    assert select("usb", "output", DEVICES).index == 2  # only one USB device can play


@pytest.mark.parametrize(
    ("spec", "kind", "fragments"),
    [
        ("usb", "input", ["matches several microphones", "#2 USB Headset", "#3 USB Mic Pro"]),
        ("bluetooth", "input", ["No audio device matches 'bluetooth'", "#0 Built-in Microphone"]),
        ("9", "output", ["no audio device #9", "#1 Built-in Output, #2 USB Headset"]),
        ("Built-in Output", "input", ["output-only device", "cannot be used as a microphone"]),
        ("3", "output", ["input-only device", "cannot be used as a speaker"]),
    ],
)
def test_select_errors_name_what_exists(spec: str, kind: str, fragments: list[str]) -> None:
    with pytest.raises(AudioError) as info:
        select(spec, kind, DEVICES)  # type: ignore[arg-type]
    text = info.value.message + " " + (info.value.hint or "")
    for fragment in fragments:
        assert fragment.casefold() in text.casefold(), text


def test_select_with_no_devices_says_how_to_check() -> None:
    with pytest.raises(AudioError, match="No microphone was found") as info:
        select(None, "input", [DEVICES[1]])
    assert "pactl info" in (info.value.hint or "")


def test_silence_and_tone_are_sized_by_duration() -> None:
    assert len(silence(20)) == 960 and not silence(20).any()
    assert len(tone(440, 20)) == 960 and len(tone(440, 20, rate=16000)) == 320


def test_ring_discard_drops_from_the_front_without_copying() -> None:
    ring = Ring(4)
    ring.write(np.array([1, 2, 3], np.int16))
    assert ring.discard(2) == 2 and len(ring) == 1
    ring.write(np.array([4, 5, 6], np.int16))  # wraps
    assert ring.discard(10) == 4 and len(ring) == 0
    ring.write(np.array([7], np.int16))
    out = np.zeros(1, np.int16)
    assert ring.read_into(out) == 1 and out.tolist() == [7]


def test_missing_pulseaudio_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.pulse import PrivatePulse, PulseUnavailable

    monkeypatch.setenv("PATH", str(tmp_path))  # no pulseaudio, no pactl
    with pytest.raises(PulseUnavailable) as info:
        PrivatePulse.start()
    message = str(info.value)
    assert "pulseaudio and pactl not found" in message
    assert ".ci/audio-setup" in message and "apt-get install pulseaudio" in message
