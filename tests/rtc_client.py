"""A real aiortc client for tests: validates every event both ways against openai's types."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
from aiortc import MediaStreamTrack
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent

from rtc_voice.api import RealtimeApi
from rtc_voice.audio.pcm import rms_dbfs, silence, tone
from rtc_voice.audio.tracks import PcmTrack, frame_to_mono
from rtc_voice.protocol import client as events
from rtc_voice.rtc.peer import ChannelClosed, RealtimeConnection, connect
from tests.support import validate_strict

# Real OpenAI sends these on session objects although the published request type lacks them.
SESSION_EXTRAS = ("session.id", "session.object", "session.expires_at")


def validate_server_event(event: dict[str, Any]) -> None:
    validate_strict(RealtimeServerEvent, event, allowed=SESSION_EXTRAS)


def validate_client_event(event: dict[str, Any]) -> None:
    validate_strict(RealtimeClientEvent, event)


def speech_like(ms: float = 1200, lead_ms: float = 200) -> np.ndarray:
    """Loud enough for the server's energy VAD; what counts is level, not words."""
    return np.concatenate([silence(lead_ms), tone(300, ms, dbfs=-20), silence(50)])


class Client:
    """One call. `events` keeps everything received, in order; `wait_for` blocks until one
    matching event arrives (bounded)."""

    def __init__(self, conn: RealtimeConnection, mic: PcmTrack) -> None:
        self.conn = conn
        self.mic = mic
        self.events: list[dict[str, Any]] = []
        self.levels: list[float] = []
        self.invalid: list[str] = []  # server events openai's types reject
        self._cursor = 0
        self._new = asyncio.Event()
        self.closed = asyncio.Event()  # the events channel closed
        self._tasks = [asyncio.ensure_future(self._pump()), asyncio.ensure_future(self._sink())]

    @classmethod
    async def open(
        cls, base_url: str, session: dict[str, Any] | None = None, key: str = "sk-local-test"
    ) -> Client:
        async with RealtimeApi(base_url) as api:
            body = {"session": session or {"type": "realtime"}}
            secret = await api.create_client_secret(key, body)
            mic = PcmTrack()
            conn = await connect(api, secret.value, mic, connect_timeout=10, loopback_only=True)
        return cls(conn, mic)

    async def _pump(self) -> None:
        while True:
            event = await self.conn.events.get()
            if isinstance(event, ChannelClosed):
                self.closed.set()
                return
            raw = dict(event.raw)
            try:
                validate_server_event(raw)
            except Exception as exc:  # kept, and raised by wait_for/find/close
                self.invalid.append(f"{raw['type']}: {exc}")
            self.events.append(raw)
            self._new.set()

    async def _sink(self) -> None:
        assert self.conn.remote_audio is not None
        track: MediaStreamTrack = await self.conn.remote_audio
        while True:
            frame = await track.recv()
            self.levels.append(rms_dbfs(frame_to_mono(frame)))

    def send(self, event: dict[str, Any]) -> None:
        validate_client_event(event)
        self.conn.send(event)

    def say(self, text: str) -> None:
        self.send(events.user_message(text))
        self.send(events.response_create())

    async def wait_for(
        self,
        type_: str,
        where: Callable[[dict[str, Any]], bool] = lambda e: True,
        within: float = 15.0,
    ) -> dict[str, Any]:
        """The next event (after the last one waited for) of this type that matches."""
        async with asyncio.timeout(within):
            while True:
                self.check_valid()
                while self._cursor < len(self.events):
                    event = self.events[self._cursor]
                    self._cursor += 1
                    if event["type"] == type_ and where(event):
                        return event
                self._new.clear()
                await self._new.wait()

    async def find(self, type_: str, within: float = 15.0) -> dict[str, Any]:
        """The first event of this type, whether it already arrived or is still to come."""
        for event in self.events:
            if event["type"] == type_:
                return event
        async with asyncio.timeout(within):
            while True:
                self._new.clear()
                await self._new.wait()
                for event in reversed(self.events):
                    if event["type"] == type_:
                        return event

    def check_valid(self) -> None:
        """Fail on any server event so far that openai's RealtimeServerEvent rejects."""
        assert not self.invalid, f"invalid server events: {self.invalid}"

    def types(self, since: int = 0) -> list[str]:
        return [e["type"] for e in self.events[since:]]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        await self.conn.close()
        self.check_valid()
