"""Every touch of aiortc's and aioice's private parts, in one place, each checked.

- `loopback_ice()`: aioice offers every interface address except loopback; a call that never
  leaves this machine (local server, tests) must offer 127.0.0.1 only. aioice has no setting,
  so `aioice.ice.get_host_addresses` is wrapped while at least one scope is open, and the
  wrapper answers 127.0.0.1 only inside a scope (a context variable, so it holds for the task
  that gathers and the tasks it starts, and for no other peer). The last scope to close puts
  the original back.
- `set_audio_jitter_buffer()`: aiortc's receiver keeps its jitter buffer in a private
  attribute with a fixed 4-frame prefetch (~80 ms); we swap it per peer.
- `impair_outgoing_rtp()` and `cut_network()` (the local server's network rehearsal): one
  peer's outgoing RTP passes through a delay/loss function (wrapping its DTLS transport's
  `_send_rtp`), and a "lost network" silences one peer entirely (its ICE transport's `_send`,
  and its aioice connection's `request_received` and `data_received`). Both are per instance:
  no other peer is touched.

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


ADAPTIVE = -1  # set_audio_jitter_buffer(pc, ADAPTIVE): the adaptive buffer (rtc/jitter.py)


def _adaptive_audio_buffer() -> Any:
    """aiortc's jitter-buffer interface (`add(packet) -> (pli, frame)`) over rtc/jitter.py."""
    import time

    from aiortc.jitterbuffer import JitterFrame

    from rtc_voice.rtc.jitter import AdaptiveJitter, merge_opus

    class AdaptiveAudioJitterBuffer:
        capacity = 16

        def __init__(self) -> None:
            self.core: AdaptiveJitter[bytes] = AdaptiveJitter(merge=merge_opus)

        def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
            data = getattr(packet, PACKET_DATA_ATTR)
            out = self.core.add(packet.sequence_number, packet.timestamp, data, time.monotonic())
            if out is None:
                return False, None
            return False, JitterFrame(data=out[1], timestamp=out[0])

    return AdaptiveAudioJitterBuffer()


def set_audio_jitter_buffer(pc: Any, frames: int) -> int:
    """Hold back `frames` audio frames instead of aiortc's 4 (0 hands each in-order packet on
    at once; ADAPTIVE follows the measured jitter) on every audio receiver of `pc`. Returns
    how many receivers changed; raises CompatError when this aiortc keeps its buffer
    elsewhere."""
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
        if frames == ADAPTIVE:
            buffer = _adaptive_audio_buffer()
        elif frames == 0:
            buffer = _immediate_audio_buffer()
        else:
            buffer = JitterBuffer(capacity=16, prefetch=frames)
        setattr(receiver, JITTER_BUFFER_ATTR, buffer)
        changed += 1
    return changed


# --- the local server's network rehearsal ------------------------------------------------------

SEND_RTP_ATTR = "_send_rtp"  # RTCDtlsTransport: plain RTP/RTCP in, SRTP out
ICE_SEND_ATTR = "_send"  # RTCIceTransport: every datagram the peer sends (DTLS, SRTP, SCTP)
ICE_CONNECTION_ATTR = "_connection"  # RTCIceTransport -> aioice.Connection
ICE_INBOUND = ("request_received", "data_received")  # aioice.Connection: what it is sent


def _dtls_transports(pc: Any) -> list[Any]:
    transports = []
    for transceiver in pc.getTransceivers():
        if transceiver.sender.transport is not None:
            transports.append(transceiver.sender.transport)
    sctp = getattr(pc, "sctp", None)
    if sctp is not None and sctp.transport is not None:
        transports.append(sctp.transport)
    unique: dict[int, Any] = {id(t): t for t in transports}
    return list(unique.values())


def impair_outgoing_rtp(pc: Any, delay_for: Callable[[bytes], float | None]) -> int:
    """Send each outgoing RTP packet of `pc` after `delay_for(packet)` seconds, or drop it when
    that is None (RTCP passes untouched). Returns how many transports were wrapped."""
    import asyncio

    from aiortc.rtp import is_rtcp

    wrapped = 0
    for transport in _dtls_transports(pc):
        original = getattr(transport, SEND_RTP_ATTR, None)
        if original is None:
            raise CompatError(
                f"aiortc {version('aiortc')} has no RTCDtlsTransport.{SEND_RTP_ATTR}; the "
                "local server cannot rehearse a bad network with it."
            )
        pending: set[asyncio.Task[None]] = set()

        async def late(data: bytes, delay: float, send: Any = original) -> None:
            await asyncio.sleep(delay)
            with contextlib.suppress(ConnectionError):
                await send(data)

        async def send_rtp(data: bytes, send: Any = original, tasks: Any = pending) -> None:
            if is_rtcp(data):
                await send(data)
                return
            delay = delay_for(data)
            if delay is None:
                return
            if delay <= 0:
                await send(data)
                return
            task = asyncio.ensure_future(late(data, delay))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        setattr(transport, SEND_RTP_ATTR, send_rtp)
        wrapped += 1
    return wrapped


def cut_network(pc: Any) -> None:
    """From now on `pc` sends nothing and hears nothing (RTP, data channel, DTLS, ICE answers),
    as when a network goes away: its remote peer sees silence, not a hang-up."""

    async def send_nothing(data: bytes) -> None:
        return None

    def hear_nothing(*args: Any, **kwargs: Any) -> None:
        return None

    for transport in _dtls_transports(pc):
        ice = transport.transport
        connection = getattr(ice, ICE_CONNECTION_ATTR, None)
        if not hasattr(ice, ICE_SEND_ATTR) or connection is None:
            raise CompatError(
                f"aiortc {version('aiortc')} has no RTCIceTransport.{ICE_SEND_ATTR} / "
                f"{ICE_CONNECTION_ATTR}; the local server cannot cut a call silently with it."
            )
        setattr(ice, ICE_SEND_ATTR, send_nothing)
        for name in ICE_INBOUND:
            if not hasattr(connection, name):
                raise CompatError(
                    f"aioice {version('aioice')} has no Connection.{name}; the local server "
                    "cannot cut a call silently with it."
                )
            setattr(connection, name, hear_nothing)


def concealed_frames(pc: Any) -> int | None:
    """Frames the adaptive buffers of `pc` gave up on as lost (concealed by the audio stage);
    None when `pc` has no adaptive buffer."""
    total = None
    for transceiver in pc.getTransceivers():
        core = getattr(getattr(transceiver.receiver, JITTER_BUFFER_ATTR, None), "core", None)
        if core is not None:
            total = (total or 0) + core.counts.concealed
    return total


async def canaries() -> dict[str, bool]:
    """Each private name we touch, and whether the installed aiortc/aioice still has it."""
    import inspect

    import aioice.ice
    from aiortc import RTCPeerConnection, rtcrtpreceiver
    from aiortc.jitterbuffer import JitterBuffer
    from aiortc.rtcdtlstransport import RTCDtlsTransport
    from aiortc.rtcicetransport import RTCIceTransport

    buffer = JitterBuffer(capacity=16, prefetch=0)
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("audio").receiver
        receiver_has = isinstance(getattr(receiver, JITTER_BUFFER_ATTR, None), JitterBuffer)
    finally:
        await pc.close()
    ice_source = inspect.getsource(RTCIceTransport)
    return {
        "aioice.ice.get_host_addresses": callable(getattr(aioice.ice, "get_host_addresses", None)),
        f"RTCRtpReceiver.{JITTER_BUFFER_ATTR}": receiver_has,
        **{f"JitterBuffer.{name}": hasattr(buffer, name) for name in JITTER_BUFFER_FIELDS},
        f"RtpPacket.{PACKET_DATA_ATTR} (set by the receiver)": (
            f"packet.{PACKET_DATA_ATTR} =" in inspect.getsource(rtcrtpreceiver)
        ),
        f"RTCDtlsTransport.{SEND_RTP_ATTR}": callable(
            getattr(RTCDtlsTransport, SEND_RTP_ATTR, None)
        ),
        f"RTCIceTransport.{ICE_SEND_ATTR} (set on start)": f"self.{ICE_SEND_ATTR} =" in ice_source,
        f"RTCIceTransport.{ICE_CONNECTION_ATTR}": f"self.{ICE_CONNECTION_ATTR} =" in ice_source,
        **{
            f"aioice.Connection.{name}": callable(getattr(aioice.ice.Connection, name, None))
            for name in ICE_INBOUND
        },
    }
