"""Every touch of aiortc's and aioice's private parts, in one place, each checked.

- `loopback_ice()`: aioice offers every interface address except loopback; a call that never
  leaves this machine (local server, tests) must offer 127.0.0.1 only. aioice has no setting,
  so `aioice.ice.get_host_addresses` is wrapped while at least one scope is open, and the
  wrapper answers 127.0.0.1 only inside a scope (a context variable, so it holds for the task
  that gathers and the tasks it starts, and for no other peer). The last scope to close puts
  the original back.
- `set_audio_jitter_buffer()`: aiortc's receiver keeps its jitter buffer in a private
  attribute with a fixed 4-frame prefetch (~80 ms); we swap it per peer.

`canaries()` lists each private name and whether this aiortc/aioice still has it; tests run it,
and `CompatError` says plainly when a name is gone instead of silently doing nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from importlib.metadata import version
from typing import Any

TESTED = {"aiortc": ((1, 9), (1, 16)), "aioice": ((0, 9), (0, 13))}  # inclusive major.minor
JITTER_BUFFER_ATTR = "_RTCRtpReceiver__jitter_buffer"
JITTER_BUFFER_FIELDS = ("_origin", "_packets", "_capacity")
PACKET_DATA_ATTR = "_data"  # set by RTCRtpReceiver on each packet it depayloads


class CompatError(RuntimeError):
    """This aiortc/aioice no longer has a private name we rely on."""


def _major_minor(package: str) -> tuple[int, int]:
    parts = version(package).split(".")
    return int(parts[0]), int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def untested_versions() -> list[str]:
    """Sentences about installed versions outside the range these touches were checked on."""
    notes = []
    for package, (low, high) in TESTED.items():
        have = _major_minor(package)
        if not low <= have <= high:
            notes.append(
                f"{package} {version(package)} is outside the tested range "
                f"{low[0]}.{low[1]}-{high[0]}.{high[1]}; report problems with the version."
            )
    return notes


# --- loopback-only host candidates -------------------------------------------------------------

_in_scope: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "rtc_voice_loopback_ice", default=False
)
_original: Callable[..., list[str]] | None = None
_open_scopes = 0


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _in_scope.get():
        return ["127.0.0.1"] if use_ipv4 else []
    assert _original is not None
    return _original(use_ipv4=use_ipv4, use_ipv6=use_ipv6)


@contextlib.contextmanager
def loopback_ice() -> Iterator[None]:
    """ICE candidates gathered inside this block (this task and tasks it starts) are 127.0.0.1
    only. Wrap a peer's `setLocalDescription` in it."""
    global _original, _open_scopes
    import aioice.ice

    if _open_scopes == 0:
        current = getattr(aioice.ice, "get_host_addresses", None)
        if current is None:
            raise CompatError(
                f"aioice {version('aioice')} has no ice.get_host_addresses; rtc-voice cannot "
                "keep a local call on 127.0.0.1 with it."
            )
        _original = current
        aioice.ice.get_host_addresses = _host_addresses
    _open_scopes += 1
    token = _in_scope.set(True)
    try:
        yield
    finally:
        _in_scope.reset(token)
        _open_scopes -= 1
        if _open_scopes == 0:
            aioice.ice.get_host_addresses = _original  # type: ignore[assignment]
            _original = None


def loopback_ice_active() -> bool:
    """Whether aioice's address lookup is wrapped right now (no scope open means no)."""
    import aioice.ice

    return bool(aioice.ice.get_host_addresses is _host_addresses)


# --- the receive jitter buffer ----------------------------------------------------------------


def _immediate_audio_buffer() -> Any:
    """A jitter buffer that hands each in-order audio packet on at once.

    One Opus packet is one whole 20 ms frame, but aiortc only releases a frame once the next
    packet shows it complete: 20 ms of delay for nothing. Out-of-order packets still wait for
    the gap to fill, and a lost one is skipped as in aiortc (when the buffer overflows).
    """
    from aiortc.jitterbuffer import JitterBuffer, JitterFrame

    class ImmediateAudioJitterBuffer(JitterBuffer):
        def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
            pli, frame = super().add(packet)
            if frame is None and self._origin is not None:
                head = self._packets[self._origin % self._capacity]
                if head is not None:
                    data = getattr(head, PACKET_DATA_ATTR)
                    frame = JitterFrame(data=data, timestamp=head.timestamp)
                    self.remove(1)
            return pli, frame

    return ImmediateAudioJitterBuffer(capacity=16, prefetch=0)


def set_audio_jitter_buffer(pc: Any, frames: int) -> int:
    """Hold back `frames` audio frames instead of aiortc's 4 (0 hands each in-order packet on
    at once) on every audio receiver of `pc`. Returns how many receivers changed; raises
    CompatError when this aiortc keeps its buffer elsewhere."""
    from aiortc.jitterbuffer import JitterBuffer

    changed = 0
    for transceiver in pc.getTransceivers():
        if transceiver.kind != "audio":
            continue
        receiver = transceiver.receiver
        if not isinstance(getattr(receiver, JITTER_BUFFER_ATTR, None), JitterBuffer):
            raise CompatError(
                f"aiortc {version('aiortc')} keeps its jitter buffer elsewhere; the receive "
                "latency setting (network.jitter_buffer_frames) has no effect."
            )
        buffer = (
            _immediate_audio_buffer() if frames == 0 else JitterBuffer(capacity=16, prefetch=frames)
        )
        setattr(receiver, JITTER_BUFFER_ATTR, buffer)
        changed += 1
    return changed


async def canaries() -> dict[str, bool]:
    """Each private name we touch, and whether the installed aiortc/aioice still has it."""
    import inspect

    import aioice.ice
    from aiortc import RTCPeerConnection, rtcrtpreceiver
    from aiortc.jitterbuffer import JitterBuffer

    buffer = JitterBuffer(capacity=16, prefetch=0)
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("audio").receiver
        receiver_has = isinstance(getattr(receiver, JITTER_BUFFER_ATTR, None), JitterBuffer)
    finally:
        await pc.close()
    return {
        "aioice.ice.get_host_addresses": callable(getattr(aioice.ice, "get_host_addresses", None)),
        f"RTCRtpReceiver.{JITTER_BUFFER_ATTR}": receiver_has,
        **{f"JitterBuffer.{name}": hasattr(buffer, name) for name in JITTER_BUFFER_FIELDS},
        f"RtpPacket.{PACKET_DATA_ATTR} (set by the receiver)": (
            f"packet.{PACKET_DATA_ATTR} =" in inspect.getsource(rtcrtpreceiver)
        ),
    }
