"""An echo room on its own private PulseAudio daemon: "laptop speakers + laptop microphone"
without a sound card (recipe: the project's echo-room notes).

    speaker (null sink, the client's output) --monitor--> loopback (DELAY ms, LEVEL dB)
        --> high-pass 200 Hz (small speaker) --> small-room reverb --> room (null sink, the air)
    room.monitor = the microphone; the user talks with `EchoRoom.say(wav)` (paplay into room)

A separate daemon from the test run's own, so the run-wide devices stay as they are. Test speech
comes from espeak-ng and sox at test time (`speech()`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.pulse import PrivatePulse, PulseUnavailable

SPEAKER, ROOM = "speaker", "room"
ASSISTANT_VOICE, USER_VOICE = "en-us", "en-gb-x-rp+f3"


class EchoRoom:
    def __init__(self, pulse: PrivatePulse) -> None:
        self.pulse = pulse
        self.env = pulse.env
        self._loopback: int | None = None

    @classmethod
    def start(cls, delay_ms: int = 60, level_db: float = -10.0) -> EchoRoom:
        """A fresh daemon with the room built; raise PulseUnavailable if any piece is missing."""
        if not Path("/usr/lib/ladspa/gverb_1216.so").exists():
            raise PulseUnavailable("the LADSPA filters are missing (swh-plugins; .ci/audio-setup)")
        pulse = PrivatePulse.start(
            Path(tempfile.mkdtemp(prefix="rtc-voice-room-")), null_sink=False
        )
        room = cls(pulse)
        try:
            for name in (SPEAKER, ROOM):
                pulse.load_module(
                    "module-null-sink",
                    f"sink_name={name}",
                    "rate=48000",
                    "channels=1",
                    f"sink_properties=device.description={name}",
                )
            pulse.load_module(
                "module-ladspa-sink",
                "sink_name=echoverb",
                f"sink_master={ROOM}",
                "channels=2",  # gverb: one input, two outputs
                "plugin=gverb_1216",
                "label=gverb",
                "control=8,0.35,0.6,0.7,-3,-12,-24",
            )
            pulse.load_module(
                "module-ladspa-sink",
                "sink_name=echofx",
                "sink_master=echoverb",
                "plugin=highpass_iir_1890",
                "label=highpass_iir",
                "control=200,2",
            )
            room.set_echo(delay_ms, level_db)
            pulse.pactl("set-default-sink", SPEAKER)
            pulse.pactl("set-default-source", f"{ROOM}.monitor")
        except BaseException:
            pulse.stop()
            raise
        return room

    def set_echo(self, delay_ms: int, level_db: float) -> None:
        """(Re)build the speaker-to-room path with this delay and level."""
        if self._loopback is not None:
            self.pulse.unload_module(self._loopback)
        self._loopback = self.pulse.load_module(
            "module-loopback",
            f"source={SPEAKER}.monitor",
            "sink=echofx",
            f"latency_msec={delay_ms}",
            "source_dont_move=true",
            "sink_dont_move=true",
            "adjust_time=0",  # a fixed delay: rate adaptation makes it wander
        )
        sink_input = None
        for line in self.pulse.pactl("list", "sink-inputs").splitlines():
            line = line.strip()
            if line.startswith("Sink Input #"):
                current = line.removeprefix("Sink Input #")
            elif line == f"Owner Module: {self._loopback}":
                sink_input = current
        if sink_input is None:
            raise PulseUnavailable("the echo room's loopback has no sink input")
        # a linear factor: "-10dB" would be read as a relative change
        self.pulse.pactl("set-sink-input-volume", sink_input, f"{10 ** (level_db / 20):.5f}")

    def say(self, wav: Path) -> subprocess.Popen[bytes]:
        """The user speaks into the room (returns at once; wait() on the result)."""
        return subprocess.Popen(
            ["paplay", "-d", ROOM, str(wav)],
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        self.pulse.stop()


def speech(text: str, path: Path, *, voice: str = USER_VOICE, wpm: int = 165) -> Path:
    """48 kHz mono speech from espeak-ng, resampled with sox."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        raise PulseUnavailable("espeak-ng and sox are needed for test speech (.ci/audio-setup)")
    raw = path.with_suffix(".raw.wav")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(raw), "--", text],
        check=True,
        timeout=30,
        capture_output=True,
    )
    subprocess.run(
        ["sox", str(raw), "-r", "48000", "-c", "1", "-b", "16", str(path)],
        check=True,
        timeout=30,
        capture_output=True,
    )
    raw.unlink()
    return path
