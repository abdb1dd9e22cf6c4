"""The client's WebRTC peer: offer with mic track + `oai-events` channel, post SDP, wait until
ready, send/receive events, idempotent close. Also owns the ICE policy (`use_loopback_ice`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from rtc_voice.api import RealtimeApi
from rtc_voice.errors import CallError, ProtocolError

EVENTS_CHANNEL = "oai-events"
JSON = dict[str, Any]

_loopback_only = False


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: traffic to it never leaves this machine."""
    import ipaddress

    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def use_loopback_ice() -> None:
    """Gather only 127.0.0.1 host candidates in this process.

    aioice normally skips loopback and offers every interface address; for calls that never
    leave this machine (local server, tests) that would send ICE checks to the machine's LAN
    address instead. With no ICE servers configured this keeps all traffic on 127.0.0.1.
    """
    global _loopback_only
    if _loopback_only:
        return
    import aioice.ice

    def loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    aioice.ice.get_host_addresses = loopback_addresses
    _loopback_only = True


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
                    data = head._data  # type: ignore[attr-defined]  # aiortc sets it on arrival
                    frame = JitterFrame(data=data, timestamp=head.timestamp)
                    self.remove(1)
            return pli, frame

    return ImmediateAudioJitterBuffer(capacity=16, prefetch=0)


def tune_audio_jitter_buffer(pc: RTCPeerConnection, frames: int) -> bool:
    """Hold back `frames` audio frames instead of aiortc's 4 (~80 ms of added delay); 0 hands
    each in-order packet on at once.

    aiortc has no setting for this; its receiver keeps the buffer in a private attribute. Returns
    False (and changes nothing) if this aiortc version keeps it elsewhere.
    """
    from aiortc.jitterbuffer import JitterBuffer

    changed = False
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        name = "_RTCRtpReceiver__jitter_buffer"
        if transceiver.kind == "audio" and isinstance(getattr(receiver, name, None), JitterBuffer):
            buffer = (
                _immediate_audio_buffer()
                if frames == 0
                else JitterBuffer(capacity=16, prefetch=frames)
            )
            setattr(receiver, name, buffer)
            changed = True
    return changed


def rtc_configuration(ice_servers: tuple[str, ...] | list[str]) -> RTCConfiguration:
    """aiortc contacts a public STUN server unless given an explicit (here: empty) list."""
    return RTCConfiguration(iceServers=[RTCIceServer(urls=url) for url in ice_servers])


@dataclass
class ConnectTimings:
    """Seconds from the start of `connect` to each milestone (for status and benchmarks)."""

    offer: float | None = None
    http: float | None = None
    ice: float | None = None
    dtls: float | None = None
    channel: float | None = None
    session: float | None = None


@dataclass
class RealtimeConnection:
    """One call. Events from the server land in `events`; the model's audio in `remote_audio`."""

    pc: RTCPeerConnection
    channel: RTCDataChannel
    events: asyncio.Queue[JSON] = field(default_factory=asyncio.Queue)
    remote_audio: asyncio.Future[MediaStreamTrack] | None = None
    call_id: str | None = None
    session: JSON | None = None
    timings: ConnectTimings = field(default_factory=ConnectTimings)
    on_send: Callable[[JSON], None] | None = None
    _closed: bool = False

    def send(self, event: JSON) -> None:
        if self.channel.readyState != "open":
            raise CallError(
                "The events channel is closed; the call has ended.",
                hint="Start a new call.",
            )
        self.channel.send(json.dumps(event))
        if self.on_send is not None:
            self.on_send(event)

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Close channel and peer; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.channel.close()
        await self.pc.close()


async def connect(
    api: RealtimeApi,
    ephemeral_key: str,
    audio_track: MediaStreamTrack,
    *,
    ice_servers: tuple[str, ...] | list[str] = (),
    connect_timeout: float = 15.0,
    jitter_buffer_frames: int | None = None,
    hangup: Callable[[str], Awaitable[None]] | None = None,
) -> RealtimeConnection:
    """Open a call: offer (mic track + events channel) → POST /calls → answer → channel open →
    `session.created`. Raises CallError naming the step that stalled. If the server created the
    call but it then fails, `hangup(call_id)` is awaited (bounded) so the call is not left open."""
    started = time.monotonic()
    pc = RTCPeerConnection(rtc_configuration(ice_servers))
    pc.addTransceiver(audio_track, direction="sendrecv")
    if jitter_buffer_frames is not None:
        tune_audio_jitter_buffer(pc, jitter_buffer_frames)
    channel = pc.createDataChannel(EVENTS_CHANNEL)
    conn = RealtimeConnection(pc=pc, channel=channel)
    loop = asyncio.get_running_loop()
    conn.remote_audio = loop.create_future()
    channel_open: asyncio.Future[None] = loop.create_future()
    first_session: asyncio.Future[JSON] = loop.create_future()
    ice_done: asyncio.Future[None] = loop.create_future()
    dtls_done: asyncio.Future[None] = loop.create_future()

    def mark(name: str) -> None:
        if getattr(conn.timings, name) is None:
            setattr(conn.timings, name, time.monotonic() - started)

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "audio" and conn.remote_audio and not conn.remote_audio.done():
            conn.remote_audio.set_result(track)

    @pc.on("iceconnectionstatechange")
    def on_ice() -> None:
        if pc.iceConnectionState == "completed" and not ice_done.done():
            mark("ice")
            ice_done.set_result(None)

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState == "connected" and not dtls_done.done():
            mark("dtls")
            dtls_done.set_result(None)

    @channel.on("open")
    def on_open() -> None:
        mark("channel")
        if not channel_open.done():
            channel_open.set_result(None)

    @channel.on("message")
    def on_message(message: str | bytes) -> None:
        try:
            event = json.loads(message)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return
        if not isinstance(event, dict):
            return
        if event.get("type") == "session.created" and not first_session.done():
            mark("session")
            first_session.set_result(event.get("session") or {})
        conn.events.put_nowait(event)

    @channel.on("close")
    def on_close() -> None:
        conn.events.put_nowait({"type": "rtc_voice.channel_closed"})

    step = "HTTP"
    try:
        async with asyncio.timeout(connect_timeout):
            await pc.setLocalDescription(await pc.createOffer())
            mark("offer")
            answer = await api.create_call(ephemeral_key, pc.localDescription.sdp)
            mark("http")
            conn.call_id = answer.call_id
            try:
                await pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
            except Exception:  # aiortc's SDP parser raises AssertionError, ValueError, KeyError…
                raise ProtocolError(
                    f"{api.host} sent an SDP answer that cannot be used.",
                    hint="Check that base_url points at an OpenAI-compatible /v1 endpoint.",
                ) from None
            step = "ICE"
            await ice_done
            step = "DTLS"
            await dtls_done
            step = "data channel"
            await channel_open
            step = "session.created"
            conn.session = await first_session
    except TimeoutError:
        await _abandon(conn, hangup)
        raise CallError(
            f"The call did not connect within {connect_timeout:g} s: stalled at the {step} step.",
            hint="Check your network (a firewall may block UDP), or raise network.connect_timeout."
            if step != "HTTP"
            else "The server did not answer in time; check base_url and your network.",
        ) from None
    except BaseException:
        await _abandon(conn, hangup)
        raise
    return conn


async def _abandon(
    conn: RealtimeConnection, hangup: Callable[[str], Awaitable[None]] | None
) -> None:
    """A connect that failed: hang up the call if the server created one, then close."""
    if conn.call_id and hangup is not None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await hangup(conn.call_id)
    await conn.close()
