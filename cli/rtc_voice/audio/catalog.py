"""The audio devices PortAudio offers: listing, selection and probing, with nothing heavy imported.

`rtc-voice devices` needs only this: it imports sounddevice (through `sounddevice()`, which
turns a missing PortAudio into an AudioError) and no numpy, asyncio or aiortc, so listing costs
little more than PortAudio's own query. The streams live in audio/devices.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any, Literal

from rtc_voice.errors import AudioError

RATE = 48000  # rtc-voice's rate (pcm.RATE; repeated here so listing needs no numpy)

Kind = Literal["input", "output"]
KINDS: tuple[Kind, Kind] = ("input", "output")

PORTAUDIO_HINT = (
    "Install PortAudio: `sudo apt-get install libportaudio2` (Debian/Ubuntu), "
    "`sudo dnf install portaudio` (Fedora) or `brew install portaudio` (macOS)."
)
NO_DEVICES_HINT = (
    "Check that PulseAudio or PipeWire is running (`pactl info`) and that this user may use "
    "the sound devices; or use --input FILE.wav and --output FILE.wav|none."
)

_sd: ModuleType | None = None


# What PortAudio and the libraries under it (ALSA, its plugins, JACK) print on their own while
# they load, list devices or open streams: dropped. Any other line passes.
_NOISE = re.compile(
    rb"ALSA lib |ALSA ERROR|Expression '.*' failed in '|PaAlsa|PortAudio|Cannot get card index"
    rb"|Cannot connect to server |jack server is not running|JackShmReadWritePtr"
    rb"|Cannot lock down |bt_audio_service_open"
)
_quiet_lock = threading.Lock()  # opening and closing windows
_quiet_depth = 0  # windows open, over all threads; the first points fd 2 at the filter
_filter: _Filter | None = None  # made by the first window, kept for the life of the process


class _Filter:
    """One pipe and one reader thread for the life of the process; fd 2 points at the pipe
    while a window is open. The reader passes each line on to `target`, the stderr fd 2 was
    when the window opened, unless it is PortAudio's or ALSA's noise."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.target = -1  # a dup of the stderr to pass lines on to; -1 before the first window
        self.pending = b""  # a line begun but not ended
        self.handled = threading.Condition()  # held while handling what was read

    def forward(self) -> None:
        import select

        with contextlib.suppress(OSError):
            while True:
                select.select([self.read_fd], [], [])  # without the lock: a closer may look
                with self.handled:
                    chunk = os.read(self.read_fd, 65536)
                    if not chunk:
                        return
                    *lines, self.pending = (self.pending + chunk).split(b"\n")
                    self._pass_on(line + b"\n" for line in lines)
                    self.handled.notify_all()

    def _pass_on(self, lines: Iterable[bytes]) -> None:
        kept = b"".join(line for line in lines if not _NOISE.match(line))
        with contextlib.suppress(OSError):
            _write_all(self.target, kept)

    def _unread(self) -> int:
        import fcntl
        import termios

        count = bytearray(4)
        fcntl.ioctl(self.read_fd, termios.FIONREAD, count)
        return int.from_bytes(count, sys.byteorder)

    def drain(self) -> None:
        """Wait until the reader has passed on all that is in the pipe (waits only when
        something is: beside a busy thread each wait costs switches of the interpreter lock),
        then pass on a line left unended."""
        with self.handled:
            deadline = 1.0
            while self._unread() and self.handled.wait(deadline):
                pass
            if self.pending:
                self._pass_on([self.pending])
                self.pending = b""

    def retarget(self, saved: int) -> None:
        with self.handled:
            if self.target >= 0:
                os.close(self.target)
            self.target = saved


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Drop PortAudio's and ALSA's own noise on C-level stderr (fd 2) for the duration.

    fd 2 belongs to the whole process, and this runs on worker threads (sounddevice loads on
    one while the screen draws): so fd 2 is pointed at a pipe whose reader passes on every line
    that is not that noise: a message or a traceback from another thread is kept, and reaches
    stderr before the window closes. Windows opened on several threads at once share the pipe;
    the last to close puts fd 2 back.
    """
    if os.name != "posix" or not _open_quiet():
        yield
        return
    try:
        yield
    finally:
        _close_quiet()


def _open_quiet() -> bool:
    global _quiet_depth, _filter
    with _quiet_lock:
        if _quiet_depth == 0:
            try:
                saved = os.dup(2)
            except OSError:
                return False
            os.set_inheritable(saved, False)
            if _filter is None:
                import _thread
                import atexit

                _filter = _Filter()
                # _thread: Thread.start() would wait until the new thread has run
                _thread.start_new_thread(_filter.forward, ())
                atexit.register(_filter.drain)  # what is still in the pipe at exit
            _filter.retarget(saved)
            os.dup2(_filter.write_fd, 2)
        _quiet_depth += 1
        return True


def _close_quiet() -> None:
    global _quiet_depth
    with _quiet_lock:
        _quiet_depth -= 1
        if _quiet_depth or _filter is None:
            return
        _filter.drain()  # what the window's writers wrote reaches its stderr first
        os.dup2(_filter.target, 2)


_alsa_handler: Any = None  # kept alive: ALSA holds a pointer to it


def silence_alsa_errors() -> bool:
    """Give ALSA an error handler that prints nothing; False when there is no libasound.

    ALSA prints through its own handler straight to stderr, from PortAudio's audio thread in the
    middle of a call ("ALSA lib pcm.c:…(snd_pcm_recover) underrun occurred"), which tears the
    terminal UI. Underruns are counted and shown by the speaker sink instead.
    """
    global _alsa_handler
    if _alsa_handler is not None:
        return True
    import ctypes
    import ctypes.util

    lib = None
    for name in ("libasound.so.2", ctypes.util.find_library("asound")):
        if name:
            with contextlib.suppress(OSError):
                lib = ctypes.CDLL(name)
                break
    if lib is None or not hasattr(lib, "snd_lib_error_set_handler"):
        return False
    # void handler(const char *file, int line, const char *function, int err, const char *fmt,
    # ...): the variadic tail is ignored, which the C calling convention allows
    prototype = ctypes.CFUNCTYPE(
        None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
    )
    handler = prototype(lambda *args: None)
    lib.snd_lib_error_set_handler(handler)
    _alsa_handler = handler
    return True


def sounddevice() -> ModuleType:
    """The sounddevice module, or an AudioError saying how to install PortAudio. ALSA's own
    error printing is silenced as it loads (see `silence_alsa_errors`)."""
    global _sd
    if _sd is None:
        try:
            with quiet_stderr():
                import sounddevice as sd
        except OSError:
            raise AudioError(
                "The PortAudio library is not installed.", hint=PORTAUDIO_HINT
            ) from None
        silence_alsa_errors()
        _sd = sd
    return _sd


@dataclass(frozen=True)
class Device:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    default_input: bool
    default_output: bool

    def supports(self, kind: Kind) -> bool:
        return (self.max_input_channels if kind == "input" else self.max_output_channels) > 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"#{self.index} {self.name}"


def list_devices() -> list[Device]:
    sd = sounddevice()
    with quiet_stderr():
        try:
            raw = sd.query_devices()
            hostapis = sd.query_hostapis()
            default_in, default_out = sd.default.device
        except sd.PortAudioError as exc:
            raise AudioError(
                f"PortAudio cannot list devices: {exc}.", hint=NO_DEVICES_HINT
            ) from None
    devices = []
    for info in raw:
        index = int(info["index"])
        devices.append(
            Device(
                index=index,
                name=str(info["name"]),
                hostapi=str(hostapis[info["hostapi"]]["name"]),
                max_input_channels=int(info["max_input_channels"]),
                max_output_channels=int(info["max_output_channels"]),
                default_samplerate=float(info["default_samplerate"]),
                default_input=index == default_in,
                default_output=index == default_out,
            )
        )
    return devices


def _listing(devices: list[Device], kind: Kind) -> str:
    usable = [str(d) for d in devices if d.supports(kind)]
    return ", ".join(usable) if usable else "none"


def select(spec: str | int | None, kind: Kind, devices: list[Device] | None = None) -> Device:
    """The device for a spec: None = system default, an index, or part of a name (any case)."""
    devices = list_devices() if devices is None else devices
    label = "microphone" if kind == "input" else "speaker"
    if not any(d.supports(kind) for d in devices):
        raise AudioError(f"No {label} was found.", hint=NO_DEVICES_HINT)
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        default = next(
            (d for d in devices if (d.default_input if kind == "input" else d.default_output)), None
        )
        if default is None or not default.supports(kind):
            default = next(d for d in devices if d.supports(kind))
        return default
    text = str(spec).strip()
    if text.isdigit():
        match = next((d for d in devices if d.index == int(text)), None)
        if match is None:
            raise AudioError(
                f"There is no audio device #{text}.",
                hint=f"{label.capitalize()}s: {_listing(devices, kind)}.",
            )
        candidates = [match]
    else:
        needle = text.casefold()
        candidates = [d for d in devices if d.name.casefold() == needle] or [
            d for d in devices if needle in d.name.casefold()
        ]
        if not candidates:
            raise AudioError(
                f"No audio device matches '{text}'.",
                hint=f"{label.capitalize()}s: {_listing(devices, kind)}.",
            )
        fitting = [d for d in candidates if d.supports(kind)]
        if len(fitting) > 1:
            raise AudioError(
                f"'{text}' matches several {label}s: " + ", ".join(map(str, fitting)) + ".",
                hint="Use the index, or more of the name.",
            )
        candidates = fitting or candidates
    device = candidates[0]
    if not device.supports(kind):
        other = "output" if kind == "input" else "input"
        raise AudioError(
            f"{device} is an {other}-only device and cannot be used as a {label}.",
            hint=f"{label.capitalize()}s: {_listing(devices, kind)}.",
        )
    return device


@dataclass(frozen=True)
class ProbeResult:
    device: Device
    kind: Kind
    rate: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def probe(device: Device, kind: Kind, rate: int) -> ProbeResult:
    """Really open (and start) a mono stream on the device at `rate`; report the exact error."""
    sd = sounddevice()
    cls = sd.InputStream if kind == "input" else sd.OutputStream
    try:
        with quiet_stderr():
            stream = cls(device=device.index, samplerate=rate, channels=1, dtype="int16")
            try:
                stream.start()
                stream.stop()
            finally:
                stream.close()
    except (sd.PortAudioError, ValueError) as exc:
        return ProbeResult(device, kind, rate, str(exc))
    return ProbeResult(device, kind, rate, None)


def probe_all(devices: list[Device]) -> list[ProbeResult]:
    """Every device, each way it supports, at 48 kHz and at its own default rate."""
    return [
        probe(device, kind, rate)
        for device in devices
        for kind in KINDS
        if device.supports(kind)
        for rate in sorted({RATE, int(device.default_samplerate)})
    ]
