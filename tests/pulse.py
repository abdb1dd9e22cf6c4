"""A private PulseAudio daemon on its own socket, for real PortAudio streams without a sound card.

Tests and benchmarks start one (`PrivatePulse.start()`), point this process and its children at it
through PULSE_SERVER, and leave any sound server the user runs alone. PortAudio reaches it through
ALSA's pulse plugin (Debian's libasound2-plugins routes ALSA's `default` to the server named by
PULSE_SERVER), so no ~/.asoundrc is needed.

Used by tests/conftest.py (one daemon per test run) and by the benchmarks and the echo room.

The daemon runs in the foreground as a child of the process that started it and is told (Linux
`PR_SET_PDEATHSIG`) to end when that process ends, so a test run killed by a timeout or Ctrl-C
leaves no daemon behind (daemonized ones piled up, each looping audio at ~1% of a core).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NULL_SINK = "rtc_voice_null"


class PulseUnavailable(RuntimeError):
    """PulseAudio is not installed or did not start; the message says which."""


class PrivatePulse:
    """One PulseAudio daemon in a temporary directory, reachable only through its own socket."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.socket = directory / "native"
        self.env = {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_RUNTIME_PATH": str(directory / "runtime"),
            "PULSE_STATE_PATH": str(directory / "state"),
        }

    @classmethod
    def start(cls, directory: Path | None = None, *, null_sink: bool = True) -> PrivatePulse:
        """Start a daemon (with a mono 48 kHz null sink as default speaker and its monitor as
        default microphone unless `null_sink` is False); raise PulseUnavailable if it cannot."""
        missing = [tool for tool in ("pulseaudio", "pactl") if shutil.which(tool) is None]
        if missing:
            raise PulseUnavailable(
                f"{' and '.join(missing)} not found on PATH; install them with `bash "
                ".ci/audio-setup` (Debian/Ubuntu: apt-get install pulseaudio pulseaudio-utils "
                "libasound2-plugins libportaudio2); the tests start their own daemon"
            )
        pulse = cls(directory or Path(tempfile.mkdtemp(prefix="rtc-voice-pulse-")))
        pulse.directory.mkdir(parents=True, exist_ok=True)
        log = pulse.directory / "pulseaudio.log"
        pulse.process = subprocess.Popen(
            [
                "pulseaudio",
                "--daemonize=no",
                "-n",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                f"--log-target=file:{log}",
                f"--load=module-native-protocol-unix auth-anonymous=1 socket={pulse.socket}",
            ],
            env={**os.environ, **pulse.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 10
        while not pulse.alive():
            if pulse.process.poll() is not None or time.monotonic() > deadline:
                tail = (
                    log.read_text(errors="replace").strip().splitlines()[-3:]
                    if log.exists()
                    else []
                )
                pulse.stop()
                raise PulseUnavailable(
                    "PulseAudio did not start; its log ended: " + " | ".join(tail)
                )
            time.sleep(0.05)
        if null_sink:
            pulse.load_module(
                "module-null-sink",
                f"sink_name={NULL_SINK}",
                "rate=48000",
                "channels=1",
                f"sink_properties=device.description={NULL_SINK}",
            )
            pulse.pactl("set-default-sink", NULL_SINK)
            pulse.pactl("set-default-source", f"{NULL_SINK}.monitor")
        return pulse

    def pactl(self, *args: str) -> str:
        result = subprocess.run(
            ["pactl", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        if result.returncode != 0:
            raise PulseUnavailable(f"pactl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def load_module(self, name: str, *args: str) -> int:
        """Load a module; returns its index (for unload_module)."""
        return int(self.pactl("load-module", name, *args).strip())

    def unload_module(self, index: int) -> None:
        self.pactl("unload-module", str(index))

    def alive(self) -> bool:
        try:
            self.pactl("info")
        except (PulseUnavailable, subprocess.TimeoutExpired):
            return False
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            subprocess.run(
                ["pactl", "exit"],
                env={**os.environ, **self.env},
                capture_output=True,
                timeout=20,
                check=False,
            )
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.directory, ignore_errors=True)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the process that started it ends (Linux)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def main(argv: list[str]) -> int:
    """`python -m tests.pulse CMD ARGS…`: run one command against a fresh private daemon."""
    if not argv:
        print("usage: python -m tests.pulse CMD [ARGS...]", file=sys.stderr)
        return 2
    try:
        pulse = PrivatePulse.start()
    except PulseUnavailable as exc:
        print(f"tests.pulse: {exc}", file=sys.stderr)
        return 1
    try:
        return subprocess.run(argv, env={**os.environ, **pulse.env}, check=False).returncode
    finally:
        pulse.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
