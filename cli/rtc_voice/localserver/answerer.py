"""The local call's aiortc peer: answers the client's offer, carries the `oai-events` channel
(messages queued until it opens), and closes so the client notices at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from rtc_voice.protocol import EVENTS_CHANNEL
from rtc_voice.rtc import compat
from rtc_voice.rtc.ice import rtc_configuration


class Answerer:
    def __init__(
        self,
        track: MediaStreamTrack,
        *,
        on_open: Callable[[], None],
        on_message: Callable[[str | bytes], None],
        on_audio: Callable[[MediaStreamTrack], None],
        on_ended: Callable[[str], Awaitable[None]],
        loopback_only: bool = False,
    ) -> None:
        self.pc = RTCPeerConnection(rtc_configuration(()))
        self.channel: RTCDataChannel | None = None
        self._track = track
        self._on_open = on_open
        self._on_message = on_message
        self._on_audio = on_audio
        self._on_ended = on_ended
        self._loopback_only = loopback_only
        self._outbox: list[str] = []

    async def answer(self, offer_sdp: str) -> str:
        """The SDP answer to `offer_sdp` (raises what aiortc raises for a malformed offer)."""
        pc = self.pc

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label != EVENTS_CHANNEL:
                return
            self.channel = channel
            channel.on("message", self._on_message)
            if channel.readyState == "open":
                self._opened()
            else:
                channel.on("open", self._opened)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._on_audio(track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._on_ended(f"connection {pc.connectionState}")

        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        pc.addTrack(self._track)
        with compat.loopback_ice() if self._loopback_only else contextlib.nullcontext():
            await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    @property
    def open(self) -> bool:
        return self.channel is not None and self.channel.readyState == "open"

    def send(self, message: str) -> None:
        """Send now, or once the channel opens."""
        if self.channel is not None and self.open:
            self.channel.send(message)
        else:
            self._outbox.append(message)

    def _opened(self) -> None:
        self._on_open()  # sends first (session.created)
        assert self.channel is not None
        for message in self._outbox:
            self.channel.send(message)
        self._outbox.clear()

    async def close(self) -> None:
        if self.channel is not None and self.open:
            # aiortc's close() tells the peer nothing; a stream reset on the events channel
            # does, so clients notice the hang-up at once instead of at ICE consent expiry.
            closed = asyncio.Event()
            self.channel.on("close", closed.set)
            self.channel.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await closed.wait()
        await self.pc.close()
