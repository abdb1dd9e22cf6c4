"""The client's WebRTC peer (the only aiortc peer owner on the client side): offer with the
microphone track and the `oai-events` channel, post SDP, wait until ready, send events, receive
them typed, idempotent close."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from rtc_voice.errors import CallError, ProtocolError
from rtc_voice.protocol import EVENTS_CHANNEL, server
from rtc_voice.protocol import ServerEventType as S
from rtc_voice.rtc import compat
from rtc_voice.rtc.ice import rtc_configuration
from rtc_voice.rtc.stats import NetworkStats, read_stats

if TYPE_CHECKING:
    from rtc_voice.api import RealtimeApi

JSON = dict[str, Any]


@dataclass(frozen=True)
class ChannelClosed:
    """The events channel closed: the server hung up, or the peer went away."""


Incoming = server.ServerEvent | ChannelClosed


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
    """One call. Server events (typed) land in `events`; the model's audio in `remote_audio`."""

    pc: RTCPeerConnection
    channel: RTCDataChannel
    events: asyncio.Queue[Incoming] = field(default_factory=asyncio.Queue)
    remote_audio: asyncio.Future[MediaStreamTrack] | None = None
    call_id: str | None = None
    session: JSON | None = None
    timings: ConnectTimings = field(default_factory=ConnectTimings)
    warnings: list[str] = field(default_factory=list)  # compat problems worth a notice
    _closed: bool = False

    def send(self, event: JSON) -> None:
        if self.channel.readyState != "open":
            raise CallError(
                "The events channel is closed; the call has ended.",
                hint="Start a new call.",
            )
        self.channel.send(json.dumps(event))

    @property
    def closed(self) -> bool:
        return self._closed

    async def stats(self) -> NetworkStats:
        return await read_stats(self.pc, time.monotonic())

    async def close(self) -> None:
        """Close channel and peer; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.channel.close()
        await self.pc.close()


@dataclass
class Offer:
    """A peer with its offer made and its candidates gathered, waiting for a key to call with
    (made while the key request is in flight, so connecting starts with the HTTP step)."""

    conn: RealtimeConnection
    started: float
    channel_open: asyncio.Future[None]
    first_session: asyncio.Future[JSON]
    ice_done: asyncio.Future[None]
    dtls_done: asyncio.Future[None]

    def mark(self, name: str) -> None:
        if getattr(self.conn.timings, name) is None:
            setattr(self.conn.timings, name, time.monotonic() - self.started)

    async def call(
        self,
        api: RealtimeApi,
        ephemeral_key: str,
        connect_timeout: float = 15.0,
        *,
        deadline: float | None = None,
        hangup: Callable[[str], Awaitable[None]] | None = None,
    ) -> RealtimeConnection:
        """POST /calls → answer → channel open → `session.created`, within `connect_timeout`
        (or by `deadline`, in loop time, when the offer already used part of it). Raises
        CallError naming the step that stalled; the peer is closed on any failure, and if the
        server created the call, `hangup(call_id)` is awaited (bounded) so it is not left
        open."""
        conn, pc = self.conn, self.conn.pc
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + connect_timeout
        step = "HTTP"
        try:
            async with asyncio.timeout_at(deadline):
                answer = await api.create_call(ephemeral_key, pc.localDescription.sdp)
                self.mark("http")
                conn.call_id = answer.call_id
                try:
                    await pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
                except Exception:  # aiortc's SDP parser raises AssertionError, ValueError, …
                    raise ProtocolError(
                        f"{api.host} sent an SDP answer that cannot be used.",
                        hint="Check that base_url points at an OpenAI-compatible /v1 endpoint.",
                    ) from None
                step = "ICE"
                await self.ice_done
                step = "DTLS"
                await self.dtls_done
                step = "data channel"
                await self.channel_open
                step = S.SESSION_CREATED
                conn.session = await self.first_session
        except TimeoutError:
            await _abandon(conn, hangup)
            raise CallError(
                f"The call did not connect within {connect_timeout:g} s: stalled at the {step} "
                "step.",
                hint="Check your network (a firewall may block UDP), or raise "
                "network.connect_timeout."
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


async def make_offer(
    audio_track: MediaStreamTrack,
    *,
    ice_servers: Sequence[str] = (),
    jitter_buffer_frames: int | None = None,
    loopback_only: bool = False,
) -> Offer:
    """A peer sending `audio_track` with the events channel, its offer set and its candidates
    gathered. `loopback_only` gathers 127.0.0.1 candidates only (for a server on this
    machine)."""
    started = time.monotonic()
    pc = RTCPeerConnection(rtc_configuration(ice_servers))
    pc.addTransceiver(audio_track, direction="sendrecv")
    channel = pc.createDataChannel(EVENTS_CHANNEL)
    conn = RealtimeConnection(pc=pc, channel=channel)
    if jitter_buffer_frames is not None:
        try:
            compat.set_audio_jitter_buffer(pc, jitter_buffer_frames)
        except compat.CompatError as exc:
            conn.warnings.append(str(exc))
    loop = asyncio.get_running_loop()
    conn.remote_audio = loop.create_future()
    offer = Offer(
        conn=conn,
        started=started,
        channel_open=loop.create_future(),
        first_session=loop.create_future(),
        ice_done=loop.create_future(),
        dtls_done=loop.create_future(),
    )

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "audio" and conn.remote_audio and not conn.remote_audio.done():
            conn.remote_audio.set_result(track)

    @pc.on("iceconnectionstatechange")
    def on_ice() -> None:
        if pc.iceConnectionState == "completed" and not offer.ice_done.done():
            offer.mark("ice")
            offer.ice_done.set_result(None)

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState == "connected" and not offer.dtls_done.done():
            offer.mark("dtls")
            offer.dtls_done.set_result(None)

    @channel.on("open")
    def on_open() -> None:
        offer.mark("channel")
        if not offer.channel_open.done():
            offer.channel_open.set_result(None)

    @channel.on("message")
    def on_message(message: str | bytes) -> None:
        try:
            raw = json.loads(message)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return
        if not isinstance(raw, dict):
            return
        event = server.parse(raw)
        if isinstance(event, server.SessionChanged) and event.type == S.SESSION_CREATED:
            if not offer.first_session.done():
                offer.mark("session")
                offer.first_session.set_result(dict(event.session))
        conn.events.put_nowait(event)

    @channel.on("close")
    def on_close() -> None:
        conn.events.put_nowait(ChannelClosed())

    try:
        with compat.loopback_ice() if loopback_only else contextlib.nullcontext():
            await pc.setLocalDescription(await pc.createOffer())
    except BaseException:
        await conn.close()
        raise
    offer.mark("offer")
    return offer


async def connect(
    api: RealtimeApi,
    ephemeral_key: str,
    audio_track: MediaStreamTrack,
    *,
    ice_servers: Sequence[str] = (),
    connect_timeout: float = 15.0,
    jitter_buffer_frames: int | None = None,
    loopback_only: bool = False,
    hangup: Callable[[str], Awaitable[None]] | None = None,
) -> RealtimeConnection:
    """Open a call: `make_offer`, then `Offer.call` (both within `connect_timeout`)."""
    deadline = asyncio.get_running_loop().time() + connect_timeout
    try:
        async with asyncio.timeout_at(deadline):
            offer = await make_offer(
                audio_track,
                ice_servers=ice_servers,
                jitter_buffer_frames=jitter_buffer_frames,
                loopback_only=loopback_only,
            )
    except TimeoutError:
        raise CallError(
            f"The call did not connect within {connect_timeout:g} s: stalled making the offer.",
            hint="Raise network.connect_timeout if this machine is very slow.",
        ) from None
    return await offer.call(api, ephemeral_key, connect_timeout, deadline=deadline, hangup=hangup)
