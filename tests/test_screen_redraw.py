"""The live screen redraws when what it shows changed, and only then: a quiet call costs a look
at the snapshot, not a frame. Frames are counted as bytes reaching the terminal."""

from __future__ import annotations

import asyncio
import dataclasses
from io import StringIO

import pytest
from rich.console import Console

from rtc_voice.call.controls import CallSnapshot, Command
from rtc_voice.conversation import Message
from rtc_voice.ui.render import View, shown
from rtc_voice.ui.terminal import InlinePresenter, LivePresenter

pytestmark = pytest.mark.timeout(30)


class Terminal(StringIO):
    """A console file that counts the writes that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        if text:
            self.writes += 1
        return super().write(text)


class Screen:
    """A presenter on a fake terminal, fed a snapshot the test changes; counts its looks."""

    def __init__(self, presenter: type[LivePresenter] = LivePresenter) -> None:
        self.terminal = Terminal()
        console = Console(file=self.terminal, width=100, height=30, force_terminal=True)
        self.presenter = presenter(console=console, keys=False)
        self.snap = CallSnapshot(
            phase="connected",
            model="gpt-realtime",
            voice="marin",
            elapsed_s=10.1,
            mic_dbfs=-40.0,
            speaker_dbfs=-120.0,
        )
        self.looks = 0
        self.presenter.bind(self, self.snapshot)

    def send(self, command: Command) -> None:
        pass

    def snapshot(self) -> CallSnapshot:
        self.looks += 1
        return self.snap

    def change(self, **fields: object) -> None:
        self.snap = dataclasses.replace(self.snap, **fields)  # type: ignore[arg-type]

    async def looked(self, times: int) -> None:
        """Until the presenter has taken `times` more snapshots (it polls: wake it each time)."""
        target = self.looks + times
        async with asyncio.timeout(20):
            while self.looks < target:
                self.presenter.event({"type": "response.output_audio_transcript.delta"}, "server")
                await asyncio.sleep(0.01)

    async def drawn(self, frames: int) -> None:
        async with asyncio.timeout(20):
            while self.presenter.frames_drawn < frames:
                self.presenter.event({"type": "session.updated"}, "server")
                await asyncio.sleep(0.01)


async def test_an_unchanged_screen_is_not_redrawn_and_a_changed_one_is() -> None:
    screen = Screen()
    task = asyncio.create_task(screen.presenter.run())
    try:
        await screen.drawn(1)
        await screen.looked(8)
        writes = screen.terminal.writes
        assert screen.presenter.frames_drawn == 1
        screen.change(elapsed_s=10.7, mic_dbfs=-40.5)  # same second, same meter cells
        await screen.looked(8)
        assert screen.presenter.frames_drawn == 1
        assert screen.terminal.writes == writes  # nothing reached the terminal

        screen.change(elapsed_s=11.0)  # the clock shows a new second
        await screen.drawn(2)
        assert "00:11" in screen.terminal.getvalue()
        screen.change(turns=(Message("m1", "assistant", text="a new word", status="in_progress"),))
        await screen.drawn(3)
        assert "a new word" in screen.terminal.getvalue()
        screen.change(mic_dbfs=-3.0)  # the meter fills and turns red
        await screen.drawn(4)
        await screen.looked(8)
        assert screen.presenter.frames_drawn == 4
        assert screen.terminal.writes > writes
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_key_redraws_at_once_and_only_what_it_changed() -> None:
    screen = Screen()
    task = asyncio.create_task(screen.presenter.run())
    try:
        await screen.drawn(1)
        screen.presenter.key("?")  # the help panel opens
        screen.presenter._wake_now()
        await screen.drawn(2)
        assert "this help" in screen.terminal.getvalue()
        await screen.looked(8)
        assert screen.presenter.frames_drawn == 2
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_inline_screen_redraws_for_a_finished_turn_only() -> None:
    screen = Screen(InlinePresenter)
    task = asyncio.create_task(screen.presenter.run())
    try:
        await screen.drawn(1)
        await screen.looked(8)
        assert screen.presenter.frames_drawn == 1
        turn = Message("m1", "user", text="printed once", status="completed", started_at=1e9)
        screen.presenter.turns_finished([turn])
        await screen.drawn(2)
        assert screen.terminal.getvalue().count("printed once") == 1
        await screen.looked(8)
        assert screen.presenter.frames_drawn == 2
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_shown_keeps_what_is_drawn_and_drops_what_is_not() -> None:
    base = View(phase="connected", elapsed_s=5.2, mic_dbfs=-30.0)
    same = dataclasses.replace(base, elapsed_s=5.9, mic_dbfs=-30.4)
    assert shown(same) == shown(base)
    assert shown(dataclasses.replace(base, elapsed_s=6.0))[0] != shown(base)[0]
    louder = shown(dataclasses.replace(base, mic_dbfs=-20.0))
    assert louder[0] == shown(base)[0] and louder[1] != shown(base)[1]  # only the meters moved
    echo = dataclasses.replace(base, echo_cancelling=True, speaking="assistant")
    assert shown(dataclasses.replace(echo, echo_removed_db=20.2)) == shown(
        dataclasses.replace(echo, echo_removed_db=19.9)
    )
    assert shown(dataclasses.replace(echo, echo_removed_db=21.0)) != shown(
        dataclasses.replace(echo, echo_removed_db=19.9)
    )
    starting = View(phase="connecting", elapsed_s=1.0)  # no clock before the call is up
    assert shown(dataclasses.replace(starting, elapsed_s=3.0)) == shown(starting)
