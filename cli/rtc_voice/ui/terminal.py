"""The live terminal UI: Rich Live on the alternate screen at a bounded frame rate, and
single-key commands read in cbreak mode. The terminal is restored however the call ends.

It holds no call: it renders immutable snapshots and sends commands. Each frame's snapshot is
taken on the event loop (cheap copies); laying it out and writing it to the terminal happen on
a worker thread, so a long conversation never holds up the audio on the loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
import time
import tty
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.live import Live

from rtc_voice.call.controls import (
    CallSnapshot,
    Controls,
    HangUp,
    Interrupt,
    PushToTalk,
    SendText,
    ToggleMute,
)
from rtc_voice.conversation import Turn
from rtc_voice.ui.plain import turn_line
from rtc_voice.ui.render import View, screen

FPS = 12  # well under the 15 fps cap; events never trigger a render themselves
# A frame is drawn on a worker thread, but it holds the GIL while it runs Python; by default
# the loop thread would wait up to 5 ms for it at each switch. 0.5 ms keeps the loop (and the
# audio on it) waking on time at a negligible cost in throughput.
SWITCH_INTERVAL_S = 0.0005
NOTICE_SECONDS = 8.0


class LivePresenter:
    def __init__(
        self, *, ptt: bool = False, console: Console | None = None, keys: bool = True
    ) -> None:
        self.ptt = ptt
        self.keys = keys  # read single keys from stdin (off for benchmarks)
        self.console = console or Console()
        self.show_log = False
        self.show_help = False
        self.typing: str | None = None
        self._notice = ("", False, 0.0)
        self._fd = sys.stdin.fileno()
        self._saved: list[Any] | None = None
        self._live: Live | None = None
        self._closed = False
        self.controls: Controls | None = None
        self._snapshot: Callable[[], CallSnapshot] = CallSnapshot

    # --- presenter protocol

    def bind(self, controls: Controls, snapshot: Callable[[], CallSnapshot]) -> None:
        self.controls = controls
        self._snapshot = snapshot

    def event(self, event: Mapping[str, Any], direction: str) -> None:
        pass  # the screen is drawn from the conversation state, on its own clock

    def turns_finished(self, turns: list[Turn]) -> None:
        pass

    def notice(self, text: str, *, error: bool = False) -> None:
        self._notice = (text, error, time.monotonic())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, SWITCH_INTERVAL_S))
        if self.keys:
            self._enter_cbreak()
            loop.add_reader(self._fd, self._on_input)
        try:
            with Live(
                console=self.console,
                screen=True,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            ) as live:
                self._live = live
                while True:
                    view = self.view()
                    await asyncio.to_thread(self._draw, live, view)
                    await asyncio.sleep(1 / FPS)
        finally:
            sys.setswitchinterval(switch_interval)
            self._live = None
            if self.keys:
                with contextlib.suppress(Exception):
                    loop.remove_reader(self._fd)
            self._restore()

    def _draw(self, live: Live, view: View) -> None:
        width, height = self.console.size
        live.update(screen(view, width, height), refresh=True)

    def close(self, turns: Sequence[Turn]) -> None:
        """Leave the terminal as we found it, then print the conversation for scrollback."""
        if self._closed:
            return
        self._closed = True
        if self._live is not None:  # forced exit while the screen is up
            with contextlib.suppress(Exception):
                self._live.stop()
        self._restore()
        for turn in turns:
            self.console.print(turn_line(turn), highlight=False, markup=False)

    # --- terminal

    def _enter_cbreak(self) -> None:
        with contextlib.suppress(termios.error, OSError):
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)  # keys arrive one by one; Ctrl-C still raises SIGINT

    def _restore(self) -> None:
        if self._saved is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    # --- keys

    def _on_input(self) -> None:
        try:
            data = os.read(self._fd, 256).decode("utf-8", "ignore")
        except OSError:
            return
        if data.startswith("\x1b[") or data.startswith("\x1bO"):
            return  # arrows and other escape sequences
        for char in data:
            self.key(char)

    def key(self, char: str) -> None:
        controls = self.controls
        if controls is None:
            return
        if self.typing is not None:
            if char in ("\r", "\n"):
                controls.send(SendText(self.typing))
                self.typing = None
            elif char == "\x1b":
                self.typing = None
            elif char in ("\x7f", "\b"):
                self.typing = self.typing[:-1]
            elif char == "\x15":
                self.typing = ""
            elif char.isprintable():
                self.typing += char
            return
        if char == "q":
            controls.send(HangUp("you hung up"))
        elif char == "m":
            controls.send(ToggleMute())
        elif char == "i":
            controls.send(Interrupt())
        elif char in ("t", "\r", "\n"):
            self.typing = ""
        elif char == "l":
            self.show_log, self.show_help = not self.show_log, False
        elif char == "?":
            self.show_help = not self.show_help
        elif char == " " and self.ptt:
            controls.send(PushToTalk())

    # --- the frame

    def view(self) -> View:
        """What to draw now: the call's snapshot and this screen's own state."""
        snap = self._snapshot()
        text, error, since = self._notice
        if text and time.monotonic() - since > NOTICE_SECONDS:
            text = ""
        return View(
            model=snap.model,
            voice=snap.voice,
            phase=snap.phase,
            elapsed_s=snap.elapsed_s,
            left_s=snap.left_s,
            turns=snap.turns,
            log=snap.log,
            show_log=self.show_log,
            show_help=self.show_help,
            mic_dbfs=snap.mic_dbfs,
            speaker_dbfs=snap.speaker_dbfs,
            muted=snap.muted,
            speaking=snap.speaking,
            tokens_in=snap.tokens_in,
            tokens_out=snap.tokens_out,
            cost_usd=snap.cost_usd,
            typing=self.typing,
            ptt=self.ptt,
            ptt_active=snap.ptt_active,
            notice=text,
            notice_error=error,
        )
